// A drawing's way through the page: a stroke on the pad -> POST /api/predict -> the forward view
// -> the "scratchcnn:result" event for the other views; Clear -> "scratchcnn:cleared"; and the
// network shown (GET /api/model, or the one a training job trains) -> "scratchcnn:model".
import {postJson, getJson, unpackArrays} from "./api.js";
import {$} from "./dom.js";
import {clearPad, padDrawing, padPng, strokeCount} from "./drawing_pad.js";
import {buildForward, showEmpty, showResult} from "./forward_view.js";
import {announce, setStatus, state} from "./page_state.js";

let requestCount = 0;      // answers to older strokes (or to a cleared pad) are dropped
const IDLE = "Mouse or finger; one digit, 0–9.";

/** Score the pad on the network state.predictOn names (the served one by default). */
export async function predictDrawing() {
  const id = ++requestCount;
  const drawing = padDrawing();
  setStatus("Thinking…");
  try {
    // The compact form: the drawing as a PNG, the maps as float32 (the JSON lists work too).
    const answer = await postJson("/api/predict",
      {png: padPng(), arrays: "float32", ...(state.predictOn ? {network: state.predictOn} : {})});
    if (id !== requestCount) return;
    state.result = unpackArrays(answer);
    showResult();
    setStatus(`Stroke ${strokeCount()} · draw more, or Clear.`);
    announce("result", {drawing});
  } catch (error) {
    if (id === requestCount) setStatus(`Error: ${error.message}`, true);
  }
}

/** Score the drawing again (the network changed), if there is one. */
export function rescore() {
  if (strokeCount() > 0) predictDrawing();
}

/** Drop any drawing's answer still on its way: the pad now shows something else (a test image). */
export function forgetDrawing() {
  requestCount += 1;
}

/** The Clear button: an empty pad, an empty page. */
export function clearDrawing() {
  clearPad();
  forgetDrawing();
  state.result = null;
  showEmpty();
  setStatus(IDLE);
  announce("cleared");
}

function modelText(info) {
  return info.description ||
    `A network of ${info.layers.length} layers: ${info.layers.map((l) => l.type).join(" → ")}`;
}

/** Show the layers of `info` (GET /api/model's form): another model trains, or is now served.
 * `describe`: also say so in the page's header. The drawing, if any, is scored again. */
export function useModel(info, describe = true) {
  state.model = info;
  if (describe) $("model-info").textContent = modelText(info);
  state.result = null;
  buildForward();
  showEmpty();
  setStatus(IDLE);
  announce("model");
  rescore();
}

/** Start: an empty pad and the served network. */
export async function loadModel() {
  clearPad();
  let info;
  try {
    info = await getJson("/api/model");
  } catch (error) {
    $("model-info").textContent = `Can't reach the server: ${error.message}`;
    return;
  }
  useModel(info);
}
