// The backward view's inspector: where the gradient under the cursor comes from, in #inspect.
// A pixel that max pooling sent back (only the window's maximum gets the gradient); a pixel under
// a convolution (a sum over the windows it sat in); an input of the last layer (a sum over the 10
// logits); a logit (the softmax's p - 1 or p); a filter weight's gradient.
import {$, el, fmt, fmtg} from "./dom.js";
import {gradientGrid, placeBox, symbol, valueGrid} from "./figures.js";
import {colourScale} from "./heatmap.js";
import {bw, filterKernel, gradientRows, logitGradient} from "./backward_state.js";
import {stageRows, state} from "./page_state.js";

/** Hide every outline the backward view drew. */
export function unhoverGradients() {
  for (const view of bw.stages) {
    for (const m of (view ? view.maps : [])) { m.box.hidden = true; m.cursor.hidden = true; }
  }
}

function pixelAt(event, h, w) {          // the (row, column) of an h x w map under the pointer
  const box = event.target.getBoundingClientRect();
  return [Math.min(h - 1, Math.max(0, Math.floor((event.clientY - box.top) / box.height * h))),
          Math.min(w - 1, Math.max(0, Math.floor((event.clientX - box.left) / box.width * w)))];
}

function paragraph(className, html) {
  const p = el("p", className);
  p.innerHTML = html;
  return p;
}

/** Explain the gradient pixel under the pointer, on map `channel` of backward stage `stage`. */
export function gradientPoint(stage, channel, event) {
  if (!bw.answer) return;
  const model = state.model, rows = gradientRows(stage, channel);
  const [row, col] = pixelAt(event, rows.length, rows[0].length);
  unhoverGradients();
  placeBox(bw.stages[stage].maps[channel].cursor, row, col, 1, rows.length, rows[0].length);
  const next = model.layers[stage];       // the layer that sent this gradient back
  const panel = $("inspect");
  panel.textContent = "";
  const name = stage === 0 ? "dL/dx" : `dL/d(output of ${stage}. ${model.layers[stage - 1].type})`;
  panel.append(paragraph("", `<b>${name}</b>${stage > 0 ? `, map ${channel + 1}` : ""}, row ${row}, ` +
                             `column ${col}: <b class="value">${fmtg(rows[row][col])}</b>`));
  if (next.type.endsWith("Pool2")) explainPool(panel, stage, channel, row, col);
  else if (next.filters) explainConv(panel, stage, channel, row, col);
  else if (stage === model.layers.length - 1 && bw.templates && bw.templates.templates) explainLast(panel, channel, row, col);
  else panel.append(el("p", "note", `${next.type}'s backward turned the gradient of its output into this one.`));
}

const SPOTS = ["top left", "top right", "bottom left", "bottom right"];

function explainPool(panel, stage, channel, row, col) {
  const up = bw.answer.layers[stage].output_gradient.maps[channel];     // (H/2, W/2)
  const i = Math.floor(row / 2), j = Math.floor(col / 2);
  if (i >= up.length || j >= up[0].length) {
    panel.append(el("p", "", "This pixel is in the last row or column of an odd-sized map, which pooling drops: its gradient is 0."));
    return;
  }
  const grads = gradientRows(stage, channel), values = stageRows(stage, channel);
  const r0 = 2 * i, c0 = 2 * j, win = [0, 1].map((a) => [0, 1].map((b) => grads[r0 + a][c0 + b]));
  const fwd = [0, 1].map((a) => [0, 1].map((b) => values[r0 + a][c0 + b]));
  let winner = win.flat().findIndex((v) => v !== 0);
  if (winner < 0) winner = fwd.flat().indexOf(Math.max(...fwd.flat()));
  const here = (row - r0) * 2 + (col - c0);
  const eq = el("div", "equation");
  const lo = Math.min(...fwd.flat()), hi = Math.max(...fwd.flat());
  eq.append(valueGrid(fwd, colourScale(Math.min(lo, 0), Math.max(hi, 1e-6)), "forward: the 2×2 window"),
            symbol("→"), gradientGrid(win, "backward: its gradients"));
  placeBox(bw.stages[stage].maps[channel].box, r0, c0, 2, grads.length, grads[0].length);
  const upView = bw.stages[stage + 1].maps[channel];
  if (upView) placeBox(upView.cursor, i, j, 1, up.length, up[0].length);
  panel.append(eq, paragraph("total",
    `Max pooling kept the <b>${SPOTS[winner]}</b> value (${fmt(fwd.flat()[winner])}), so the ` +
    `gradient of the pooled pixel, <b>${fmtg(up[i][j])}</b>, goes to that position alone; the other three ` +
    `got 0. This pixel is the ${SPOTS[here]} one: ${here === winner ? "the maximum" : "not the maximum, so 0"}.`));
}

/** For pixel (row, col) of the input of convolution `layer`: the k x k terms, one per window it sat
 * in (cell (a, b): the window where it met weight (a, b); null: no window there), and their count. */
function convTerms(layer, up, channel, row, col) {
  const {size: k, stride, padding} = layer.window, ho = up[0].length, wo = up[0][0].length;
  const cells = [];
  let count = 0;
  for (let ki = 0; ki < k; ki++) {
    const line = [];
    for (let kj = 0; kj < k; kj++) {
      const i = (row + padding - ki) / stride, j = (col + padding - kj) / stride;
      if (!Number.isInteger(i) || !Number.isInteger(j) || i < 0 || j < 0 || i >= ho || j >= wo) { line.push(null); continue; }
      let sum = 0;
      layer.filters.forEach((filter, f) => { sum += up[f][i][j] * filter[ki][kj][channel]; });
      line.push(sum);
      count += 1;
    }
    cells.push(line);
  }
  return {cells, count};
}

function explainConv(panel, stage, channel, row, col) {
  const layer = state.model.layers[stage], {size: k, stride, padding} = layer.window;
  const up = bw.answer.layers[stage].output_gradient.maps;              // (F, Ho, Wo)
  const {cells, count} = convTerms(layer, up, channel, row, col);
  const total = cells.flat().reduce((s, v) => s + (v ?? 0), 0);
  if (stride === 1) {
    const ho = up[0].length, wo = up[0][0].length;
    for (const m of bw.stages[stage + 1].maps) placeBox(m.box, row + padding - k + 1, col + padding - k + 1, k, ho, wo);
  }
  const eq = el("div", "equation");
  eq.append(gradientGrid(cells, "one term per window"), symbol(`= ${fmtg(total)}`));
  panel.append(eq, paragraph("total",
    `This pixel sits in <b>${count}</b> of the ${k}×${k} windows ${stage + 1}. ${layer.type} ` +
    `slid over it (outlined above). For each window, and each of its ${layer.filters.length} filters, the upstream ` +
    `gradient at that window times the filter weight that touched this pixel; the cell at (a, b) is the window ` +
    `where this pixel met weight (a, b). Their sum is dL/d(this pixel).`));
}

function explainLast(panel, channel, row, col) {
  const t = bw.templates, a = bw.answer, [, w, c] = t.input_shape;
  const rows = a.probabilities.map((_, d) => {
    const weight = t.templates[d][channel][row][col];
    return [d, logitGradient(a, d), weight, logitGradient(a, d) * weight];
  });
  const total = rows.reduce((s, r) => s + r[3], 0);
  const table = el("table", "terms");
  table.innerHTML = "<tr><th>digit</th><th>dL/dz</th><th>weight</th><th>product</th></tr>" +
    rows.map(([d, g, wt, prod]) => `<tr class="${d === a.label ? "target" : ""}"><td>${d}</td><td>${fmtg(g)}</td>` +
      `<td>${fmtg(wt)}</td><td>${fmtg(prod)}</td></tr>`).join("");
  panel.append(table, paragraph("total",
    `Input ${(row * w + col) * c + channel} of the ${t.type} layer feeds all ${rows.length} logits; ` +
    `its gradient is the sum of dL/dz times its weight for each digit = <b>${fmtg(total)}</b>.`));
}

/** Explain the softmax table's cell under the pointer: a digit's p, dL/dp and dL/dz. */
export function softmaxPoint(event) {
  const cell = event.target.closest("td");
  if (!cell || !bw.answer) return;
  const a = bw.answer, d = Number(cell.dataset.digit), p = a.probabilities[d];
  const panel = $("inspect");
  panel.textContent = "";
  const isTarget = d === a.label;
  const lines = [
    `<b>Digit ${d}</b>: p = ${fmtg(p)}${isTarget ? ", the target" : ""}.`,
    isTarget ? `dL/dp = −1/p = <b class="value">${fmtg(-1 / p)}</b>: the loss −log p falls fastest by raising this p.`
             : "dL/dp = 0: the loss −log p[target] does not look at this probability directly.",
    isTarget ? `Through the softmax, on its logit: dL/dz = p − 1 = <b class="value">${fmtg(p - 1)}</b> (negative: raise it).`
             : `Through the softmax, on its logit: dL/dz = p = <b class="value">${fmtg(p)}</b> (positive: lower it, ` +
               "since every other digit's probability takes share from the target's).",
  ];
  for (const line of lines) panel.append(paragraph("", line));
}

/** Explain the weight gradient under the pointer, on filter `f` of model.layers[layerIndex]. */
export function filterPoint(layerIndex, f, event) {
  if (!bw.answer) return;
  const layer = state.model.layers[layerIndex], k = layer.window.size;
  const [ki, kj] = pixelAt(event, k, k);
  const value = filterKernel(bw.answer.layers[layerIndex].param_gradients.filters[f])[ki][kj];
  const up = bw.answer.layers[layerIndex].output_gradient.maps[f];
  const panel = $("inspect");
  panel.textContent = "";
  panel.append(
    paragraph("", `<b>dL/d(filter ${f + 1} weight (${ki}, ${kj}))</b>: <b class="value">${fmtg(value)}</b>` +
                  ` (weight ${fmtg(filterKernel(layer.filters[f])[ki][kj])})`),
    paragraph("total", `The sum, over all ${up.length}×${up[0].length} positions where the filter was applied, of ` +
      `the upstream gradient there (map ${f + 1} of dL/d(output)) times the input pixel this weight touched there` +
      `${layer.input_shape.length === 3 ? ", summed over the input maps" : ""}. An SGD step moves the weight by −lr × this.`));
}
