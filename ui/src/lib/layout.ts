/**
 * The wall's layout math (pure, unit-tested): how many tiles a page of the wall shows, in how
 * many columns and rows, and how wide each tile is, so that every tile of a page fits the
 * space below the header without page scrolling.
 *
 * Invariants:
 * - a tile is a 16:9 picture plus a fixed height (measured from a rendered tile: its borders,
 *   as its caption is drawn over the picture);
 *   the computed width never makes `rows` tiles plus gaps taller than the box, nor `columns`
 *   tiles plus gaps wider than it;
 * - more cameras than one page holds → pages of equal capacity (never scrolling);
 * - `auto` keeps tiles as large as possible: it uses at most one column per `minColumnWidth`
 *   of width (a phone in portrait: one column — two would be no larger than one column of
 *   four), and shows at most 16 tiles per page, fewer when more would make them narrower
 *   than `minAutoWidth` (a 390x844 phone: pages of 4, each tile nearly the screen's width).
 */

/** The wall's layout choices: `auto` fits all cameras (up to 16 per page); the others are fixed. */
export type LayoutChoice = "auto" | "2x2" | "3x3" | "4x4";

export const LAYOUT_CHOICES: readonly LayoutChoice[] = ["auto", "2x2", "3x3", "4x4"];

/** Where the choice is kept, per browser. */
export const LAYOUT_STORAGE_KEY = "camgate.layout";

/** A stored (or any) value read back as a choice; anything unknown is `auto`. */
export function parseLayoutChoice(value: string | null | undefined): LayoutChoice {
  return (LAYOUT_CHOICES as readonly string[]).includes(value ?? "") ? (value as LayoutChoice) : "auto";
}

/** The space the wall may use, in CSS pixels. */
export interface WallBox {
  width: number;
  height: number;
}

/** What a tile looks like, besides its width. */
export interface TileMetrics {
  /** Gap between tiles (px). */
  gap: number;
  /** Height of everything in a tile that is not the picture (its borders) (px). */
  captionHeight: number;
  /** The picture's width / height. */
  aspect: number;
  /**
   * `auto` pages rather than show tiles narrower than this (px): 240 px is a 135 px high
   * picture, about the least that still shows what happens in front of a camera.
   */
  minAutoWidth: number;
  /** `auto` uses at most one column per this much of the box's width (px). */
  minColumnWidth: number;
  /** `auto` never shows more tiles than this on one page. */
  maxAutoTiles: number;
  /** Height taken by the pager (prev/next page) when there is more than one page (px). */
  pagerHeight: number;
}

export const DEFAULT_METRICS: TileMetrics = {
  gap: 8,
  captionHeight: 2,
  aspect: 16 / 9,
  minAutoWidth: 240,
  minColumnWidth: 300,
  maxAutoTiles: 16,
  pagerHeight: 52,
};

export interface WallLayout {
  columns: number;
  rows: number;
  /** Tiles per page (columns × rows, or fewer when there are fewer cameras). */
  perPage: number;
  pages: number;
  /** Each tile's width in whole pixels (its picture's height is width / aspect). */
  tileWidth: number;
}

/** The widest tile such that `columns` × `rows` tiles fit in `box` (0 if none does). */
export function fitTileWidth(box: WallBox, columns: number, rows: number, m: TileMetrics): number {
  const byWidth = (box.width - (columns - 1) * m.gap) / columns;
  const rowHeight = (box.height - (rows - 1) * m.gap) / rows;
  const byHeight = (rowHeight - m.captionHeight) * m.aspect;
  return Math.max(0, Math.floor(Math.min(byWidth, byHeight)));
}

/** Auto's most columns for a box: one per `minColumnWidth` of width, at least one. */
export function maxAutoColumns(box: WallBox, m: TileMetrics): number {
  return Math.max(1, Math.floor((box.width + m.gap) / m.minColumnWidth));
}

/**
 * The grid shape for `count` tiles in `box` that keeps them widest, with at most
 * `maxColumns` columns (ties: fewer columns).
 */
export function bestShape(count: number, box: WallBox, m: TileMetrics, maxColumns = count): { columns: number; rows: number; tileWidth: number } {
  let best = { columns: 1, rows: Math.max(1, count), tileWidth: fitTileWidth(box, 1, Math.max(1, count), m) };
  for (let columns = 2; columns <= Math.min(count, maxColumns); columns++) {
    const rows = Math.ceil(count / columns);
    // A shape whose last column would stay empty is the same as one with a column fewer.
    if ((columns - 1) * rows >= count) continue;
    const tileWidth = fitTileWidth(box, columns, rows, m);
    if (tileWidth > best.tileWidth) best = { columns, rows, tileWidth };
  }
  return best;
}

/** The number of tiles a fixed choice shows per page (`"3x3"` → 3 columns, 3 rows). */
function fixedShape(choice: Exclude<LayoutChoice, "auto">): { columns: number; rows: number } {
  const [columns, rows] = choice.split("x").map(Number) as [number, number];
  return { columns, rows };
}

/** Plans the wall: `count` cameras, the chosen layout, the space available. */
export function planWall(count: number, choice: LayoutChoice, box: WallBox, m: TileMetrics = DEFAULT_METRICS): WallLayout {
  const paged = (perPage: number) => Math.max(1, Math.ceil(count / perPage));
  const withPager: WallBox = { width: box.width, height: box.height - m.pagerHeight };
  if (choice !== "auto") {
    const { columns, rows } = fixedShape(choice);
    const cells = columns * rows;
    const pages = paged(cells);
    // A fixed layout keeps its cell size whatever the number of cameras on the page.
    const tileWidth = fitTileWidth(pages > 1 ? withPager : box, columns, rows, m);
    return { columns, rows, perPage: cells, pages, tileWidth };
  }
  if (count <= 0) return { columns: 1, rows: 1, perPage: 1, pages: 1, tileWidth: fitTileWidth(box, 1, 1, m) };
  // Everything on one page, if the tiles stay wide enough.
  if (count <= m.maxAutoTiles) {
    const one = bestShape(count, box, m, maxAutoColumns(box, m));
    if (one.tileWidth >= m.minAutoWidth || count === 1) return { ...one, perPage: count, pages: 1 };
  }
  // Pages: the most tiles per page that stay wide enough (at least one), below a pager.
  for (let k = Math.min(count, m.maxAutoTiles); k >= 1; k--) {
    const shape = bestShape(k, withPager, m, maxAutoColumns(box, m));
    if (shape.tileWidth >= m.minAutoWidth || k === 1) {
      // Fill the shape's cells: every page but the last is full.
      const perPage = Math.min(shape.columns * shape.rows, m.maxAutoTiles);
      return { ...shape, perPage, pages: paged(perPage) };
    }
  }
  /* c8 ignore next */
  return { columns: 1, rows: 1, perPage: 1, pages: count, tileWidth: fitTileWidth(withPager, 1, 1, m) };
}

/** A page index kept inside 0..pages-1. */
export function clampPage(page: number, pages: number): number {
  return Math.min(Math.max(0, page), Math.max(0, pages - 1));
}

/** The slice of `items` shown on `page`. */
export function pageItems<T>(items: readonly T[], layout: WallLayout, page: number): T[] {
  const p = clampPage(page, layout.pages);
  return items.slice(p * layout.perPage, (p + 1) * layout.perPage);
}
