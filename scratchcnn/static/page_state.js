// What the page's modules share, in one object that each imports (nothing is shared through
// globals), plus the page's events and its status line.
//
// Who writes what:
//   state.model      drawing_flow.js (the served network, GET /api/model, or the training one);
//                    train_panel.js updates its first layer's filters at each training snapshot
//   state.result     drawing_flow.js (POST /api/predict for a drawing), backward_view.js (a test image)
//   state.predictOn  train_panel.js: "training" while a job runs, so drawings are scored by its
//                    latest snapshot (sent as {"network": "training"}), null otherwise
import {$} from "./dom.js";

export const state = {
  model: null,        // GET /api/model: {input_shape, num_classes, layers: [{type, output_shape, ...}], ...}
  result: null,       // the forward pass shown: POST /api/predict's answer (or a test image's)
  predictOn: null,
};

/** Tell the views: document.dispatchEvent(new CustomEvent("scratchcnn:" + name, {detail})).
 * "model": state.model changed (views rebuild); "result": a drawing was scored (detail.drawing:
 * {width, height, pixels}, as sent); "cleared": the pad was cleared; "view": the view switch
 * shows another view (detail.view: its name). main.js says how a new view listens. */
export function announce(name, detail = {}) {
  document.dispatchEvent(new CustomEvent(`scratchcnn:${name}`, {detail}));
}

/** The line under the drawing pad. */
export function setStatus(text, isError = false) {
  const line = $("status");
  line.textContent = text;
  line.classList.toggle("error", isError);
}

/** The values of map `channel` of stage `stage` in state.result, as rows: stage 0 is the input
 * (scaled to [-0.5, 0.5] as the network sees it), stage s the output of model.layers[s - 1]. */
export function stageRows(stage, channel) {
  if (stage === 0) return state.result.input.map((row) => row.map((v) => v / 255 - 0.5));
  return state.result.layers[stage - 1].maps[channel];
}
