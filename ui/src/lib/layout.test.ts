import { describe, expect, it } from "vitest";
import { DEFAULT_METRICS, bestShape, clampPage, fitTileWidth, pageItems, parseLayoutChoice, planWall, type WallBox, type WallLayout } from "./layout";

// The boxes the wall gets below the header: a 1440x900 desktop, a 390x844 phone in portrait
// (whose header has a second row for the wall's controls), as measured in Chromium. A tile is
// its picture and its 1 px borders (the caption is over the picture).
const DESKTOP: WallBox = { width: 1400, height: 812 };
const PHONE: WallBox = { width: 365, height: 722 };
const m = DEFAULT_METRICS;
const phone = DEFAULT_METRICS;

/** Every tile of a full page fits in the box (below the pager when there are pages). */
function fits(layout: WallLayout, box: WallBox, metrics = m): boolean {
  const height = box.height - (layout.pages > 1 ? metrics.pagerHeight : 0);
  const w = layout.tileWidth;
  const tileHeight = w / metrics.aspect + metrics.captionHeight;
  return (
    layout.columns * w + (layout.columns - 1) * m.gap <= box.width &&
    layout.rows * tileHeight + (layout.rows - 1) * m.gap <= height + 1e-9 &&
    layout.columns * layout.rows >= layout.perPage
  );
}

describe("planWall auto", () => {
  it("fits 16 cameras at 1440x900 in a 4x4 grid on one page", () => {
    const l = planWall(16, "auto", DESKTOP);
    expect(l).toMatchObject({ columns: 4, rows: 4, perPage: 16, pages: 1 });
    expect(l.tileWidth).toBeGreaterThanOrEqual(m.minAutoWidth);
    expect(fits(l, DESKTOP)).toBe(true);
  });

  it("gives 16 cameras at 1440x900 tiles over 340 px wide, filling the width (no caption below the picture)", () => {
    const l = planWall(16, "auto", DESKTOP);
    expect(l.tileWidth).toBeGreaterThanOrEqual(340);
    expect(l.columns * l.tileWidth + (l.columns - 1) * m.gap).toBeGreaterThan(DESKTOP.width - 4 * m.gap);
  });

  it("gives 12 cameras at 1440x900 tiles as large as 16 get (3 x 4 and 4 x 3 are within 2 px: fewer columns)", () => {
    const l = planWall(12, "auto", DESKTOP);
    expect(l).toMatchObject({ columns: 3, rows: 4, pages: 1 });
    expect(l.tileWidth).toBeGreaterThanOrEqual(fitTileWidth(DESKTOP, 4, 3, m));
    expect(fits(l, DESKTOP)).toBe(true);
  });

  it("shows one camera as large as the box allows", () => {
    const l = planWall(1, "auto", DESKTOP);
    expect(l).toMatchObject({ columns: 1, rows: 1, pages: 1 });
    expect(l.tileWidth).toBe(Math.min(DESKTOP.width, Math.floor((DESKTOP.height - m.captionHeight) * m.aspect)));
  });

  it("puts 4 cameras on a phone in one column (wider than 2x2)", () => {
    const l = planWall(4, "auto", PHONE, phone);
    expect(l).toMatchObject({ columns: 1, rows: 4, pages: 1 });
    expect(l.tileWidth).toBeGreaterThan(fitTileWidth(PHONE, 2, 2, phone));
    expect(l.tileWidth).toBeGreaterThanOrEqual(300);
    expect(fits(l, PHONE, phone)).toBe(true);
  });

  it("pages 16 cameras on a phone, 4 per page in one column, below the pager", () => {
    const l = planWall(16, "auto", PHONE, phone);
    expect(l).toMatchObject({ columns: 1, rows: 4, perPage: 4, pages: 4 });
    expect(fits(l, PHONE, phone)).toBe(true);
    // Five a page would be narrower than auto's least width (and two columns far narrower).
    const below = { ...PHONE, height: PHONE.height - phone.pagerHeight };
    expect(fitTileWidth(below, 1, 5, phone)).toBeLessThan(phone.minAutoWidth);
    expect(fitTileWidth(below, 2, 4, phone)).toBeLessThan(l.tileWidth - 80);
  });

  it("fits 16 cameras at 1280x800 too (4 columns)", () => {
    const l = planWall(16, "auto", { width: 1240, height: 700 });
    expect(l).toMatchObject({ columns: 4, rows: 4, pages: 1 });
  });

  it("pages more than 16 cameras even on a large screen", () => {
    const l = planWall(20, "auto", { width: 3800, height: 2000 });
    expect(l.perPage).toBeLessThanOrEqual(16);
    expect(l.pages).toBe(Math.ceil(20 / l.perPage));
  });

  it("never overflows the box, whatever the count and box", () => {
    for (const box of [DESKTOP, PHONE, { width: 1240, height: 712 }, { width: 800, height: 400 }, { width: 2500, height: 1300 }, { width: 820, height: 260 }]) {
      for (let n = 1; n <= 40; n++) {
        const l = planWall(n, "auto", box);
        expect(fits(l, box), `${n} cameras in ${box.width}x${box.height}: ${JSON.stringify(l)}`).toBe(true);
        expect(l.pages).toBe(Math.ceil(n / l.perPage));
      }
    }
  });

  it("copes with no cameras and a box too small for anything", () => {
    expect(planWall(0, "auto", DESKTOP).pages).toBe(1);
    expect(planWall(3, "auto", { width: 10, height: 10 }).tileWidth).toBe(0);
  });
});

describe("planWall fixed", () => {
  it("keeps a fixed grid's cells and pages the rest", () => {
    expect(planWall(9, "2x2", DESKTOP)).toMatchObject({ columns: 2, rows: 2, perPage: 4, pages: 3 });
    expect(planWall(9, "3x3", DESKTOP)).toMatchObject({ columns: 3, rows: 3, perPage: 9, pages: 1 });
    const few = planWall(2, "4x4", DESKTOP);
    expect(few).toMatchObject({ columns: 4, rows: 4, pages: 1 });
    expect(few.tileWidth).toBe(planWall(16, "4x4", DESKTOP).tileWidth);
  });

  it("leaves room for the pager when paged", () => {
    const l = planWall(17, "4x4", DESKTOP);
    expect(l.pages).toBe(2);
    expect(fits(l, DESKTOP)).toBe(true);
    expect(l.tileWidth).toBeLessThan(planWall(16, "4x4", DESKTOP).tileWidth);
  });
});

describe("helpers", () => {
  it("reads stored choices, anything unknown as auto", () => {
    expect(parseLayoutChoice("3x3")).toBe("3x3");
    expect(parseLayoutChoice("5x5")).toBe("auto");
    expect(parseLayoutChoice(null)).toBe("auto");
  });

  it("prefers fewer columns on a tie", () => {
    // Height-bound: 4x4 and 5x4 give the same width.
    expect(bestShape(16, DESKTOP, m).columns).toBe(4);
  });

  it("slices pages and clamps the page index", () => {
    const l = planWall(9, "2x2", DESKTOP);
    const items = [...Array(9).keys()];
    expect(pageItems(items, l, 0)).toEqual([0, 1, 2, 3]);
    expect(pageItems(items, l, 2)).toEqual([8]);
    expect(pageItems(items, l, 7)).toEqual([8]);
    expect(clampPage(-1, 3)).toBe(0);
    expect(clampPage(5, 3)).toBe(2);
    expect(clampPage(0, 0)).toBe(0);
  });
});
