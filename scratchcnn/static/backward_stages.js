// The backward view's stages in #backward, from the loss back to the pixels: the loss and its
// gradient on the probabilities and logits, each layer's output gradient (blue < 0 < orange, zero
// dark), each convolution's filters beside their gradients, and the saliency dL/dx over the input.
// Stages are numbered as in the forward view: stage 0 is the input, stage s the output of
// model.layers[s - 1].
import {$, el, fmtg, pct} from "./dom.js";
import {divergingLegend, legend} from "./figures.js";
import {DIVERGING, divergingScale, grey, largest, paint, paintVector, ramp} from "./heatmap.js";
import {bw, filterKernel, logitGradient} from "./backward_state.js";
import {filterPoint, gradientPoint, softmaxPoint, unhoverGradients} from "./backward_inspector.js";
import {state} from "./page_state.js";

/** A new section at the end of #backward: a title, a note, a legend (hidden) and a grid of maps. */
export function stageSection(title, note) {
  const section = el("div", "bw-stage"), h3 = el("h3"), holder = el("span", "legend");
  h3.append(title, el("span", "", note));
  holder.hidden = true;
  h3.append(holder);
  const grid = el("div", "maps");
  section.append(h3, grid);
  $("backward").append(section);
  return {section, legend: holder, grid, maps: []};
}

function gradientMap(parent, size, stage, channel) {
  const wrap = el("div", "map");
  wrap.style.width = wrap.style.height = `${size}px`;
  const canvas = el("canvas"), box = el("div", "window"), cursor = el("div", "cursor");
  box.hidden = cursor.hidden = true;
  wrap.append(canvas, box, cursor);
  parent.append(wrap);
  const point = (event) => gradientPoint(stage, channel, event);
  canvas.addEventListener("mousemove", point);
  canvas.addEventListener("pointerdown", point);      // tap to inspect on touch screens
  canvas.addEventListener("mouseleave", unhoverGradients);
  return {canvas, wrap, box, cursor};
}

function buildHead(onStep) {
  const head = el("div", "bw-head");
  head.innerHTML = `
    <p id="bw-target">Draw a digit, or take a test image, to see its gradients.</p>
    <p id="bw-loss"></p>
    <div class="row">
      <label>Learning rate <input id="bw-lr" type="number" min="0.001" max="10" step="0.01" value="0.1"></label>
      <button id="bw-step" type="button">Take one step</button>
      <span class="note" id="bw-step-note">one SGD step on this image alone, on a copy: the served network never changes</span>
    </div>
    <div id="bw-after" hidden></div>`;
  head.querySelector("#bw-step").addEventListener("click", onStep);
  return head;
}

function buildLossStage() {
  const view = stageSection("Loss → probabilities",
    "dL/dp = −1/p at the target, 0 elsewhere; on the logits z: dL/dz = p − 1 at the target, p elsewhere");
  view.table = el("table", "softmax-grads");
  view.grid.append(view.table);
  view.table.addEventListener("mousemove", softmaxPoint);
  view.table.addEventListener("pointerdown", softmaxPoint);
  return view;
}

function buildFilterPairs(view, stage, layer) {   // each filter's weights beside dL/d(weights)
  const title = el("h4", "", `${stage}. ${layer.type}: each filter's weights beside dL/d(weights)`);
  view.filterLegends = [el("span", "legend"), el("span", "legend")];
  title.append(...view.filterLegends);
  view.filters = el("div", "filter-pairs");
  view.section.append(title, view.filters);
  view.filterCanvases = layer.filters.map((_, f) => {
    const figure = el("figure", "filter-pair"), weights = el("canvas"), grads = el("canvas");
    grads.dataset.filter = f;
    grads.addEventListener("mousemove", (event) => filterPoint(stage - 1, f, event));
    grads.addEventListener("pointerdown", (event) => filterPoint(stage - 1, f, event));
    figure.append(weights, grads, el("figcaption", "", `filter ${f + 1}`));
    view.filters.append(figure);
    return {weights, grads};
  });
}

function buildGradientStage(stage) {
  const layer = state.model.layers[stage - 1], shape = layer.output_shape;
  const view = stageSection(`dL/d(output of ${stage}. ${layer.type})`, shape.join("×"));
  if (shape.length === 3) {
    const size = shape[2] > 16 ? 52 : 64;
    for (let c = 0; c < shape[2]; c++) view.maps.push(gradientMap(view.grid, size, stage, c));
  } else {
    view.vector = el("canvas", "vector");
    view.grid.append(view.vector);
  }
  if (layer.filters) buildFilterPairs(view, stage, layer);
  return view;
}

function buildInputStage() {
  const view = stageSection("dL/dx: the saliency map",
    "how the loss changes with each input pixel x = pixel/255 − 0.5; over the drawing on the right");
  view.maps.push(gradientMap(view.grid, 128, 0, 0));
  const overlay = el("div", "map");
  overlay.style.width = overlay.style.height = "128px";
  view.overlay = el("canvas");
  overlay.append(view.overlay);
  view.grid.append(overlay);
  return view;
}

/** Empty #backward and build its head (`onStep`: the "Take one step" button) and one stage per
 * gradient of state.model, into bw.stages. */
export function buildStages(onStep) {
  const holder = $("backward");
  holder.textContent = "";
  holder.append(buildHead(onStep));
  bw.stages = [];
  const last = state.model.layers.length;
  bw.stages[last] = buildLossStage();
  for (let stage = last - 1; stage >= 1; stage--) bw.stages[stage] = buildGradientStage(stage);
  bw.stages[0] = buildInputStage();
}

// ------------------------------------------------------------------ showing an answer

function showLossStage(view, a) {
  const grads = a.layers[a.layers.length - 1].output_gradient.values;
  const rows = [["digit", (d) => d], ["p", (d) => pct(a.probabilities[d])],
                ["dL/dp", (d) => fmtg(grads[d])], ["dL/dz", (d) => fmtg(logitGradient(a, d))]];
  const m = Math.max(...a.probabilities.map((_, d) => Math.abs(logitGradient(a, d))), 1e-12);
  view.table.textContent = "";
  for (const [name, cell] of rows) {
    const tr = view.table.insertRow();
    tr.append(el("th", "", name));
    a.probabilities.forEach((_, d) => {
      const td = tr.insertCell();
      td.textContent = cell(d);
      td.dataset.digit = d;
      if (name === "dL/dz") {
        const [r, g, b] = divergingScale(m)(logitGradient(a, d));
        td.style.background = `rgb(${r},${g},${b})`;
      }
      if (d === a.label) td.classList.add("target");
    });
  }
  divergingLegend(view.legend, -1, 1);
}

function showFilterPairs(view, layerIndex, a) {
  const weights = state.model.layers[layerIndex].filters.map(filterKernel);
  const grads = a.layers[layerIndex].param_gradients.filters.map(filterKernel);
  const wm = largest(weights.flat(2)), gm = largest(grads.flat(2));
  legend(view.filterLegends[0], divergingScale(wm), -wm, wm, `weights ${fmtg(-wm)} · 0 · ${fmtg(wm)}`);
  legend(view.filterLegends[1], divergingScale(gm), -gm, gm, `gradients ${fmtg(-gm)} · 0 · ${fmtg(gm)}`);
  view.filterCanvases.forEach(({weights: wc, grads: gc}, f) => {
    paint(wc, weights[f], divergingScale(wm));
    paint(gc, grads[f], divergingScale(gm));
  });
}

function showGradientStage(stage, a) {
  const view = bw.stages[stage], grad = a.layers[stage - 1].output_gradient;
  const m = Math.max(Math.abs(grad.min), Math.abs(grad.max)), colour = divergingScale(m);
  divergingLegend(view.legend, grad.min, grad.max);
  if (grad.maps) grad.maps.forEach((rows, c) => paint(view.maps[c].canvas, rows, colour));
  else paintVector(view.vector, grad.values, colour, 0);
  if (view.filterCanvases) showFilterPairs(view, stage - 1, a);
}

function showInputStage(a) {
  const view = bw.stages[0], g = a.input_gradient;
  const m = largest(g.flat()), colour = divergingScale(m);
  divergingLegend(view.legend, Math.min(...g.flat()), Math.max(...g.flat()));
  paint(view.maps[0].canvas, g, colour);
  // Saliency over the drawing: the input in grey, each pixel tinted by its gradient, |g| as opacity.
  const canvas = view.overlay;
  paint(canvas, a.input, grey);
  const ctx = canvas.getContext("2d"), img = ctx.getImageData(0, 0, 28, 28);
  g.forEach((row, y) => row.forEach((v, x) => {
    const [r, gr, b] = ramp(DIVERGING, v < 0 ? 0 : 1), alpha = Math.abs(v) / (m || 1), o = 4 * (28 * y + x);
    img.data[o] = img.data[o] * (1 - alpha) + r * alpha;
    img.data[o + 1] = img.data[o + 1] * (1 - alpha) + gr * alpha;
    img.data[o + 2] = img.data[o + 2] * (1 - alpha) + b * alpha;
  }));
  ctx.putImageData(img, 0, 0);
}

/** Paint every stage of POST /api/backward's answer `a`. */
export function showGradients(a) {
  const last = state.model.layers.length;
  showLossStage(bw.stages[last], a);
  for (let stage = last - 1; stage >= 1; stage--) showGradientStage(stage, a);
  showInputStage(a);
}
