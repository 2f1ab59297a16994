// scratchcnn's backward view: the gradients of the digit you drew, from the loss back to its pixels.
// Plain JavaScript, no libraries; loaded after app.js, whose globals it uses (model, result,
// stageViews, paint, ramp, DIVERGING, colourScale, valueGrid, placeBox, setStatus, showResult, ...).
//
// 1. The "Forward | Backward" switch shows the maps of app.js (#stages) or these (#backward).
// 2. In the backward view every drawing is sent to POST /api/backward with a target label: the
//    prediction by default, or the digit whose probability bar was clicked ("what if it were a 5?").
// 3. It shows, from the top: the loss and its gradient on the probabilities and the logits, each
//    layer's output gradient (blue < 0 < orange, zero dark), the filters beside their gradients,
//    the saliency dL/dx over the drawing, and the last layer's 10 weight templates.
// 4. Hovering (or tapping) a gradient pixel explains its number in #inspect.
// 5. "Take one step" shows the probabilities before and after one SGD step on this image alone.
// Also: a colour legend on each forward stage, and MNIST test images (by index, or a mistake).
//
// Stages are numbered as in app.js: stage 0 is the input, stage s the output of model.layers[s - 1].
"use strict";

const bw = {
  view: "forward",
  source: null,      // what the page shows: {drawing: {width, height, pixels}} or {image, index, label}
  target: null,      // the digit the loss is taken at; null = the prediction (a test image: its label)
  answer: null,      // the last POST /api/backward
  stale: true,       // the answer is not about the current source, target and lr
  templates: null,   // GET /api/templates
  templateMode: "summed",
  templateDigit: null,
  stepShown: false,
  requestId: 0,
  stages: [],        // per stage: {section, legend, maps: [{canvas, wrap, cursor, box}], vector, extra}
};

// ------------------------------------------------------------------ numbers and colours

const fmtg = (v) => (v === 0 ? "0" : String(Number(v.toPrecision(3))));   // 0.00123, -646, 1.5e-7
const pct = (p) => `${(100 * p).toFixed(1)}%`;

function divergingScale(m) {             // blue < 0 < orange, zero neutral, symmetric around 0
  m = m > 0 ? m : 1e-30;
  return (v) => ramp(DIVERGING, 0.5 + v / (2 * m));
}

const largest = (values) => values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

// A colour bar with its range written beside it. Diverging: -m .. 0 .. +m, and the values' range.
function legend(holder, colour, lo, hi, text) {
  holder.textContent = "";
  const bar = el("span", "bar");          // a CSS gradient, not a canvas: the maps are the only canvases
  const stops = Array.from({length: 9}, (_, i) => `rgb(${colour(lo + (hi - lo) * i / 8).join(",")})`);
  bar.style.background = `linear-gradient(to right, ${stops.join(", ")})`;
  const label = document.createElement("span");
  label.textContent = text;
  holder.append(bar, label);
  holder.hidden = false;
}

function divergingLegend(holder, min, max) {
  const m = Math.max(Math.abs(min), Math.abs(max));
  legend(holder, divergingScale(m), -m, m, `${fmtg(-m)} · 0 · ${fmtg(m)}   (values ${fmtg(min)} … ${fmtg(max)})`);
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// ------------------------------------------------------------------ the forward view's legends

function forwardLegends() {
  if (!result) return;
  document.querySelectorAll("#stages .stage").forEach((section, stage) => {
    const title = section.querySelector("h3");
    let holder = title.querySelector(".legend");
    if (!holder) { holder = el("span", "legend"); title.append(holder); }
    if (stage === 0) { legend(holder, grey, 0, 255, "−0.5 (black) … +0.5 (white)"); return; }
    const out = result.layers[stage - 1], colour = colourScale(out.min, out.max);
    if (out.min < 0) {
      const m = Math.max(-out.min, out.max);
      legend(holder, colour, -m, m, `${fmtg(-m)} · 0 · ${fmtg(m)}   (values ${fmtg(out.min)} … ${fmtg(out.max)})`);
    } else {
      legend(holder, colour, 0, Math.max(out.max, 1e-6), `0 … ${fmtg(out.max)}`);
    }
  });
}

// ------------------------------------------------------------------ the switch

function setView(view) {
  bw.view = view;
  document.querySelectorAll("#view-switch button").forEach((b) =>
    b.setAttribute("aria-pressed", String(b.dataset.view === view)));
  $("stages").hidden = view !== "forward";
  $("backward").hidden = view !== "backward";
  document.body.classList.toggle("backward-view", view === "backward");
  $("flow-hint").textContent = view === "forward" ? "hover a pixel of a convolution map"
    : "hover or tap a gradient pixel; click a probability bar to change the target";
  unhover();
  bwUnhover();
  showHint();
  if (view === "backward" && bw.stale) requestBackward();
}

const FORWARD_HINT = $("inspect").textContent;
const BACKWARD_HINT = "Hover or tap a gradient pixel, a filter's gradient or a logit to see where its number comes from.";

function showHint() { $("inspect").textContent = bw.view === "backward" ? BACKWARD_HINT : FORWARD_HINT.trim(); }

// ------------------------------------------------------------------ building the backward view

function stageSection(title, note) {
  const section = el("div", "bw-stage");
  const h3 = el("h3");
  h3.append(title, el("span", "", note));
  const holder = el("span", "legend");
  holder.hidden = true;
  h3.append(holder);
  const grid = el("div", "maps");
  section.append(h3, grid);
  $("backward").append(section);
  return {section, legend: holder, grid, maps: []};
}

function gradientMap(parent, size, stage, channel, onPoint) {
  const wrap = el("div", "map");
  wrap.style.width = wrap.style.height = `${size}px`;
  const canvas = el("canvas"), box = el("div", "window"), cursor = el("div", "cursor");
  box.hidden = cursor.hidden = true;
  wrap.append(canvas, box, cursor);
  parent.append(wrap);
  const point = (event) => onPoint(stage, channel, event);
  canvas.addEventListener("mousemove", point);
  canvas.addEventListener("pointerdown", point);      // tap to inspect on touch screens
  canvas.addEventListener("mouseleave", bwUnhover);
  return {canvas, wrap, box, cursor};
}

function buildBackward() {
  const holder = $("backward");
  holder.textContent = "";
  holder.append(buildHead());
  bw.stages = [];
  const last = model.layers.length;
  bw.stages[last] = buildLossStage();
  for (let stage = last - 1; stage >= 1; stage--) bw.stages[stage] = buildGradientStage(stage);
  bw.stages[0] = buildInputStage();
  buildTemplates();
}

function buildHead() {
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
  head.querySelector("#bw-step").addEventListener("click", takeStep);
  return head;
}

function buildLossStage() {
  const view = stageSection("Loss → probabilities",
    "dL/dp = −1/p at the target, 0 elsewhere; on the logits z: dL/dz = p − 1 at the target, p elsewhere");
  const table = el("table", "softmax-grads");
  view.grid.append(table);
  view.table = table;
  table.addEventListener("mousemove", softmaxPoint);
  table.addEventListener("pointerdown", softmaxPoint);
  return view;
}

function buildGradientStage(stage) {
  const layer = model.layers[stage - 1], shape = layer.output_shape;
  const view = stageSection(`dL/d(output of ${stage}. ${layer.type})`, shape.join("×"));
  if (shape.length === 3) {
    const size = shape[2] > 16 ? 52 : 64;
    for (let c = 0; c < shape[2]; c++) view.maps.push(gradientMap(view.grid, size, stage, c, gradientPoint));
  } else {
    view.vector = el("canvas", "vector");
    view.grid.append(view.vector);
  }
  if (layer.filters) {
    const title = el("h4", "", `${stage}. ${layer.type}: each filter's weights beside dL/d(weights)`);
    view.filterLegends = [el("span", "legend"), el("span", "legend")];
    title.append(...view.filterLegends);
    view.filters = el("div", "filter-pairs");
    view.section.append(title, view.filters);
    view.filterCanvases = layer.filters.map((_, f) => {
      const figure = el("figure", "filter-pair");
      const weights = el("canvas"), grads = el("canvas");
      grads.dataset.filter = f;
      grads.addEventListener("mousemove", (event) => filterPoint(stage - 1, f, event));
      grads.addEventListener("pointerdown", (event) => filterPoint(stage - 1, f, event));
      figure.append(weights, grads, el("figcaption", "", `filter ${f + 1}`));
      view.filters.append(figure);
      return {weights, grads};
    });
  }
  return view;
}

function buildInputStage() {
  const view = stageSection("dL/dx: the saliency map",
    "how the loss changes with each input pixel x = pixel/255 − 0.5; over the drawing on the right");
  view.maps.push(gradientMap(view.grid, 128, 0, 0, gradientPoint));
  const overlay = el("div", "map");
  overlay.style.width = overlay.style.height = "128px";
  view.overlay = el("canvas");
  overlay.append(view.overlay);
  view.grid.append(overlay);
  return view;
}

// ------------------------------------------------------------------ talking to the server

function currentTarget() {
  if (bw.target !== null) return bw.target;
  if (bw.source && bw.source.label !== undefined) return bw.source.label;
  return result ? result.prediction : 0;
}

async function requestBackward() {
  if (!bw.source || !model) return;
  const id = ++bw.requestId;
  const lr = Number($("bw-lr").value);
  const body = {...(bw.source.drawing || {image: bw.source.image}), label: currentTarget(), lr,
                ...(page.predictOn ? {network: page.predictOn} : {})};   // the training snapshot (train.js)
  setStatus("Computing the gradients…");
  try {
    const response = await fetch("/api/backward", {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
    });
    const answer = await response.json();
    if (id !== bw.requestId) return;
    if (!response.ok) throw new Error(answer.error || response.statusText);
    bw.answer = answer;
    bw.stale = false;
    if (bw.source.image) {              // a test image: the forward view's maps come from here too
      result = {prediction: answer.prediction, probabilities: answer.probabilities, blank: answer.blank,
                input: answer.input, layers: answer.layers.map((l) => l.output)};
      showResult();
      forwardLegends();
    }
    markTarget();
    showBackward();
    setStatus(sourceText());
  } catch (error) {
    if (id === bw.requestId) setStatus(`Error: ${error.message}`, true);
  }
}

function sourceText() {
  const s = bw.source;
  if (!s || !s.image) return `Stroke ${strokes} · draw more, or Clear.`;
  const said = result ? `; the network says ${result.prediction}` : "";
  return `Test image #${s.index}, labelled ${s.label}${said} · draw on it, or Clear.`;
}

async function showTestImage(query) {
  setStatus("Fetching a test image…");
  try {
    const response = await fetch(`/api/test-image?${query}`);
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.statusText);
    paintOnPad(answer.pixels);
    requestCount += 1;                    // drop any drawing's answer still on its way
    strokes = 0;
    bw.source = {image: answer.pixels, index: answer.index, label: answer.label};
    bw.target = null;
    bw.stepShown = false;
    $("test-index").value = answer.index;
    await requestBackward();
  } catch (error) {
    setStatus(`Error: ${error.message}`, true);
  }
}

function paintOnPad(pixels) {             // the 28x28 test image, blown up onto the drawing pad
  const small = el("canvas");
  paint(small, pixels, grey);
  ink.imageSmoothingEnabled = false;
  ink.drawImage(small, 0, 0, pad.width, pad.height);
}

// ------------------------------------------------------------------ targets and the step

function setTarget(digit) {
  bw.target = digit;
  bw.stale = true;
  if (bw.view !== "backward") setView("backward");
  else requestBackward();
}

function markTarget() {
  const target = currentTarget();
  document.querySelectorAll("#probs li").forEach((li) =>
    li.classList.toggle("target", Number(li.dataset.digit) === target && bw.source !== null));
}

async function takeStep() {
  bw.stepShown = true;
  const lr = Number($("bw-lr").value);
  if (!bw.answer || bw.answer.after_step.lr !== lr || bw.stale) await requestBackward();
  else showStep();
}

function showStep() {
  const box = $("bw-after"), a = bw.answer;
  box.hidden = !bw.stepShown || !a;
  if (box.hidden) return;
  box.textContent = "";
  const after = a.after_step.probabilities;
  box.append(el("p", "", `After one SGD step (lr ${a.after_step.lr}) on this image alone, ` +
    `p[${a.label}] goes from ${pct(a.probabilities[a.label])} to ${pct(after[a.label])}:`));
  const list = el("ol", "step-bars");
  a.probabilities.forEach((p, d) => {
    const li = el("li", d === a.label ? "target" : "");
    li.innerHTML = `<b>${d}</b><span class="track"><span class="fill before"></span>` +
      `<span class="fill after"></span></span><i>${pct(p)} → ${pct(after[d])}</i>`;
    li.querySelector(".before").style.width = pct(p);
    li.querySelector(".after").style.width = pct(after[d]);
    list.append(li);
  });
  box.append(list);
}

// ------------------------------------------------------------------ showing an answer

function showBackward() {
  const a = bw.answer, last = model.layers.length;
  const target = a.label, p = a.probabilities;
  const how = bw.target !== null ? `what if it were a ${target}?` :
    (bw.source.label !== undefined ? "the true label" : "the prediction");
  $("bw-target").innerHTML = `Target <b class="value">${target}</b> (${how}). ` +
    `Click a probability bar to pick another${bw.target !== null ? ", or <a href='#' id='bw-follow'>follow the prediction</a>" : ""}.`;
  const follow = $("bw-follow");
  if (follow) follow.addEventListener("click", (event) => { event.preventDefault(); setTarget(null); });
  $("bw-loss").innerHTML = `Loss L = −log p[${target}] = −log ${fmtg(p[target])} = <b>${fmtg(a.loss)}</b>`;
  showHint();
  showLossStage(bw.stages[last], a);
  for (let stage = last - 1; stage >= 1; stage--) showGradientStage(stage, a);
  showInputStage(a);
  showTemplates();
  showStep();
}

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

function logitGradient(a, d) { return a.probabilities[d] - (d === a.label ? 1 : 0); }

function showGradientStage(stage, a) {
  const view = bw.stages[stage], grad = a.layers[stage - 1].output_gradient;
  const m = Math.max(Math.abs(grad.min), Math.abs(grad.max)), colour = divergingScale(m);
  divergingLegend(view.legend, grad.min, grad.max);
  if (grad.maps) {
    grad.maps.forEach((rows, c) => paint(view.maps[c].canvas, rows, colour));
  } else {
    const cols = Math.min(grad.values.length, 32), rows = [];
    for (let i = 0; i < grad.values.length; i += cols) {
      const row = grad.values.slice(i, i + cols);
      while (row.length < cols) row.push(0);
      rows.push(row);
    }
    paint(view.vector, rows, colour);
    view.vector.style.width = `${Math.min(cols * 18, 520)}px`;
  }
  if (view.filterCanvases) showFilterPairs(view, stage - 1, a);
}

function filterKernel(filter) {          // (k, k, C) weights or (k, k[, C]) gradients -> (k, k), summed over C
  return filter.map((row) => row.map((v) => (Array.isArray(v) ? v.reduce((s, x) => s + x, 0) : v)));
}

function showFilterPairs(view, layerIndex, a) {
  const weights = model.layers[layerIndex].filters.map(filterKernel);
  const grads = a.layers[layerIndex].param_gradients.filters.map(filterKernel);
  const wm = largest(weights.flat(2)), gm = largest(grads.flat(2));
  legend(view.filterLegends[0], divergingScale(wm), -wm, wm, `weights ${fmtg(-wm)} · 0 · ${fmtg(wm)}`);
  legend(view.filterLegends[1], divergingScale(gm), -gm, gm, `gradients ${fmtg(-gm)} · 0 · ${fmtg(gm)}`);
  view.filterCanvases.forEach(({weights: wc, grads: gc}, f) => {
    paint(wc, weights[f], divergingScale(wm));
    paint(gc, grads[f], divergingScale(gm));
  });
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

// ------------------------------------------------------------------ the last layer's templates

function buildTemplates() {
  const t = bw.templates;
  if (!t || !t.templates) return;
  const view = stageSection(`What ${t.layer + 1}. ${t.type} looks for`,
    `each digit's weights reshaped to its input, ${t.input_shape.join("×")}; orange pushes towards the digit, blue away`);
  const modes = el("div", "template-modes");
  for (const mode of ["summed", "per channel"]) {
    const button = el("button", "", mode);
    button.type = "button";
    button.setAttribute("aria-pressed", String(mode === bw.templateMode));
    button.addEventListener("click", () => { bw.templateMode = mode; showTemplates(); });
    modes.append(button);
  }
  view.section.querySelector("h3").after(modes);
  bw.templateView = view;
}

function showTemplates() {
  const t = bw.templates, view = bw.templateView;
  if (!t || !t.templates || !view) return;
  view.section.querySelectorAll(".template-modes button").forEach((b) =>
    b.setAttribute("aria-pressed", String(b.textContent === bw.templateMode)));
  const digit = bw.templateDigit ?? (bw.answer ? bw.answer.label : 0);
  view.grid.textContent = "";
  const summed = t.templates.map((maps) => maps[0].map((row, y) => row.map((_, x) =>
    maps.reduce((s, map) => s + map[y][x], 0))));
  const shown = bw.templateMode === "summed" ? summed : t.templates[digit];
  const m = largest(shown.flat(2)), colour = divergingScale(m);
  legend(view.legend, colour, -m, m, `${fmtg(-m)} · 0 · ${fmtg(m)}`);
  view.legend.hidden = false;
  shown.forEach((rows, i) => {
    const figure = el("figure", "template");
    const canvas = el("canvas");
    paint(canvas, rows, colour);
    const caption = bw.templateMode === "summed" ? `${i}` : `digit ${digit}, map ${i + 1}`;
    figure.append(canvas, el("figcaption", "", caption));
    if (bw.templateMode === "summed") {
      figure.classList.toggle("target", i === digit);
      figure.title = `digit ${i}: click to see it per channel`;
      figure.addEventListener("click", () => { bw.templateDigit = i; bw.templateMode = "per channel"; showTemplates(); });
    }
    view.grid.append(figure);
  });
}

// ------------------------------------------------------------------ hovering: the numbers behind a pixel

function bwUnhover() {
  for (const view of bw.stages) for (const m of (view ? view.maps : [])) { m.box.hidden = true; m.cursor.hidden = true; }
}

function pixelAt(event, h, w) {
  const box = event.target.getBoundingClientRect();
  return [Math.min(h - 1, Math.max(0, Math.floor((event.clientY - box.top) / box.height * h))),
          Math.min(w - 1, Math.max(0, Math.floor((event.clientX - box.left) / box.width * w)))];
}

function gradientRows(stage, channel) {  // the gradient map a stage shows, as rows
  const a = bw.answer;
  return stage === 0 ? a.input_gradient : a.layers[stage - 1].output_gradient.maps[channel];
}

function gradientPoint(stage, channel, event) {
  if (!bw.answer) return;
  const rows = gradientRows(stage, channel), [row, col] = pixelAt(event, rows.length, rows[0].length);
  bwUnhover();
  const here = bw.stages[stage].maps[channel];
  placeBox(here.cursor, row, col, 1, rows.length, rows[0].length);
  const next = model.layers[stage];       // the layer that sent this gradient back
  const panel = $("inspect");
  panel.textContent = "";
  const name = stage === 0 ? "dL/dx" : `dL/d(output of ${stage}. ${model.layers[stage - 1].type})`;
  const head = el("p");
  head.innerHTML = `<b>${name}</b>${stage > 0 ? `, map ${channel + 1}` : ""}, row ${row}, column ${col}: ` +
                   `<b class="value">${fmtg(rows[row][col])}</b>`;
  panel.append(head);
  if (next.type.endsWith("Pool2")) explainPool(panel, stage, channel, row, col);
  else if (next.filters) explainConv(panel, stage, channel, row, col);
  else if (stage === model.layers.length - 1 && bw.templates && bw.templates.templates) explainLast(panel, channel, row, col);
  else panel.append(el("p", "note", `${next.type}'s backward turned the gradient of its output into this one.`));
}

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
  const spots = ["top left", "top right", "bottom left", "bottom right"];
  const here = (row - r0) * 2 + (col - c0);
  const eq = el("div", "equation");
  const lo = Math.min(...fwd.flat()), hi = Math.max(...fwd.flat());
  eq.append(valueGrid(fwd, colourScale(Math.min(lo, 0), Math.max(hi, 1e-6)), "forward: the 2×2 window"),
            symbol("→"), gradientGrid(win, "backward: its gradients"));
  placeBox(bw.stages[stage].maps[channel].box, r0, c0, 2, grads.length, grads[0].length);
  const upView = bw.stages[stage + 1].maps[channel];
  if (upView) placeBox(upView.cursor, i, j, 1, up.length, up[0].length);
  const total = el("p", "total");
  total.innerHTML = `Max pooling kept the <b>${spots[winner]}</b> value (${fmt(fwd.flat()[winner])}), so the ` +
    `gradient of the pooled pixel, <b>${fmtg(up[i][j])}</b>, goes to that position alone; the other three ` +
    `got 0. This pixel is the ${spots[here]} one: ${here === winner ? "the maximum" : "not the maximum, so 0"}.`;
  panel.append(eq, total);
}

function explainConv(panel, stage, channel, row, col) {
  const layer = model.layers[stage], {size: k, stride, padding} = layer.window;
  const up = bw.answer.layers[stage].output_gradient.maps;              // (F, Ho, Wo)
  const ho = up[0].length, wo = up[0][0].length;
  const cells = [], terms = [];
  let total = 0;
  for (let ki = 0; ki < k; ki++) {
    const line = [];
    for (let kj = 0; kj < k; kj++) {
      const i = (row + padding - ki) / stride, j = (col + padding - kj) / stride;
      if (!Number.isInteger(i) || !Number.isInteger(j) || i < 0 || j < 0 || i >= ho || j >= wo) { line.push(null); continue; }
      let sum = 0;
      layer.filters.forEach((filter, f) => { sum += up[f][i][j] * filter[ki][kj][channel]; });
      line.push(sum);
      terms.push([i, j]);
      total += sum;
    }
    cells.push(line);
  }
  if (stride === 1) {
    for (const m of bw.stages[stage + 1].maps) placeBox(m.box, row + padding - k + 1, col + padding - k + 1, k, ho, wo);
  }
  const eq = el("div", "equation");
  eq.append(gradientGrid(cells, "one term per window"), symbol(`= ${fmtg(total)}`));
  const note = el("p", "total");
  note.innerHTML = `This pixel sits in <b>${terms.length}</b> of the ${k}×${k} windows ${stage + 1}. ${layer.type} ` +
    `slid over it (outlined above). For each window, and each of its ${layer.filters.length} filters, the upstream ` +
    `gradient at that window times the filter weight that touched this pixel; the cell at (a, b) is the window ` +
    `where this pixel met weight (a, b). Their sum is dL/d(this pixel).`;
  panel.append(eq, note);
}

function explainLast(panel, channel, row, col) {
  const t = bw.templates, a = bw.answer, [h, w, c] = t.input_shape;
  const rows = a.probabilities.map((_, d) => {
    const weight = t.templates[d][channel][row][col];
    return [d, logitGradient(a, d), weight, logitGradient(a, d) * weight];
  });
  const total = rows.reduce((s, r) => s + r[3], 0);
  const table = el("table", "terms");
  table.innerHTML = "<tr><th>digit</th><th>dL/dz</th><th>weight</th><th>product</th></tr>" +
    rows.map(([d, g, wt, prod]) => `<tr class="${d === a.label ? "target" : ""}"><td>${d}</td><td>${fmtg(g)}</td>` +
      `<td>${fmtg(wt)}</td><td>${fmtg(prod)}</td></tr>`).join("");
  const note = el("p", "total");
  note.innerHTML = `Input ${(row * w + col) * c + channel} of the ${t.type} layer feeds all ${rows.length} logits; ` +
    `its gradient is the sum of dL/dz times its weight for each digit = <b>${fmtg(total)}</b>.`;
  panel.append(table, note);
}

function softmaxPoint(event) {
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
  for (const line of lines) { const para = el("p"); para.innerHTML = line; panel.append(para); }
}

function filterPoint(layerIndex, f, event) {
  if (!bw.answer) return;
  const layer = model.layers[layerIndex], k = layer.window.size;
  const [ki, kj] = pixelAt(event, k, k);
  const grads = bw.answer.layers[layerIndex].param_gradients.filters[f];
  const value = filterKernel(grads)[ki][kj];
  const panel = $("inspect");
  panel.textContent = "";
  const up = bw.answer.layers[layerIndex].output_gradient.maps[f];
  const head = el("p");
  head.innerHTML = `<b>dL/d(filter ${f + 1} weight (${ki}, ${kj}))</b>: <b class="value">${fmtg(value)}</b>` +
    ` (weight ${fmtg(filterKernel(layer.filters[f])[ki][kj])})`;
  const note = el("p", "total");
  note.innerHTML = `The sum, over all ${up.length}×${up[0].length} positions where the filter was applied, of ` +
    `the upstream gradient there (map ${f + 1} of dL/d(output)) times the input pixel this weight touched there` +
    `${layer.input_shape.length === 3 ? ", summed over the input maps" : ""}. An SGD step moves the weight by −lr × this.`;
  panel.append(head, note);
}

function gradientGrid(values, caption) {  // valueGrid, on the diverging scale, with gradient numbers
  const m = largest(values.flat().filter((v) => v !== null));
  const figure = valueGrid(values, divergingScale(m), caption);
  figure.querySelectorAll("td").forEach((td, i) => {
    const v = values.flat()[i];
    td.textContent = v === null ? "–" : fmtg(v);     // null: no window there (the map's edge)
  });
  figure.querySelector("table").classList.add("wide");
  return figure;
}

// ------------------------------------------------------------------ wiring

document.addEventListener("scratchcnn:model", async () => {
  try {
    const response = await fetch("/api/templates");
    bw.templates = response.ok ? await response.json() : null;
  } catch (error) {
    bw.templates = null;
  }
  buildBackward();
});

document.addEventListener("scratchcnn:result", (event) => {
  bw.source = {drawing: event.detail.drawing};
  bw.stale = true;
  forwardLegends();
  markTarget();
  if (bw.view === "backward") requestBackward();
});

document.addEventListener("scratchcnn:cleared", () => {
  bw.source = bw.answer = null;
  bw.target = bw.templateDigit = null;
  bw.stale = true;
  bw.stepShown = false;
  if (model) buildBackward();
  document.querySelectorAll("#stages .legend").forEach((l) => { l.hidden = true; });
});

document.querySelectorAll("#view-switch button").forEach((button) =>
  button.addEventListener("click", () => setView(button.dataset.view)));

$("probs").addEventListener("click", (event) => {
  const li = event.target.closest("li");
  if (li && bw.source) setTarget(Number(li.dataset.digit));
});

$("test-show").addEventListener("click", () => showTestImage(`index=${encodeURIComponent($("test-index").value)}`));
$("test-mistake").addEventListener("click", () => {
  const after = bw.source && bw.source.image ? bw.source.index : -1;
  showTestImage(after >= 0 ? `mistake=1&after=${after}` : "mistake=1");
});
