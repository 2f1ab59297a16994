// scratchcnn's "Watch it learn" panel: train the network from the page and watch it learn.
//
// 1. Train sends POST /api/train {model, epochs, train_size, lr}; Stop sends POST /api/train/stop.
// 2. An EventSource on GET /api/train/events brings the job's events (a page opened in the
//    middle of a job first gets the job so far): start, progress, epoch, snapshot, done.
// 3. progress: the loss and accuracy curves (mean over the last steps), the progress bar and
//    images per second; epoch: the test accuracy and loss after each epoch, as dots;
//    snapshot: the first layer's filters redrawn, and the current drawing re-scored on the
//    snapshot ("network": "training"), so its probability bars move as the network learns;
//    done: a line saying how it ended and that the page now serves the network just trained.
import {getJson, postJson} from "./api.js";
import {$} from "./dom.js";
import {rescore, useModel} from "./drawing_flow.js";
import {colourScale, paint} from "./heatmap.js";
import {state} from "./page_state.js";

// The teacher's token, when the page was opened with ?token=... (a server open to a room asks
// for it to train); sent as "Authorization: token T", so it never appears in a logged address.
const TOKEN = new URLSearchParams(location.search).get("token");
const AUTH = TOKEN ? {Authorization: `token ${TOKEN}`} : {};

const trainer = {
  job: null,          // the job shown: its id, settings and steps_per_epoch (the start event)
  running: false,
  locked: null,       // why this page can't train (a student's), or null
  points: [],         // progress events: {position, loss, accuracy}
  epochs: [],         // epoch events
  defaults: {},       // per model: {epochs, batch_size, lr} from GET /api/train
};

// ------------------------------------------------------------------ the form

function trainSettings() {
  return {model: $("train-model").value, epochs: Number($("train-epochs").value),
          train_size: Number($("train-size").value), lr: Number($("train-lr").value)};
}

function fillDefaults() {
  const d = trainer.defaults[$("train-model").value];
  if (!d) return;
  $("train-epochs").value = d.epochs;
  $("train-lr").value = d.lr;
}

function setRunning(running) {
  trainer.running = running;
  $("train-start").disabled = running || !!trainer.locked;
  $("train-stop").disabled = !running || !!trainer.locked;
  document.body.classList.toggle("training", running);
}

function trainStatus(text, isError = false) {
  $("train-status").textContent = text;
  $("train-status").classList.toggle("error", isError);
}

// ------------------------------------------------------------------ curves

const CURVE = {train: "#5db8ff", test: "#ffb13b", grid: "#2a3340", text: "#8b96a5"};

function sizeCanvas(canvas) {             // backing store at the device's pixel density
  const ratio = window.devicePixelRatio || 1, width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return [ctx, width, height];
}

// One chart: a line through `line` ([x, y] points) and dots at `dots`, x from 0 to xMax
// (epochs), y from 0 to yMax; `label` at the top left, `tick` formats the y labels.
function drawChart(canvas, {line, dots, xMax, yMax, label, tick}) {
  const [ctx, width, height] = sizeCanvas(canvas);
  const left = 34, right = 6, top = 14, bottom = 14;
  const x = (v) => left + (width - left - right) * v / xMax;
  const y = (v) => top + (height - top - bottom) * (1 - Math.min(v, yMax) / yMax);
  ctx.clearRect(0, 0, width, height);
  ctx.font = "10px system-ui, sans-serif";
  ctx.lineWidth = 1;
  for (const f of [0, 0.5, 1]) {           // horizontal grid and its labels
    ctx.strokeStyle = CURVE.grid;
    ctx.beginPath(); ctx.moveTo(left, y(f * yMax)); ctx.lineTo(width - right, y(f * yMax)); ctx.stroke();
    ctx.fillStyle = CURVE.text;
    ctx.textAlign = "right";
    ctx.fillText(tick(f * yMax), left - 4, y(f * yMax) + 3);
  }
  ctx.textAlign = "center";
  for (let e = 1; e <= xMax; e += Math.ceil(xMax / 10)) ctx.fillText(`${e}`, x(e), height - 2);
  ctx.textAlign = "left";
  ctx.fillText(label, left + 4, 10);
  ctx.textAlign = "right";                  // the legend: training line, test dots
  ctx.fillStyle = CURVE.test;
  ctx.fillText("● test", width - right - 2, 10);
  ctx.fillStyle = CURVE.train;
  ctx.fillText("— training  ", width - right - 2 - ctx.measureText("● test").width, 10);
  if (line.length) {
    ctx.strokeStyle = CURVE.train;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    line.forEach(([px, py], i) => (i ? ctx.lineTo(x(px), y(py)) : ctx.moveTo(x(px), y(py))));
    ctx.stroke();
  }
  ctx.fillStyle = CURVE.test;
  for (const [px, py] of dots) {
    ctx.beginPath(); ctx.arc(x(px), y(py), 3, 0, 2 * Math.PI); ctx.fill();
  }
}

function drawCurves() {
  const xMax = trainer.job ? trainer.job.settings.epochs : 1;
  const losses = trainer.points.map((p) => p.loss);
  const lossMax = Math.max(0.5, ...losses.slice(0, 3), ...trainer.epochs.map((e) => e.test_loss));
  drawChart($("train-loss"), {
    line: trainer.points.map((p) => [p.position, p.loss]),
    dots: trainer.epochs.map((e) => [e.epoch, e.test_loss]),
    xMax, yMax: lossMax, label: "loss", tick: (v) => v.toFixed(1),
  });
  drawChart($("train-accuracy"), {
    line: trainer.points.map((p) => [p.position, p.accuracy]),
    dots: trainer.epochs.map((e) => [e.epoch, e.test_accuracy]),
    xMax, yMax: 1, label: "accuracy", tick: (v) => `${Math.round(100 * v)}%`,
  });
}

// ------------------------------------------------------------------ filters

function drawFilters(snapshot) {
  const holder = $("train-filters");
  holder.textContent = "";
  if (!snapshot.filters) {
    $("train-filters-title").textContent = "This network has no convolution: no filters to show.";
    return;
  }
  const filters = snapshot.filters;                       // (F, k, k, C)
  const m = Math.max(...filters.flat(3).map(Math.abs), 1e-6), colour = colourScale(-m, m);
  filters.forEach((filter, f) => {
    const canvas = document.createElement("canvas");
    paint(canvas, filter.map((row) => row.map((v) => v.reduce((a, b) => a + b, 0))), colour);
    canvas.title = `filter ${f + 1}`;
    holder.append(canvas);
  });
  $("train-filters-title").textContent =
    `Layer ${snapshot.layer + 1}'s ${filters.length} filters at epoch ${snapshot.position.toFixed(2)} ` +
    `(blue < 0 < orange, ±${m.toFixed(2)})`;
  const served = state.model;                     // the inspector shows these weights too
  if (served && served.layers[snapshot.layer] && state.predictOn === "training") {
    served.layers[snapshot.layer].filters = filters;
  }
}

// ------------------------------------------------------------------ events

function showProgress(p) {
  $("train-bar").firstElementChild.style.width = `${(100 * p.position / p.epochs).toFixed(1)}%`;
  trainStatus(`Epoch ${p.epoch}/${p.epochs} · step ${p.step}/${p.steps_per_epoch} · ` +
              `${Math.round(p.images_per_second).toLocaleString()} images/s · loss ${p.loss.toFixed(3)}`);
}

const layersOf = (info) => info.layers.map((l) => `${l.type}${l.output_shape}`).join(" ");

// Show the training network's layers if they differ from those shown (another model trains).
async function matchTrainingLayers(job) {
  const training = await getJson("/api/train");
  if (!trainer.running || !trainer.job || trainer.job.job !== job || !training.network) return;
  const shown = state.model;
  if (!shown || layersOf(shown) !== layersOf(training.network)) useModel(training.network, false);
}

const handlers = {
  start(data) {
    trainer.job = data;
    $("train-card").classList.remove("idle");      // curves and filters from now on
    trainer.points = [];
    trainer.epochs = [];
    setRunning(true);
    $("train-done").hidden = true;
    $("train-bar").firstElementChild.style.width = "0%";
    trainStatus(`Job ${data.job}: ${data.settings.model}, ${data.settings.epochs} epochs of ` +
                `${data.settings.train_size.toLocaleString()} images…`);
    drawCurves();
  },
  progress(data) {
    trainer.points.push(data);
    showProgress(data);
    drawCurves();
  },
  epoch(data) {
    trainer.epochs.push(data);
    drawCurves();
  },
  snapshot(data) {
    drawFilters(data);
    if (!trainer.running) return;
    const first = state.predictOn !== "training";
    state.predictOn = "training";
    if (first) matchTrainingLayers(data.job).then(() => rescore());
    else rescore();
  },
  done(data) {
    setRunning(false);
    state.predictOn = null;
    const accuracy = data.test_accuracy === null ? "" : `${(100 * data.test_accuracy).toFixed(1)}% test accuracy, `;
    const how = {completed: "Done", stopped: "Stopped", diverged: "Diverged", failed: "Failed"}[data.status];
    trainStatus(`${how}: ${accuracy}${data.seconds.toFixed(1)} s.`, data.status === "diverged" || data.status === "failed");
    const line = $("train-done");
    line.textContent = data.served
      ? `The page now serves the network just trained (job ${data.job}).` +
        (data.checkpoint ? ` Saved as ${data.checkpoint}.` : "")
      : data.message;
    line.className = data.served ? "served" : "error";
    line.hidden = false;
    getJson("/api/model").then((info) => {
      const shown = state.model;
      if (data.served && shown && shown.description !== info.description) networkNotice(info.description);
      useModel(info);
    });
  },
};

// Everyone sees when the served network changes (in a class, the teacher's job ended).
function networkNotice(description) {
  let notice = $("network-notice");
  if (!notice) {
    notice = document.createElement("p");
    notice.id = "network-notice";
    notice.setAttribute("role", "status");
    $("model-info").after(notice);
  }
  notice.textContent = `New network served: ${description}. Drawings are now scored by it.`;
}

// A student's page (opened without the teacher's token): the Train panel shows why it is off.
function lockTraining(reason) {
  trainer.locked = reason;
  for (const field of $("train-form").elements) field.disabled = true;
  const line = document.createElement("p");
  line.id = "train-locked";
  line.textContent = reason[0].toUpperCase() + reason.slice(1);
  $("train-card").querySelector("h2").after(line);
}

function listen() {
  const source = new EventSource("/api/train/events");
  for (const [name, handle] of Object.entries(handlers)) {
    source.addEventListener(name, (event) => handle(JSON.parse(event.data)));
  }
  source.onerror = () => {    // refused (503: too many pages listening) or the server gone: retry later
    if (source.readyState === EventSource.CLOSED) setTimeout(listen, 10000);
  };
}

function listenToForm() {
  $("train-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      $("train-start").disabled = true;
      const answer = await postJson("/api/train", trainSettings(), AUTH);
      trainStatus(`Job ${answer.job} started: loading ${answer.train_size.toLocaleString()} images…`);
    } catch (error) {
      $("train-start").disabled = trainer.running;
      trainStatus(`Can't train: ${error.message}`, true);
    }
  });
  $("train-stop").addEventListener("click", async () => {
    try {
      trainStatus("Stopping after this step…");  // before the request: its "done" event can beat the answer
      await postJson("/api/train/stop", {}, AUTH);
    } catch (error) {
      trainStatus(error.message, true);
    }
  });
  $("train-model").addEventListener("change", fillDefaults);
  window.addEventListener("resize", () => { if (trainer.job) drawCurves(); });
}

/** Make the panel work: its form, the models' defaults, and the job's events. */
export async function startTrainPanel() {
  listenToForm();
  try {
    const panel = await getJson("/api/train", AUTH);
    trainer.defaults = panel.models;
    fillDefaults();
    if (!panel.can_train) lockTraining(panel.why_not);
  } catch (error) {
    trainStatus(`Can't reach the server: ${error.message}`, true);
  }
  drawCurves();
  listen();
}
