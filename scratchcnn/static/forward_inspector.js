// The forward view's inspector: where the number under the cursor comes from, in #inspect.
// A convolution pixel: its input window times the filter, added up (or, with several input maps,
// the filter's weights per input map); a pooling pixel: the max or mean of its window; any other
// layer: its input and output.
import {$, el, fmt} from "./dom.js";
import {symbol, valueGrid} from "./figures.js";
import {colourScale, paint} from "./heatmap.js";
import {stageRows, state} from "./page_state.js";

/** The values of map `channel` of `stage` in the size x size window whose top left is (r0, c0);
 * null where the window hangs over the map's edge (padding). */
function windowValues(stage, channel, [r0, c0], size) {
  const rows = stageRows(stage, channel), h = rows.length, w = rows[0].length, values = [];
  for (let i = 0; i < size; i++) {
    const line = [];
    for (let j = 0; j < size; j++) {
      const y = r0 + i, x = c0 + j;
      line.push(y < 0 || x < 0 || y >= h || x >= w ? null : rows[y][x]);
    }
    values.push(line);
  }
  return values;
}

function paragraph(className, text) {
  const p = el("p", className);
  p.innerHTML = text;
  return p;
}

function explainOneMapConv(panel, layer, channel, window) {
  const weights = layer.filters[channel].map((r) => r.map((v) => v[0]));   // (k, k, 1) -> (k, k)
  const bias = layer.biases ? layer.biases[channel] : 0;
  const known = window.flat().filter((v) => v !== null), flatWeights = weights.flat();
  const lo = Math.min(...known, -1e-6), hi = Math.max(...known, 1e-6);
  const wm = Math.max(...flatWeights.map(Math.abs));
  const sum = window.flat().reduce((s, v, i) => s + (v ?? 0) * flatWeights[i], 0) + bias;
  const row = el("div", "equation");
  row.append(valueGrid(window, colourScale(lo, hi), "input window"), symbol("×"),
             valueGrid(weights, colourScale(-wm, wm), `filter ${channel + 1}`));
  panel.append(row,
    paragraph("total", `Sum of the nine products${layer.biases ? " + bias" : ""} = <b>${fmt(sum)}</b>`),
    el("p", "note", "Each output pixel is the input window times the filter, weight by weight, " +
                    "added up: the filter slides over the image one pixel at a time."));
}

function explainManyMapsConv(panel, layer, channel) {
  const filter = layer.filters[channel], channels = layer.input_shape[2], k = layer.window.size;
  const note = el("p", "note", `Filter ${channel + 1} has ${k}×${k} weights for each of the ` +
    `${channels} input maps (highlighted on every map above); its weights, one small map per input:`);
  const grid = el("div", "kernels");
  const wm = Math.max(...filter.flat(2).map(Math.abs), 1e-6), colour = colourScale(-wm, wm);
  for (let c = 0; c < channels; c++) {
    const canvas = el("canvas");
    paint(canvas, filter.map((r) => r.map((v) => v[c])), colour);
    canvas.title = `input map ${c + 1}`;
    grid.append(canvas);
  }
  panel.append(note, grid);
}

function explainPool(panel, layer, window, value) {
  const flat = window.flat(), size = layer.window.size;
  const row = el("div", "equation");
  const how = layer.type.startsWith("Max") ? "max" : "mean";
  row.append(valueGrid(window, colourScale(Math.min(...flat, 0), Math.max(...flat, 1e-6)), "input window"));
  panel.append(row, paragraph("total", `The ${how} of the ${size}×${size} window = <b>${fmt(value)}</b>`));
}

/** Explain pixel (row, col) of map `channel` of `stage` (> 0), whose input window starts at
 * `corner` = [r0, c0] of the stage before. */
export function inspectPixel(stage, channel, row, col, corner) {
  const layer = state.model.layers[stage - 1], win = layer.window;
  const value = state.result.layers[stage - 1].maps[channel][row][col];
  const panel = $("inspect");
  panel.textContent = "";
  panel.append(paragraph("", `<b>${stage}. ${layer.type}</b>, map ${channel + 1}, row ${row}, ` +
                             `column ${col}: <b class="value">${fmt(value)}</b>`));
  const oneMap = (layer.input_shape[2] || 1) === 1;
  if (layer.filters && oneMap) explainOneMapConv(panel, layer, channel, windowValues(stage - 1, 0, corner, win.size));
  else if (layer.filters) explainManyMapsConv(panel, layer, channel);
  else if (win.size > 1) explainPool(panel, layer, windowValues(stage - 1, channel, corner, win.size), value);
  else panel.append(el("p", "", `Input ${fmt(stageRows(stage - 1, channel)[row][col])} → output ${fmt(value)}.`));
}
