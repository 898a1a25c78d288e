// The health badge as markup (server-rendered: no DOM needed). The e2e run shows it in a
// real page when the gateway reports a stream frozen.
import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { HealthBadge } from "@/components/StatusBadge";
import { TooltipProvider } from "@/components/ui/tooltip";
import { displayHealth } from "@/lib/health";

function render(health: string, since = ""): string {
  const info = displayHealth(health, since, null);
  if (!info) return "";
  return renderToStaticMarkup(createElement(TooltipProvider, null, createElement(HealthBadge, { info, overlay: true })));
}

describe("HealthBadge", () => {
  it("says frozen, dark or late in text, with an accessible name, and does not animate", () => {
    for (const [health, label, name] of [
      ["frozen", "Frozen", "Picture frozen"],
      ["dark", "Dark", "Picture dark"],
      ["late", "Late", "Frames late"],
    ] as const) {
      const html = render(health, "2026-11-30T14:26:36Z");
      expect(html).toContain(`data-health="${health}"`);
      expect(html).toContain('role="status"');
      expect(html).toMatch(new RegExp(`aria-label="${name}[^"]*, since [^"]+"`));
      // The visible text, after the (hidden) icon.
      expect(html).toMatch(new RegExp(`aria-hidden="true"[^>]*>.*</svg>${label}</span>`));
      expect(html).not.toContain("animate-");
    }
  });

  it("is not shown for ok, unknown or nothing", () => {
    for (const quiet of ["ok", "unknown", ""]) expect(render(quiet)).toBe("");
  });
});
