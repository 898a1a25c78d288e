import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { forgetPictures, hasPicture, holdPicture, KEEP_MS, releasePicture, takePicture } from "./lastPicture";

/** A canvas stand-in that records what was drawn on it. */
function fakeCanvas(width = 0, height = 0) {
  const drawn: unknown[] = [];
  return { width, height, drawn, getContext: () => ({ drawImage: (src: unknown) => drawn.push(src) }) };
}

beforeEach(() => {
  // Nothing here is a <video>: `instanceof` only needs the name.
  vi.stubGlobal("HTMLVideoElement", function HTMLVideoElement() {
    return undefined;
  });
  vi.stubGlobal("document", { createElement: () => fakeCanvas() });
  forgetPictures();
});

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("lastPicture", () => {
  it("copies the picture of a player still on the page", () => {
    const tile = fakeCanvas(160, 90);
    const forget = holdPicture("cam", () => tile as unknown as HTMLCanvasElement);
    expect(hasPicture("cam")).toBe(true);
    const copy = takePicture("cam") as unknown as ReturnType<typeof fakeCanvas>;
    expect(copy).toMatchObject({ width: 160, height: 90 });
    expect(copy.drawn).toEqual([tile]);
    forget();
    expect(hasPicture("cam")).toBe(false);
    expect(takePicture("cam")).toBeNull();
  });

  it("keeps a departed player's picture for a moment, once", () => {
    releasePicture("cam", fakeCanvas(320, 180) as unknown as HTMLCanvasElement, 1_000);
    expect(hasPicture("cam", 1_000 + KEEP_MS)).toBe(true);
    expect(takePicture("cam", 1_000 + KEEP_MS + 1)).toBeNull(); // too old: the past is not shown
    releasePicture("cam", fakeCanvas(320, 180) as unknown as HTMLCanvasElement, 1_000);
    expect(takePicture("cam", 2_000)).not.toBeNull();
    expect(takePicture("cam", 2_000)).toBeNull(); // taken
  });

  it("keeps nothing from a player without a picture, and nothing after a sign-out", () => {
    releasePicture("cam", fakeCanvas(0, 0) as unknown as HTMLCanvasElement);
    releasePicture("other", null);
    expect(hasPicture("cam")).toBe(false);
    releasePicture("cam", fakeCanvas(320, 180) as unknown as HTMLCanvasElement);
    forgetPictures();
    expect(takePicture("cam")).toBeNull();
  });
});
