// scratchcnn's Explain view: why did it say 7? An ES module of its own, no libraries.
//
// 1. The "Forward | Backward | Explain" switch (view_switch.js) shows #explain and announces
//    "scratchcnn:view"; this view computes only while it is shown.
// 2. What to explain comes from the page's events: "scratchcnn:result" (detail.drawing, the
//    drawing just sent), "scratchcnn:test-image" (detail.image, a 28x28 test image the backward
//    view fetched, and its index), "scratchcnn:cleared" and "scratchcnn:model" (another network).
//    Requests go to the network the page's answers come from (state.predictOn).
// 3. Each explanation is one POST /api/explain {drawing or image, method, target, options}; the
//    map comes back as 28x28 numbers and is painted over the drawing with a legend. Integrated
//    Gradients adds its two numbers, "fool it" (adversarial) the new digit and its prediction.
// 4. GET /api/class-models: what the network "thinks" each digit looks like, fetched once per
//    network (the server computes them once too).
// Pointer events throughout: a tap on a map reads its value as a mouse hover does.

import {$} from "./dom.js";
import {state} from "./page_state.js";

// Each method: its name, the options it takes, and one line each on what it shows and where it misleads.
const METHODS = [
  {id: "saliency", name: "Saliency",
   shows: "How fast the digit's logit changes with each pixel: d logit / d pixel (Simonyan et al.).",
   misleads: "A slope, not a share: noisy, and a pixel can matter here yet have contributed nothing. Not the Backward view's map, the loss's gradient dL/dx."},
  {id: "gradient_times_input", name: "Gradient × input",
   shows: "The slope times the pixel's value: a first guess at each pixel's share of the logit.",
   misleads: "Blank pixels are −0.5, not 0, so the background gets credit (with its sign flipped); exact only for a linear network."},
  {id: "smoothgrad", name: "SmoothGrad", options: ["samples", "noise"],
   shows: "The slope averaged over noisy copies of the drawing: the speckle of saliency calms down.",
   misleads: "The noise level is a choice, and it changes the picture; smoother than the network really is."},
  {id: "integrated_gradients", name: "Integrated Gradients", options: ["steps"],
   shows: "Each pixel's share of the logit's rise from a blank image to this one; the shares add up to that rise.",
   misleads: "Shares of the rise from blank: another baseline gives another map. Shares of the logit, not of the probability."},
  {id: "occlusion", name: "Occlusion", options: ["window", "stride"],
   shows: "How much the probability drops when a square of the drawing is blanked (averaged where squares overlap).",
   misleads: "Only as sharp as the square; a blanked square is itself an image the network never saw; a confident answer hardly moves."},
  {id: "grad_cam", name: "Grad-CAM", options: ["layer"],
   shows: "Where in a layer's maps the logit looks (its maps weighed by their mean gradient), spread over the digit.",
   misleads: "Coarse by design (13×13 or 5×5 cells, each seeing a patch): roughly where, never which stroke; positive evidence only."},
  {id: "adversarial", name: "Fool it", options: ["eps", "adv_steps", "towards"],
   shows: "A digit within ±eps of yours in every pixel that the network reads differently (iterative FGSM).",
   misleads: "Not an explanation of the answer: a warning that the network's evidence is not a person's."},
];

const OPTION_INPUTS = {         // [label, attributes, the request's field]
  samples: ["samples", {type: "number", min: 1, max: 256, step: 1, value: 50}, "samples"],
  noise: ["noise σ", {type: "number", min: 0, max: 1, step: 0.05, value: 0.15}, "noise"],
  steps: ["steps", {type: "number", min: 1, max: 256, step: 1, value: 64}, "steps"],
  window: ["window", {type: "number", min: 1, max: 28, step: 1, value: 4}, "window"],
  stride: ["stride", {type: "number", min: 1, max: 28, step: 1, value: 2}, "stride"],
  // The page starts at 0.2, where most answers of a trained network flip; the API's default is 0.1.
  eps: ["eps", {type: "range", min: 0, max: 0.5, step: 0.01, value: 0.2}, "eps"],
  adv_steps: ["steps", {type: "number", min: 1, max: 256, step: 1, value: 10}, "steps"],
};

const view = {
  shown: false,
  model: null,          // GET /api/model
  source: null,         // {drawing: {width, height, pixels}} or {image: 28x28, index}
  network: null,        // "training" while the page predicts with a training snapshot
  method: "saliency",
  target: null,         // null: the prediction
  towards: null,        // adversarial: null (away from the prediction) or a digit
  answer: null,
  stale: true,
  requestId: 0,
  classModels: null,    // GET /api/class-models, for the current model
  classModelsPending: false,
};

// ------------------------------------------------------------------ colours and painting

const DIVERGING = [[120, 200, 255], [40, 110, 200], [20, 22, 30], [200, 90, 30], [255, 205, 90]];
const SEQUENTIAL = [[0, 0, 4], [66, 10, 104], [147, 38, 103], [221, 81, 58], [252, 165, 10], [252, 255, 164]];

function ramp(stops, t) {                  // t in [0, 1] -> [r, g, b]
  t = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(t)), f = t - i;
  return stops[i].map((c, k) => Math.round(c + (stops[i + 1][k] - c) * f));
}

const largest = (rows) => rows.flat().reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const fmt = (v) => (v === 0 ? "0" : String(Number(v.toPrecision(3))));
const pct = (p) => `${(100 * p).toFixed(1)}%`;

// A colour function for a map: diverging around 0 (blue < 0 < orange) if it has negative values,
// dark-to-yellow otherwise, both scaled to the largest magnitude m.
function scaleFor(rows) {
  const m = largest(rows) || 1e-12, signed = rows.flat().some((v) => v < 0);
  return {m, signed, colour: signed ? (v) => ramp(DIVERGING, 0.5 + v / (2 * m)) : (v) => ramp(SEQUENTIAL, v / m)};
}

function paintRgb(canvas, h, w, rgbAt) {
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d"), img = ctx.createImageData(w, h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const [r, g, b] = rgbAt(y, x), o = 4 * (y * w + x);
      img.data[o] = r; img.data[o + 1] = g; img.data[o + 2] = b; img.data[o + 3] = 255;
    }
  }
  ctx.putImageData(img, 0, 0);
}

const greyOf = (v) => [v, v, v];
// Pixels as the network sees them (-0.5..0.5) -> grey levels 0..255.
const levels = (rows) => rows.map((row) => row.map((v) => Math.round(255 * Math.min(1, Math.max(0, v + 0.5)))));

function paintMap(canvas, rows, scale) {
  paintRgb(canvas, rows.length, rows[0].length, (y, x) => scale.colour(rows[y][x]));
}

// The map over the drawing: the drawing at half brightness, plus the map's colour as strongly as
// its value is large, so the strokes stay visible under the tint.
function paintOverlay(canvas, input, rows, scale) {
  paintRgb(canvas, 28, 28, (y, x) => {
    const v = rows[y][x], a = Math.pow(Math.min(1, Math.abs(v) / scale.m), 0.6);
    return scale.colour(v).map((c) => Math.min(255, Math.round(0.5 * input[y][x] + a * c)));
  });
}

function legendOf(holder, scale) {
  holder.textContent = "";
  const bar = el("span", "bar");
  const lo = scale.signed ? -scale.m : 0, stops = [];
  for (let i = 0; i <= 8; i++) stops.push(`rgb(${scale.colour(lo + (scale.m - lo) * i / 8).join(",")})`);
  bar.style.background = `linear-gradient(to right, ${stops.join(", ")})`;
  holder.append(bar, el("span", "", scale.signed ? `${fmt(-scale.m)} · 0 · ${fmt(scale.m)}` : `0 … ${fmt(scale.m)}`));
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// ------------------------------------------------------------------ building the view

function build() {
  const root = $("explain");
  root.textContent = "";
  root.innerHTML = `
    <div class="ex-methods" role="radiogroup" aria-label="Explanation method"></div>
    <p class="ex-about"><b class="ex-shows"></b> <span class="ex-misleads"></span></p>
    <div class="ex-controls">
      <div class="ex-targets" role="group" aria-label="Which digit to explain"><span>Explain the digit</span></div>
      <div class="ex-options"></div>
    </div>
    <p class="ex-status" role="status"></p>
    <div class="ex-result">
      <figure class="ex-fig"><div class="ex-map"><canvas id="ex-overlay" width="28" height="28"></canvas></div>
        <figcaption>over the drawing</figcaption></figure>
      <figure class="ex-fig"><div class="ex-map"><canvas id="ex-alone" width="28" height="28"></canvas></div>
        <figcaption class="ex-alone-caption">the map alone</figcaption></figure>
      <figure class="ex-fig ex-fool"><div class="ex-map"><canvas id="ex-adv" width="28" height="28"></canvas></div>
        <figcaption>the change</figcaption></figure>
      <div class="ex-side">
        <p class="legend ex-legend"></p>
        <div class="ex-numbers"></div>
        <p class="ex-readout">Hover or tap a map to read a pixel.</p>
      </div>
    </div>
    <div class="ex-class">
      <h3>What does it think each digit looks like? <span>class models: a blank image changed, step by step,
        to raise one digit's logit (with a penalty on ink)</span></h3>
      <div class="ex-class-grid"></div>
    </div>`;
  const methods = root.querySelector(".ex-methods");
  for (const method of METHODS) {
    const button = el("button", "", method.name);
    button.type = "button";
    button.dataset.method = method.id;
    button.setAttribute("role", "radio");
    button.title = `${method.shows} Misleads: ${method.misleads}`;
    button.addEventListener("click", () => pickMethod(method.id));
    methods.append(button);
  }
  const targets = root.querySelector(".ex-targets");
  for (const digit of [null, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]) {
    const button = el("button", "", digit === null ? "its answer" : String(digit));
    button.type = "button";
    button.dataset.target = digit === null ? "" : digit;
    button.addEventListener("click", () => { view.target = digit; refresh(); });
    targets.append(button);
  }
  for (const id of ["ex-overlay", "ex-alone", "ex-adv"]) {
    $(id).addEventListener("pointermove", readPixel);
    $(id).addEventListener("pointerdown", readPixel);
  }
  pickMethod(view.method, false);
}

function optionInputs(method) {
  const holder = document.querySelector("#explain .ex-options");
  holder.textContent = "";
  for (const name of method.options || []) {
    if (name === "layer") { holder.append(layerPicker()); continue; }
    if (name === "towards") { holder.append(towardsPicker()); continue; }
    const [text, attributes] = OPTION_INPUTS[name];
    const label = el("label", "", `${text} `);
    const input = el("input");
    Object.assign(input, attributes);
    input.dataset.option = name;
    input.value = view[`option_${name}`] ?? attributes.value;
    const shown = el("output", "", input.value);
    input.addEventListener(attributes.type === "range" ? "input" : "change", () => {
      view[`option_${name}`] = input.value;
      shown.textContent = input.value;
      refresh();
    });
    label.append(input);
    if (attributes.type === "range") label.append(" ", shown);
    holder.append(label);
  }
}

function layerPicker() {                  // the layers whose output is a stack of maps
  const label = el("label", "", "layer ");
  const select = el("select");
  select.dataset.option = "layer";
  select.append(new Option("the last with maps", ""));
  (view.model ? view.model.layers : []).forEach((layer, i) => {
    if (layer.output_shape.length === 3) {
      select.append(new Option(`${i}. ${layer.type} ${layer.output_shape.slice(0, 2).join("×")}`, String(i)));
    }
  });
  select.value = view.option_layer ?? "";
  select.addEventListener("change", () => { view.option_layer = select.value; refresh(); });
  label.append(select);
  return label;
}

function towardsPicker() {
  const label = el("label", "", "make it read ");
  const select = el("select");
  select.dataset.option = "towards";
  select.append(new Option("anything but its answer", ""));
  for (let d = 0; d < 10; d++) select.append(new Option(`a ${d}`, String(d)));
  select.value = view.towards === null ? "" : String(view.towards);
  select.addEventListener("change", () => { view.towards = select.value === "" ? null : Number(select.value); refresh(); });
  label.append(select);
  return label;
}

function pickMethod(id, ask = true) {
  const method = METHODS.find((m) => m.id === id);
  if (!method || unavailable(id)) return;
  view.method = id;
  document.querySelectorAll("#explain .ex-methods button").forEach((b) =>
    b.setAttribute("aria-checked", String(b.dataset.method === id)));
  document.querySelector("#explain .ex-shows").textContent = method.shows;
  document.querySelector("#explain .ex-misleads").textContent = `Where it misleads: ${method.misleads}`;
  $("explain").dataset.method = id;
  document.querySelector("#explain .ex-targets").hidden = id === "adversarial";
  optionInputs(method);
  if (ask) refresh();
}

// Grad-CAM needs a layer whose output is a stack of maps; an MLP flattens the image first.
function unavailable(id) {
  return id === "grad_cam" && view.model && !view.model.layers.some((l) => l.output_shape.length === 3);
}

function markMethods() {
  document.querySelectorAll("#explain .ex-methods button").forEach((button) => {
    const off = unavailable(button.dataset.method);
    button.disabled = off;
    if (off) button.title = "Grad-CAM needs a layer whose output is a stack of maps; this network flattens the image first.";
  });
  if (unavailable(view.method)) pickMethod("saliency", false);
}

// ------------------------------------------------------------------ asking the server

function requestBody() {
  const method = METHODS.find((m) => m.id === view.method), body = {method: view.method};
  Object.assign(body, view.source.drawing || {image: view.source.image});
  if (view.network) body.network = view.network;
  if (view.method === "adversarial") {
    if (view.towards !== null) body.target = view.towards;
  } else if (view.target !== null) {
    body.target = view.target;
  }
  for (const name of method.options || []) {
    if (name === "layer") { if (view.option_layer) body.layer = Number(view.option_layer); continue; }
    if (name === "towards") continue;
    const value = Number(view[`option_${name}`] ?? OPTION_INPUTS[name][1].value);
    body[OPTION_INPUTS[name][2]] = value;
  }
  return body;
}

async function refresh() {
  view.stale = true;
  markTargets();
  if (!view.shown) return;
  if (!view.source) { showNothing(); return; }
  const id = ++view.requestId, started = performance.now();
  $("explain").dataset.state = "busy";
  status(`Computing ${METHODS.find((m) => m.id === view.method).name}…`);
  try {
    const response = await fetch("/api/explain", {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(requestBody()),
    });
    const answer = await response.json();
    if (id !== view.requestId) return;
    if (!response.ok) throw new Error(answer.error || response.statusText);
    view.answer = answer;
    view.stale = false;
    show(answer, performance.now() - started);
    $("explain").dataset.state = "done";
    showClassModels();         // after the first answer, not beside it: both would wait for the CPU
  } catch (error) {
    if (id !== view.requestId) return;
    $("explain").dataset.state = "error";
    status(`Error: ${error.message}`, true);
  }
}

function status(text, isError = false) {
  const line = document.querySelector("#explain .ex-status");
  line.textContent = text;
  line.classList.toggle("error", isError);
}

// ------------------------------------------------------------------ showing an answer

function show(answer, ms) {
  const input = answer.input, rows = answer.attribution, scale = scaleFor(rows);
  const fooling = answer.method === "adversarial", p = answer.probabilities;
  const captions = document.querySelectorAll("#explain .ex-fig figcaption");
  if (fooling) {                            // your digit | the adversarial digit | the change
    paintRgb($("ex-overlay"), 28, 28, (y, x) => greyOf(input[y][x]));
    paintRgb($("ex-alone"), 28, 28, (y, x) => greyOf(levels(answer.image)[y][x]));
    paintMap($("ex-adv"), rows, scale);
    captions[0].textContent = `your digit: ${answer.prediction} (${pct(p[answer.prediction])})`;
    captions[1].textContent = `the adversarial digit: ${answer.prediction_after} ` +
                              `(${pct(answer.probabilities_after[answer.prediction_after])})`;
    captions[2].textContent = `the change, magnified ${fmt(1 / (2 * scale.m))}×`;
  } else {
    paintOverlay($("ex-overlay"), input, rows, scale);
    paintMap($("ex-alone"), rows, scale);
    captions[0].textContent = "over the drawing";
    captions[1].textContent = answer.method === "grad_cam" ? "the map on the image" : "the map alone";
  }
  document.querySelector("#explain .ex-fool").hidden = !fooling;
  legendOf(document.querySelector("#explain .ex-legend"), scale);
  const numbers = document.querySelector("#explain .ex-numbers");
  numbers.textContent = "";
  const said = `It says ${answer.prediction} (${pct(p[answer.prediction])})`;
  if (fooling) {
    const eps = Number(view.option_eps ?? OPTION_INPUTS.eps[1].value);
    const flipped = answer.prediction_after !== answer.prediction;
    const goal = answer.target === null ? "" : `, asked to read ${answer.target},`;
    line(numbers, `Before: ${said}. After${goal} it says <b class="value">${answer.prediction_after}</b> ` +
         `(${pct(answer.probabilities_after[answer.prediction_after])}).`);
    line(numbers, flipped ? `Fooled, with no pixel changed by more than ${eps} (pixels run from −0.5 to 0.5).`
                          : `Not fooled at eps ${eps}: try a larger eps.`);
  } else {
    line(numbers, `${said}; explaining <b class="value">${answer.target}</b> (${pct(p[answer.target])}).`);
  }
  if (answer.method === "integrated_gradients") {
    const precise = (v) => String(Number(v.toPrecision(5)));
    line(numbers, `Sum of the map: <b class="value ex-sum">${precise(answer.sum)}</b>`);
    line(numbers, `logit(drawing) − logit(blank): <b class="value ex-gap">${precise(answer.logit_gap)}</b>`);
    line(numbers, "Completeness: the two agree (within 1% of the gap) when the path integral is accurate.", "note");
  }
  if (answer.method === "grad_cam") {
    line(numbers, `Layer ${answer.layer} (${answer.layer_type}): a ${answer.map.length}×${answer.map[0].length} map, ` +
         "each cell spread over the pixels it sees.", "note");
  }
  status(`${METHODS.find((m) => m.id === answer.method).name} · answered in ${Math.round(ms)} ms` +
         (answer.blank ? " · the drawing is blank" : ""));
}

function line(holder, html, className) {
  const p = el("p", className || "");
  p.innerHTML = html;
  holder.append(p);
}

function showNothing() {
  for (const id of ["ex-overlay", "ex-alone", "ex-adv"]) $(id).getContext("2d").clearRect(0, 0, 28, 28);
  document.querySelector("#explain .ex-numbers").textContent = "";
  document.querySelector("#explain .ex-legend").textContent = "";
  document.querySelector("#explain .ex-fool").hidden = true;
  $("explain").dataset.state = "empty";
  status("Draw a digit (or take a test image) to see why the network says what it says.");
}

function markTargets() {
  document.querySelectorAll("#explain .ex-targets button").forEach((b) =>
    b.setAttribute("aria-pressed", String(b.dataset.target === (view.target === null ? "" : String(view.target)))));
}

function readPixel(event) {
  if (!view.answer) return;
  const box = event.target.getBoundingClientRect();
  const row = Math.min(27, Math.max(0, Math.floor((event.clientY - box.top) / box.height * 28)));
  const col = Math.min(27, Math.max(0, Math.floor((event.clientX - box.left) / box.width * 28)));
  const a = view.answer, value = a.attribution[row][col];
  let text = `Pixel (${row}, ${col}): ${fmt(value)}`;
  if (a.method === "adversarial") text += `; after ${fmt(a.image[row][col])}, before ${fmt(a.input[row][col] / 255 - 0.5)}`;
  else text += `; the pixel is ${fmt(a.input[row][col] / 255 - 0.5)}`;
  document.querySelector("#explain .ex-readout").textContent = text;
}

// ------------------------------------------------------------------ class models

async function showClassModels() {
  const grid = document.querySelector("#explain .ex-class-grid");
  if (view.classModels || view.classModelsPending || !view.model) return;
  view.classModelsPending = true;
  grid.textContent = "Growing the ten class models (once per network; a few seconds)…";
  const model = view.model;
  try {
    const response = await fetch(`/api/class-models${view.network ? `?network=${view.network}` : ""}`);
    const answer = await response.json();
    if (model !== view.model) return;
    if (!response.ok) throw new Error(answer.error || response.statusText);
    view.classModels = answer;
    grid.textContent = "";
    answer.images.forEach((image, digit) => {
      const figure = el("figure", "ex-class-model");
      const canvas = el("canvas");
      paintRgb(canvas, 28, 28, (y, x) => greyOf(levels(image)[y][x]));
      const read = answer.predictions[digit];
      figure.append(canvas, el("figcaption", read === digit ? "" : "off",
                               `${digit}${read === digit ? ` · ${pct(answer.probabilities[digit])}` : ` · reads ${read}`}`));
      grid.append(figure);
    });
  } catch (error) {
    grid.textContent = `Error: ${error.message}`;
  } finally {
    view.classModelsPending = false;
  }
}

// ------------------------------------------------------------------ the page's events

function setShown(shown) {
  view.shown = shown;
  if (!shown) return;
  $("flow-hint").textContent = "pick a method; hover or tap a map to read a pixel";
  if (view.stale) refresh();
  if (!view.source || !view.stale) showClassModels();
}

async function useModel() {
  view.answer = null;
  view.classModels = null;
  try {
    view.model = await (await fetch("/api/model")).json();
  } catch (error) {
    view.model = null;
  }
  if (!$("explain").firstChild) build();
  markMethods();
  optionInputs(METHODS.find((m) => m.id === view.method));
  document.querySelector("#explain .ex-class-grid").textContent = "";
  if (view.shown && !view.source) showClassModels();
  refresh();
}

function onResult(event) {
  view.source = {drawing: event.detail.drawing};
  view.network = state.predictOn;             // the network the page's answers come from
  $("explain").dataset.source = "drawing";
  refresh();
}

function onTestImage(event) {
  view.source = {image: event.detail.image, index: event.detail.index};
  view.network = state.predictOn;
  $("explain").dataset.source = `test image #${event.detail.index}`;
  refresh();
}

function onCleared() {
  view.source = view.answer = null;
  delete $("explain").dataset.source;
  refresh();
}

/** Listen to the page's events: the view switch, drawings and test images, Clear, the network. */
export function startExplainView() {
  document.addEventListener("scratchcnn:view", (event) => setShown(event.detail.view === "explain"));
  document.addEventListener("scratchcnn:result", onResult);
  document.addEventListener("scratchcnn:test-image", onTestImage);
  document.addEventListener("scratchcnn:cleared", onCleared);
  document.addEventListener("scratchcnn:model", useModel);
  build();
}
