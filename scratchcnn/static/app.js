// scratchcnn's "draw a digit, watch it flow" page. Plain JavaScript, no libraries.
//
// 1. Draw on the 280x280 canvas (pointer events: mouse, touch and pen).
// 2. After each stroke, POST the canvas as a PNG to /api/predict ({png, arrays: "float32"}: the
//    compact form; the JSON form {width, height, pixels} works too, see the README).
// 3. Show what comes back: the 28x28 input, every layer's output as heatmaps, the 10
//    probabilities. Hovering a map pixel highlights the input window it came from.
//
// "Stages" are the network's activations: stage 0 is the 28x28 input, stage i+1 is the
// output of layer i (the server's model.layers[i]).
"use strict";

const $ = (id) => document.getElementById(id);
const INK_WIDTH = 20;      // stroke width on the 280-pixel canvas: MNIST-like after scaling

let model = null;          // GET /api/model
let result = null;         // last POST /api/predict
let stageViews = [];       // per stage: {maps: [{canvas, windowBox, cursor}], kind}
let requestCount = 0;      // answers to older strokes are dropped

// ------------------------------------------------------------------ colours

const SEQUENTIAL = [[0, 0, 4], [66, 10, 104], [147, 38, 103], [221, 81, 58], [252, 165, 10], [252, 255, 164]];
const DIVERGING = [[120, 200, 255], [40, 110, 200], [20, 22, 30], [200, 90, 30], [255, 205, 90]];

function ramp(stops, t) {                 // t in [0, 1] -> [r, g, b]
  t = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(t)), f = t - i;
  return stops[i].map((c, k) => Math.round(c + (stops[i + 1][k] - c) * f));
}

// A colour function for values between lo and hi: diverging around 0 when values go
// negative (blue < 0 < orange), black-to-yellow otherwise.
function colourScale(lo, hi) {
  if (lo < 0) {
    const m = Math.max(-lo, hi, 1e-6);
    return (v) => ramp(DIVERGING, 0.5 + v / (2 * m));
  }
  const m = Math.max(hi, 1e-6);
  return (v) => ramp(SEQUENTIAL, v / m);
}

function paint(canvas, rows, colour) {    // rows: H lists of W numbers
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

const grey = (v) => [v, v, v];
const fmt = (v) => (Math.abs(v) < 0.005 ? "0.00" : v.toFixed(2));

// ------------------------------------------------------------------ drawing pad

const pad = $("pad"), ink = pad.getContext("2d");
let drawing = false, last = null, strokes = 0;

function clearPad() {
  ink.fillStyle = "#000";
  ink.fillRect(0, 0, pad.width, pad.height);
  strokes = 0;
}

function padPoint(event) {                // CSS pixels -> canvas pixels
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width,
          (event.clientY - box.top) * pad.height / box.height];
}

function dot(from, to) {
  ink.strokeStyle = "#fff";
  ink.lineWidth = INK_WIDTH;
  ink.lineCap = ink.lineJoin = "round";
  ink.beginPath();
  ink.moveTo(from[0], from[1]);
  ink.lineTo(to[0], to[1]);
  ink.stroke();
}

pad.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  drawing = true;
  last = padPoint(event);
  dot(last, last);
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const p = padPoint(event);
  dot(last, p);
  last = p;
});
function endStroke() {
  if (!drawing) return;
  drawing = false;
  strokes += 1;
  predict();
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

$("clear").addEventListener("click", () => {
  clearPad();
  requestCount += 1;            // forget any answer still on its way
  result = null;
  showEmpty();
  announce("cleared");
});

// ------------------------------------------------------------------ talking to the server

async function predict() {
  const id = ++requestCount;
  const rgba = ink.getImageData(0, 0, pad.width, pad.height).data;
  const pixels = new Array(pad.width * pad.height);
  for (let i = 0; i < pixels.length; i++) pixels[i] = rgba[4 * i];   // red = grey level
  setStatus("Thinking…");
  try {
    const response = await fetch("/api/predict", {     // compact: the drawing as a PNG, float32 maps
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({png: pad.toDataURL("image/png"), arrays: "float32",
                            ...(page.predictOn ? {network: page.predictOn} : {})}),
    });
    const answer = await response.json();
    if (id !== requestCount) return;
    if (!response.ok) throw new Error(answer.error || response.statusText);
    result = unpackArrays(answer);
    showResult();
    setStatus(`Stroke ${strokes} · draw more, or Clear.`);
    announce("result", {drawing: {width: pad.width, height: pad.height, pixels}});
  } catch (error) {
    if (id === requestCount) setStatus(`Error: ${error.message}`, true);
  }
}

// "arrays": "float32" answers: each layer's maps (C, H, W) or values (D,) come as base64 of
// little-endian float32; turn them into the nested lists of the JSON form.
function unpackArrays(answer) {
  for (const out of answer.layers) {
    const bytes = Uint8Array.from(atob(out.maps ?? out.values), (c) => c.charCodeAt(0));
    const flat = new Float32Array(bytes.buffer);
    if (out.values !== undefined) { out.values = Array.from(flat); continue; }
    const [h, w, c] = out.shape;
    out.maps = Array.from({length: c}, (_, k) => Array.from({length: h}, (_, y) =>
      Array.from(flat.subarray((k * h + y) * w, (k * h + y + 1) * w))));
  }
  return answer;
}

// Events for backward.js (the backward view): "model", "result" (with the drawing sent), "cleared".
function announce(name, detail = {}) {
  document.dispatchEvent(new CustomEvent(`scratchcnn:${name}`, {detail}));
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

// Hooks for train.js. While a training job runs it sets page.predictOn = "training", so drawings
// are scored by the job's latest snapshot, calls page.rescore() at every snapshot, and
// page.useModel(info) when the layers to show change (another model trains, or is now served).
const page = {
  predictOn: null,
  currentModel: () => model,
  rescore() { if (strokes > 0) predict(); },
  useModel(info, describe = true) {
    model = info;
    if (describe) $("model-info").textContent = modelText(info);
    result = null;
    buildStages();
    showEmpty();
    announce("model");
    page.rescore();
  },
};

// ------------------------------------------------------------------ building the page

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
  const wrap = document.createElement("div");
  wrap.className = "map";
  wrap.style.width = wrap.style.height = `${size}px`;
  const canvas = document.createElement("canvas");
  const windowBox = document.createElement("div"), cursor = document.createElement("div");
  windowBox.className = "window"; cursor.className = "cursor";
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

function buildStages() {
  const holder = $("stages");
  holder.textContent = "";
  const stageShapes = [model.input_shape, ...model.layers.map((l) => l.output_shape)];
  stageViews = stageShapes.map((shape, stage) => {
    const layer = stage > 0 ? model.layers[stage - 1] : null;
    const section = document.createElement("div");
    section.className = "stage";
    const title = document.createElement("h3");
    title.innerHTML = stage === 0
      ? `Input <span>28×28, scaled to [−0.5, 0.5]</span>`
      : `${stage}. ${layer.type} <span>${layerText(layer)}</span>`;
    const grid = document.createElement("div");
    grid.className = "maps";
    section.append(title, grid);
    holder.append(section);

    const isMaps = shape.length !== 1;
    const channels = shape.length === 3 ? shape[2] : 1;
    const size = isMaps ? (channels > 16 ? 52 : 64) : 0;
    const view = {kind: isMaps ? "maps" : "vector", maps: []};
    if (isMaps) {
      for (let c = 0; c < channels; c++) view.maps.push(makeMap(grid, size, stage, c));
    } else {
      const canvas = document.createElement("canvas");
      canvas.className = "vector";
      grid.append(canvas);
      view.maps.push({canvas});
    }
    return view;
  });
}

function showEmpty() {
  for (const view of stageViews) {
    for (const m of view.maps) m.canvas.getContext("2d").clearRect(0, 0, m.canvas.width, m.canvas.height);
  }
  $("seen").getContext("2d").clearRect(0, 0, 28, 28);
  $("prediction").textContent = "?";
  $("confidence").textContent = "";
  $("probs").textContent = "";
  for (let d = 0; d < model.num_classes; d++) addBar(d, 0, false);
  document.body.classList.remove("has-result");
  setStatus("Mouse or finger; one digit, 0–9.");
}

function addBar(digit, p, winner) {
  const li = document.createElement("li");
  li.className = winner ? "winner" : "";
  li.dataset.digit = digit;
  li.dataset.probability = p;  // unrounded: 99.96% and 99.97% both show as 100.0%
  li.innerHTML = `<b>${digit}</b><span class="track"><span class="fill"></span></span><i></i>`;
  li.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
  li.querySelector("i").textContent = `${(100 * p).toFixed(1)}%`;
  $("probs").append(li);
}

// ------------------------------------------------------------------ showing a result

function stageRows(stage, channel) {       // the values of one map of a stage, as rows
  if (stage === 0) return result.input.map((row) => row.map((v) => v / 255 - 0.5));
  return result.layers[stage - 1].maps[channel];
}

function showResult() {
  paint($("seen"), result.input, grey);
  paint(stageViews[0].maps[0].canvas, result.input, grey);
  result.layers.forEach((out, i) => {
    const view = stageViews[i + 1], colour = colourScale(out.min, out.max);
    if (out.maps) {
      out.maps.forEach((rows, c) => paint(view.maps[c].canvas, rows, colour));
    } else {
      const cols = out.values.length <= 32 ? out.values.length : 32;
      const rows = [];
      for (let i = 0; i < out.values.length; i += cols) {
        const row = out.values.slice(i, i + cols);
        while (row.length < cols) row.push(out.min);
        rows.push(row);
      }
      const canvas = view.maps[0].canvas;
      paint(canvas, rows, colour);
      canvas.style.width = `${Math.min(cols * 18, 520)}px`;
    }
  });
  const best = result.prediction, probs = result.probabilities;
  $("prediction").textContent = result.blank ? "?" : best;
  $("confidence").textContent = result.blank ? "blank drawing" : `${(100 * probs[best]).toFixed(1)}% sure`;
  $("probs").textContent = "";
  probs.forEach((p, d) => addBar(d, p, d === best && !result.blank));
  document.body.classList.add("has-result");
}

// ------------------------------------------------------------------ hovering

function hidden(el) { el.hidden = true; }

function unhover() {
  for (const view of stageViews) for (const m of view.maps) if (m.windowBox) { hidden(m.windowBox); hidden(m.cursor); }
  hidden(document.querySelector("#seen-wrap .window"));
}

// Place a highlight box over rows r0..r0+n-1, cols c0..c0+n-1 of an h x w map.
function placeBox(box, r0, c0, n, h, w) {
  const top = Math.max(0, r0), left = Math.max(0, c0);
  const bottom = Math.min(h, r0 + n), right = Math.min(w, c0 + n);
  box.style.top = `${100 * top / h}%`;
  box.style.left = `${100 * left / w}%`;
  box.style.height = `${100 * (bottom - top) / h}%`;
  box.style.width = `${100 * (right - left) / w}%`;
  box.hidden = false;
}

function hover(stage, channel, event) {
  if (!result) return;
  const layer = model.layers[stage - 1], out = layer.output_shape;
  const box = event.target.getBoundingClientRect();
  const row = Math.min(out[0] - 1, Math.floor((event.clientY - box.top) / box.height * out[0]));
  const col = Math.min(out[1] - 1, Math.floor((event.clientX - box.left) / box.width * out[1]));
  unhover();
  const here = stageViews[stage].maps[channel];
  placeBox(here.cursor, row, col, 1, out[0], out[1]);
  const win = layer.window;
  if (!win) return;
  // The input window: rows row*stride - padding .. + size - 1, likewise for columns.
  const r0 = row * win.stride - win.padding, c0 = col * win.stride - win.padding;
  const [h, w] = layer.input_shape;
  const inputs = layer.filters ? stageViews[stage - 1].maps.map((_, c) => c) : [channel];
  for (const c of inputs) placeBox(stageViews[stage - 1].maps[c].windowBox, r0, c0, win.size, h, w);
  if (stage === 1) placeBox(document.querySelector("#seen-wrap .window"), r0, c0, win.size, h, w);
  inspect(stage, channel, row, col, r0, c0);
}

function valueGrid(values, colour, caption) {  // a small table of numbers on coloured cells
  const table = document.createElement("table");
  table.className = "grid";
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
  const figure = document.createElement("figure");
  const cap = document.createElement("figcaption");
  cap.textContent = caption;
  figure.append(table, cap);
  return figure;
}

function symbol(text) {
  const span = document.createElement("span");
  span.className = "op";
  span.textContent = text;
  return span;
}

function inspect(stage, channel, row, col, r0, c0) {
  const layer = model.layers[stage - 1], win = layer.window;
  const value = result.layers[stage - 1].maps[channel][row][col];
  const panel = $("inspect");
  panel.textContent = "";
  const head = document.createElement("p");
  head.innerHTML = `<b>${stage}. ${layer.type}</b>, map ${channel + 1}, row ${row}, column ${col}: ` +
                   `<b class="value">${fmt(value)}</b>`;
  panel.append(head);

  const [h, w, channels] = [layer.input_shape[0], layer.input_shape[1], layer.input_shape[2] || 1];
  const windowOf = (c) => {                 // the input window's values (null = padding)
    const rows = stageRows(stage - 1, c), values = [];
    for (let i = 0; i < win.size; i++) {
      const line = [];
      for (let j = 0; j < win.size; j++) {
        const y = r0 + i, x = c0 + j;
        line.push(y < 0 || x < 0 || y >= h || x >= w ? null : rows[y][x]);
      }
      values.push(line);
    }
    return values;
  };

  if (layer.filters) {
    const filter = layer.filters[channel];            // (k, k, C)
    const bias = layer.biases ? layer.biases[channel] : 0;
    if (channels === 1) {
      const weights = filter.map((r) => r.map((v) => v[0]));
      const windowValues = windowOf(0);
      const lo = Math.min(...windowValues.flat().filter((v) => v !== null), -1e-6);
      const hi = Math.max(...windowValues.flat().filter((v) => v !== null), 1e-6);
      const wm = Math.max(...weights.flat().map(Math.abs));
      const sum = windowValues.flat().reduce((s, v, i) => s + (v ?? 0) * weights.flat()[i], 0) + bias;
      const row = document.createElement("div");
      row.className = "equation";
      row.append(valueGrid(windowValues, colourScale(lo, hi), "input window"), symbol("×"),
                 valueGrid(weights, colourScale(-wm, wm), `filter ${channel + 1}`));
      const total = document.createElement("p");
      total.className = "total";
      total.innerHTML = `Sum of the nine products${layer.biases ? " + bias" : ""} = <b>${fmt(sum)}</b>`;
      const note = document.createElement("p");
      note.className = "note";
      note.textContent = "Each output pixel is the input window times the filter, weight by weight, " +
                         "added up: the filter slides over the image one pixel at a time.";
      panel.append(row, total, note);
    } else {
      const note = document.createElement("p");
      note.className = "note";
      note.textContent = `Filter ${channel + 1} has ${win.size}×${win.size} weights for each of the ` +
        `${channels} input maps (highlighted on every map above); its weights, one small map per input:`;
      const grid = document.createElement("div");
      grid.className = "kernels";
      const wm = Math.max(...filter.flat(2).map(Math.abs), 1e-6), colour = colourScale(-wm, wm);
      for (let c = 0; c < channels; c++) {
        const canvas = document.createElement("canvas");
        paint(canvas, filter.map((r) => r.map((v) => v[c])), colour);
        canvas.title = `input map ${c + 1}`;
        grid.append(canvas);
      }
      panel.append(note, grid);
    }
  } else if (win.size > 1) {
    const windowValues = windowOf(channel);
    const flat = windowValues.flat();
    const row = document.createElement("div");
    row.className = "equation";
    const how = layer.type.startsWith("Max") ? "max" : "mean";
    row.append(valueGrid(windowValues, colourScale(Math.min(...flat, 0), Math.max(...flat, 1e-6)),
                         "input window"));
    const total = document.createElement("p");
    total.className = "total";
    total.innerHTML = `The ${how} of the ${win.size}×${win.size} window = <b>${fmt(value)}</b>`;
    panel.append(row, total);
  } else {
    const before = stageRows(stage - 1, channel)[row][col];
    const p = document.createElement("p");
    p.textContent = `Input ${fmt(before)} → output ${fmt(value)}.`;
    panel.append(p);
  }
}

// ------------------------------------------------------------------ start

function modelText(info) {
  return info.description ||
    `A network of ${info.layers.length} layers: ${info.layers.map((l) => l.type).join(" → ")}`;
}

async function start() {
  clearPad();
  try {
    const response = await fetch("/api/model");
    model = await response.json();
  } catch (error) {
    $("model-info").textContent = `Can't reach the server: ${error.message}`;
    return;
  }
  $("model-info").textContent = modelText(model);
  buildStages();
  showEmpty();
  announce("model");
}

start();
