/**
 * Whether a modal dialog is open on the page (Radix dialogs: `role="dialog"` or
 * `role="alertdialog"` with `data-state="open"`). A tile behind one is not seen: its player
 * treats it as off-screen (no frames asked for, the socket closed after a while).
 *
 * One shared observer for the whole page, started on the first subscription: dialogs are
 * portalled into `<body>` (a child added or removed there), and close by turning
 * `data-state` to `closed` before they are removed. Neither the stats text nor the pictures
 * of the tiles wake it (it watches body's own children and `data-state` attributes only).
 */

const OPEN_MODAL = '[role="dialog"][data-state="open"], [role="alertdialog"][data-state="open"]';

let open = false;
const listeners = new Set<() => void>();
let observers: MutationObserver[] = [];

function check(): void {
  const now = document.querySelector(OPEN_MODAL) !== null;
  if (now === open) return;
  open = now;
  for (const l of listeners) l();
}

/** True while a modal dialog is open. */
export function modalOpen(): boolean {
  return open;
}

/** Calls `onChange` whenever `modalOpen()` changes; returns the unsubscribe function. */
export function subscribeModal(onChange: () => void): () => void {
  listeners.add(onChange);
  if (observers.length === 0 && typeof MutationObserver !== "undefined" && typeof document !== "undefined") {
    const children = new MutationObserver(check);
    children.observe(document.body, { childList: true });
    const states = new MutationObserver(check);
    states.observe(document.body, { subtree: true, attributes: true, attributeFilter: ["data-state"] });
    observers = [children, states];
    check();
  }
  return () => {
    listeners.delete(onChange);
    if (listeners.size === 0) {
      for (const o of observers) o.disconnect();
      observers = [];
    }
  };
}
