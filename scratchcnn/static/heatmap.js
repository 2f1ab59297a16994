// Colour scales, and painting a grid of numbers onto a canvas (one canvas pixel per value; CSS
// scales it up). The forward view, the backward view and the training panel all paint with these.

// Black-to-yellow for values >= 0; blue < 0 < orange, dark at 0, for values that change sign.
const SEQUENTIAL = [[0, 0, 4], [66, 10, 104], [147, 38, 103], [221, 81, 58], [252, 165, 10], [252, 255, 164]];
export const DIVERGING = [[120, 200, 255], [40, 110, 200], [20, 22, 30], [200, 90, 30], [255, 205, 90]];

/** The colour at t in [0, 1] along `stops`, as [r, g, b]. */
export function ramp(stops, t) {
  t = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(t)), f = t - i;
  return stops[i].map((c, k) => Math.round(c + (stops[i + 1][k] - c) * f));
}

/** A colour function for values between lo and hi: diverging around 0 when values go negative
 * (blue < 0 < orange), black-to-yellow otherwise. */
export function colourScale(lo, hi) {
  if (lo < 0) {
    const m = Math.max(-lo, hi, 1e-6);
    return (v) => ramp(DIVERGING, 0.5 + v / (2 * m));
  }
  const m = Math.max(hi, 1e-6);
  return (v) => ramp(SEQUENTIAL, v / m);
}

/** Blue < 0 < orange, zero dark, symmetric around 0 up to ±m (gradients). */
export function divergingScale(m) {
  m = m > 0 ? m : 1e-30;
  return (v) => ramp(DIVERGING, 0.5 + v / (2 * m));
}

/** Grey levels 0..255 as they are. */
export const grey = (v) => [v, v, v];

/** The largest absolute value of a list of numbers (0 for an empty list). */
export const largest = (values) => values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/** Paint `rows` (H lists of W numbers) onto `canvas`, resized to W x H, through `colour`. */
export function paint(canvas, rows, colour) {
  const h = rows.length, w = rows[0].length;
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d"), img = ctx.createImageData(w, h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const [r, g, b] = colour(rows[y][x]), o = 4 * (y * w + x);
      img.data[o] = r; img.data[o + 1] = g; img.data[o + 2] = b; img.data[o + 3] = 255;
    }
  }
  ctx.putImageData(img, 0, 0);
}

/** Paint a vector (e.g. the 10 probabilities, or a dense layer's outputs) as rows of at most 32
 * cells, the last row padded with `fill`; the canvas is shown 18 CSS pixels a cell, 520 at most. */
export function paintVector(canvas, values, colour, fill) {
  const cols = Math.min(values.length, 32), rows = [];
  for (let i = 0; i < values.length; i += cols) {
    const row = values.slice(i, i + cols);
    while (row.length < cols) row.push(fill);
    rows.push(row);
  }
  paint(canvas, rows, colour);
  canvas.style.width = `${Math.min(cols * 18, 520)}px`;
}
