// The forward view: every stage of the network as heatmaps (#stages), the 10 probabilities
// (#probs) and what the network sees (#seen). Hovering (or tapping) a map pixel outlines the input
// window it was computed from and explains its number in #inspect (forward_inspector.js).
//
// "Stages" are the network's activations: stage 0 is the 28x28 input, stage i+1 is the output of
// layer i (state.model.layers[i]).
import {$, el, fmtg, pct} from "./dom.js";
import {legend, placeBox} from "./figures.js";
import {inspectPixel} from "./forward_inspector.js";
import {colourScale, grey, paint, paintVector} from "./heatmap.js";
import {state} from "./page_state.js";

let stageViews = [];       // per stage: {kind, legend, maps: [{canvas, windowBox, cursor, wrap}]}
const HINT = $("inspect").textContent.trim();   // what #inspect says before anything is hovered

function shapeText(shape) { return shape.join("×"); }

function layerText(layer) {
  const c = layer.config, out = shapeText(layer.output_shape);
  if (layer.filters) {
    const f = layer.filters.length, k = layer.filters[0].length, ch = layer.input_shape[2] || 1;
    return `${f} filters, ${k}×${k}${ch > 1 ? `×${ch}` : ""} → ${out}`;
  }
  if (layer.type.endsWith("Pool2")) return `2×2 windows, stride 2 → ${out}`;
  if (layer.type === "ReLU") return `max(0, x) → ${out}`;
  if (layer.type === "Softmax") return `fully connected ${c.input_len} → ${c.nodes}, softmax`;
  if (layer.type === "Dense") return `fully connected ${c.in_features ?? shapeText(layer.input_shape)} → ${out}`;
  if (layer.type === "Dropout") return `off when predicting → ${out}`;
  return `→ ${out}`;
}

function makeMap(parent, size, stage, channel) {
  const wrap = el("div", "map");
  wrap.style.width = wrap.style.height = `${size}px`;
  const canvas = el("canvas"), windowBox = el("div", "window"), cursor = el("div", "cursor");
  windowBox.hidden = cursor.hidden = true;
  wrap.append(canvas, windowBox, cursor);
  parent.append(wrap);
  if (stage > 0) {
    canvas.addEventListener("mousemove", (event) => hover(stage, channel, event));
    canvas.addEventListener("pointerdown", (event) => hover(stage, channel, event));  // tap to inspect
    canvas.addEventListener("mouseleave", unhover);
  }
  return {canvas, windowBox, cursor, wrap};
}

function buildStage(holder, shape, stage) {
  const layer = stage > 0 ? state.model.layers[stage - 1] : null;
  const section = el("div", "stage"), title = el("h3"), grid = el("div", "maps");
  title.innerHTML = stage === 0
    ? `Input <span>28×28, scaled to [−0.5, 0.5]</span>`
    : `${stage}. ${layer.type} <span>${layerText(layer)}</span>`;
  const legendHolder = el("span", "legend");
  legendHolder.hidden = true;
  title.append(legendHolder);
  section.append(title, grid);
  holder.append(section);
  const isMaps = shape.length !== 1, channels = shape.length === 3 ? shape[2] : 1;
  const view = {kind: isMaps ? "maps" : "vector", legend: legendHolder, maps: []};
  if (isMaps) {
    const size = channels > 16 ? 52 : 64;
    for (let c = 0; c < channels; c++) view.maps.push(makeMap(grid, size, stage, c));
  } else {
    const canvas = el("canvas", "vector");
    grid.append(canvas);
    view.maps.push({canvas});
  }
  return view;
}

/** Build one section per stage of state.model (emptied: showEmpty paints nothing yet). */
export function buildForward() {
  const holder = $("stages");
  holder.textContent = "";
  const stageShapes = [state.model.input_shape, ...state.model.layers.map((l) => l.output_shape)];
  stageViews = stageShapes.map((shape, stage) => buildStage(holder, shape, stage));
}

function addBar(digit, p, winner) {
  const li = el("li", winner ? "winner" : "");
  li.dataset.digit = digit;
  li.dataset.probability = p;  // unrounded: 99.96% and 99.97% both show as 100.0%
  li.innerHTML = `<b>${digit}</b><span class="track"><span class="fill"></span></span><i></i>`;
  li.querySelector(".fill").style.width = pct(p);
  li.querySelector("i").textContent = pct(p);
  $("probs").append(li);
}

/** Blank maps, "?" and ten empty bars: no drawing yet. */
export function showEmpty() {
  for (const view of stageViews) {
    for (const m of view.maps) m.canvas.getContext("2d").clearRect(0, 0, m.canvas.width, m.canvas.height);
    view.legend.hidden = true;
  }
  $("seen").getContext("2d").clearRect(0, 0, 28, 28);
  $("prediction").textContent = "?";
  $("confidence").textContent = "";
  $("probs").textContent = "";
  for (let d = 0; d < state.model.num_classes; d++) addBar(d, 0, false);
  document.body.classList.remove("has-result");
}

function showLegends(result) {             // a colour bar and its range on every stage's title
  stageViews.forEach((view, stage) => {
    if (stage === 0) { legend(view.legend, grey, 0, 255, "−0.5 (black) … +0.5 (white)"); return; }
    const out = result.layers[stage - 1], colour = colourScale(out.min, out.max);
    if (out.min < 0) {
      const m = Math.max(-out.min, out.max);
      legend(view.legend, colour, -m, m, `${fmtg(-m)} · 0 · ${fmtg(m)}   (values ${fmtg(out.min)} … ${fmtg(out.max)})`);
    } else {
      legend(view.legend, colour, 0, Math.max(out.max, 1e-6), `0 … ${fmtg(out.max)}`);
    }
  });
}

/** Paint state.result: the input, every stage's maps, the prediction and its probability bars. */
export function showResult() {
  const result = state.result;
  paint($("seen"), result.input, grey);
  paint(stageViews[0].maps[0].canvas, result.input, grey);
  result.layers.forEach((out, i) => {
    const view = stageViews[i + 1], colour = colourScale(out.min, out.max);
    if (out.maps) out.maps.forEach((rows, c) => paint(view.maps[c].canvas, rows, colour));
    else paintVector(view.maps[0].canvas, out.values, colour, out.min);
  });
  showLegends(result);
  const best = result.prediction, probs = result.probabilities;
  $("prediction").textContent = result.blank ? "?" : best;
  $("confidence").textContent = result.blank ? "blank drawing" : `${pct(probs[best])} sure`;
  $("probs").textContent = "";
  probs.forEach((p, d) => addBar(d, p, d === best && !result.blank));
  document.body.classList.add("has-result");
}

// ------------------------------------------------------------------ hovering

/** Hide every outline the forward view drew. */
export function unhover() {
  for (const view of stageViews) {
    for (const m of view.maps) if (m.windowBox) { m.windowBox.hidden = true; m.cursor.hidden = true; }
  }
  document.querySelector("#seen-wrap .window").hidden = true;
}

function hover(stage, channel, event) {
  if (!state.result) return;
  const layer = state.model.layers[stage - 1], out = layer.output_shape;
  const box = event.target.getBoundingClientRect();
  const row = Math.min(out[0] - 1, Math.floor((event.clientY - box.top) / box.height * out[0]));
  const col = Math.min(out[1] - 1, Math.floor((event.clientX - box.left) / box.width * out[1]));
  unhover();
  placeBox(stageViews[stage].maps[channel].cursor, row, col, 1, out[0], out[1]);
  const win = layer.window;
  if (!win) return;
  // The input window: rows row*stride - padding .. + size - 1, likewise for columns.
  const r0 = row * win.stride - win.padding, c0 = col * win.stride - win.padding;
  const [h, w] = layer.input_shape;
  const inputs = layer.filters ? stageViews[stage - 1].maps.map((_, c) => c) : [channel];
  for (const c of inputs) placeBox(stageViews[stage - 1].maps[c].windowBox, r0, c0, win.size, h, w);
  if (stage === 1) placeBox(document.querySelector("#seen-wrap .window"), r0, c0, win.size, h, w);
  inspectPixel(stage, channel, row, col, [r0, c0]);
}

function onView(view) {
  unhover();
  if (view !== "forward") return;
  $("flow-hint").textContent = "hover a pixel of a convolution map";
  $("inspect").textContent = HINT;
}

/** Follow the view switch (view_switch.js): when this view is shown, say what hovering does. */
export function startForwardView() {
  document.addEventListener("scratchcnn:view", (event) => onView(event.detail.view));
}
