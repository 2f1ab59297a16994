// The backward view: the gradients of the digit shown, from the loss back to its pixels.
//
// 1. The view switch (view_switch.js) shows the forward maps (#stages) or these (#backward).
// 2. In the backward view every drawing is sent to POST /api/backward with a target label: the
//    prediction by default, or the digit whose probability bar was clicked ("what if it were a 5?").
// 3. It shows, from the top: the loss, its gradient on the probabilities and the logits, each
//    layer's output gradient, the filters beside their gradients and the saliency dL/dx
//    (backward_stages.js), then the last layer's 10 weight templates (weight_templates.js).
// 4. Hovering (or tapping) a gradient pixel explains its number in #inspect (backward_inspector.js).
// 5. "Take one step" shows the probabilities before and after one SGD step on this image alone.
// Also: MNIST test images (by index, or a mistake), shown through both views.
import {getJson, postJson} from "./api.js";
import {$, el, fmtg, pct} from "./dom.js";
import {forgetDrawing} from "./drawing_flow.js";
import {showOnPad, strokeCount} from "./drawing_pad.js";
import {showResult} from "./forward_view.js";
import {announce, setStatus, state} from "./page_state.js";
import {currentView, showView} from "./view_switch.js";
import {bw, currentTarget} from "./backward_state.js";
import {unhoverGradients} from "./backward_inspector.js";
import {buildStages, showGradients} from "./backward_stages.js";
import {buildTemplates, loadTemplates, showTemplates} from "./weight_templates.js";

const HINT = "Hover or tap a gradient pixel, a filter's gradient or a logit to see where its number comes from.";

// ------------------------------------------------------------------ talking to the server

async function requestBackward() {
  if (!bw.source || !state.model) return;
  const id = ++bw.requestId;
  const body = {...(bw.source.drawing || {image: bw.source.image}), label: currentTarget(),
                lr: Number($("bw-lr").value),
                ...(state.predictOn ? {network: state.predictOn} : {})};   // the training snapshot
  setStatus("Computing the gradients…");
  try {
    const answer = await postJson("/api/backward", body);
    if (id !== bw.requestId) return;
    bw.answer = answer;
    bw.stale = false;
    if (bw.source.image) {              // a test image: the forward view's maps come from here too
      state.result = {prediction: answer.prediction, probabilities: answer.probabilities, blank: answer.blank,
                      input: answer.input, layers: answer.layers.map((l) => l.output)};
      showResult();
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
  if (!s || !s.image) return `Stroke ${strokeCount()} · draw more, or Clear.`;
  const said = state.result ? `; the network says ${state.result.prediction}` : "";
  return `Test image #${s.index}, labelled ${s.label}${said} · draw on it, or Clear.`;
}

async function showTestImage(query) {
  setStatus("Fetching a test image…");
  try {
    const answer = await getJson(`/api/test-image?${query}`);
    showOnPad(answer.pixels);
    forgetDrawing();                      // drop any drawing's answer still on its way
    bw.source = {image: answer.pixels, index: answer.index, label: answer.label};
    announce("test-image", {image: answer.pixels, index: answer.index});
    bw.target = null;
    bw.stepShown = false;
    $("test-index").value = answer.index;
    await requestBackward();
  } catch (error) {
    setStatus(`Error: ${error.message}`, true);
  }
}

// ------------------------------------------------------------------ targets and the step

function setTarget(digit) {
  bw.target = digit;
  bw.stale = true;
  if (currentView() !== "backward") showView("backward");
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

// ------------------------------------------------------------------ the view

function buildBackward() {
  buildStages(takeStep);
  buildTemplates();
}

function showBackward() {
  const a = bw.answer, target = a.label, p = a.probabilities;
  const how = bw.target !== null ? `what if it were a ${target}?` :
    (bw.source.label !== undefined ? "the true label" : "the prediction");
  $("bw-target").innerHTML = `Target <b class="value">${target}</b> (${how}). ` +
    `Click a probability bar to pick another${bw.target !== null ? ", or <a href='#' id='bw-follow'>follow the prediction</a>" : ""}.`;
  const follow = $("bw-follow");
  if (follow) follow.addEventListener("click", (event) => { event.preventDefault(); setTarget(null); });
  $("bw-loss").innerHTML = `Loss L = −log p[${target}] = −log ${fmtg(p[target])} = <b>${fmtg(a.loss)}</b>`;
  if (currentView() === "backward") $("inspect").textContent = HINT;
  showGradients(a);
  showTemplates();
  showStep();
}

function forgetSource() {                 // the pad was cleared
  bw.source = bw.answer = null;
  bw.target = bw.templateDigit = null;
  bw.stale = true;
  bw.stepShown = false;
  if (state.model) buildBackward();
}

function onView(view) {
  unhoverGradients();
  if (view !== "backward") return;
  $("flow-hint").textContent = "hover or tap a gradient pixel; click a probability bar to change the target";
  $("inspect").textContent = HINT;
  if (bw.stale) requestBackward();
}

/** Listen to the page's events and to the backward view's own controls. */
export function startBackwardView() {
  document.addEventListener("scratchcnn:model", async () => {
    await loadTemplates();
    buildBackward();
  });
  document.addEventListener("scratchcnn:result", (event) => {
    bw.source = {drawing: event.detail.drawing};
    bw.stale = true;
    markTarget();
    if (currentView() === "backward") requestBackward();
  });
  document.addEventListener("scratchcnn:cleared", forgetSource);
  document.addEventListener("scratchcnn:view", (event) => onView(event.detail.view));
  $("probs").addEventListener("click", (event) => {
    const li = event.target.closest("li");
    if (li && bw.source) setTarget(Number(li.dataset.digit));
  });
  $("test-show").addEventListener("click", () => showTestImage(`index=${encodeURIComponent($("test-index").value)}`));
  $("test-mistake").addEventListener("click", () => {
    const after = bw.source && bw.source.image ? bw.source.index : -1;
    showTestImage(after >= 0 ? `mistake=1&after=${after}` : "mistake=1");
  });
}
