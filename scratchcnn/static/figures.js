// The small figures the views explain numbers with: tables of coloured numbers, an operator
// between them, colour legends, and the box that outlines a window on a map.
import {el, fmt, fmtg} from "./dom.js";
import {divergingScale, largest} from "./heatmap.js";

/** A small table of numbers on coloured cells (null: a padding cell), with a caption. */
export function valueGrid(values, colour, caption) {
  const table = el("table", "grid");
  for (const rowValues of values) {
    const tr = table.insertRow();
    for (const v of rowValues) {
      const td = tr.insertCell();
      if (v === null) { td.textContent = "pad"; td.className = "pad"; continue; }
      const [r, g, b] = colour(v);
      td.textContent = fmt(v);
      td.style.background = `rgb(${r},${g},${b})`;
      td.style.color = r + g + b > 380 ? "#111" : "#eee";
    }
  }
  const figure = el("figure");
  figure.append(table, el("figcaption", "", caption));
  return figure;
}

/** valueGrid on the diverging scale, with gradient numbers; null: no window there (the map's edge). */
export function gradientGrid(values, caption) {
  const m = largest(values.flat().filter((v) => v !== null));
  const figure = valueGrid(values, divergingScale(m), caption);
  figure.querySelectorAll("td").forEach((td, i) => {
    const v = values.flat()[i];
    td.textContent = v === null ? "–" : fmtg(v);
  });
  figure.querySelector("table").classList.add("wide");
  return figure;
}

/** An operator between two figures ("×", "→", "= 0.5"). */
export const symbol = (text) => el("span", "op", text);

/** Place a highlight box over rows r0..r0+n-1, cols c0..c0+n-1 of an h x w map. */
export function placeBox(box, r0, c0, n, h, w) {
  const top = Math.max(0, r0), left = Math.max(0, c0);
  const bottom = Math.min(h, r0 + n), right = Math.min(w, c0 + n);
  box.style.top = `${100 * top / h}%`;
  box.style.left = `${100 * left / w}%`;
  box.style.height = `${100 * (bottom - top) / h}%`;
  box.style.width = `${100 * (right - left) / w}%`;
  box.hidden = false;
}

/** A colour bar from lo to hi in `holder`, with `text` (its range) beside it. */
export function legend(holder, colour, lo, hi, text) {
  holder.textContent = "";
  const bar = el("span", "bar");          // a CSS gradient, not a canvas: the maps are the only canvases
  const stops = Array.from({length: 9}, (_, i) => `rgb(${colour(lo + (hi - lo) * i / 8).join(",")})`);
  bar.style.background = `linear-gradient(to right, ${stops.join(", ")})`;
  holder.append(bar, el("span", "", text));
  holder.hidden = false;
}

/** The diverging legend of values from min to max: -m .. 0 .. +m, and the values' range. */
export function divergingLegend(holder, min, max) {
  const m = Math.max(Math.abs(min), Math.abs(max));
  legend(holder, divergingScale(m), -m, m, `${fmtg(-m)} · 0 · ${fmtg(m)}   (values ${fmtg(min)} … ${fmtg(max)})`);
}
