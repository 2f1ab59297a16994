// Small helpers for building the page's elements. Every module imports what it uses from here.

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/** A new element: `tag`, with an optional class name and text. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** How a number is written on the page: two decimals for activations, ... */
export const fmt = (v) => (Math.abs(v) < 0.005 ? "0.00" : v.toFixed(2));
/** ... three significant digits for gradients (0.00123, -646, 1.5e-7) ... */
export const fmtg = (v) => (v === 0 ? "0" : String(Number(v.toPrecision(3))));
/** ... and a probability as a percentage. */
export const pct = (p) => `${(100 * p).toFixed(1)}%`;
