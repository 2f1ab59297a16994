// What the backward view's modules share (backward_view.js, backward_stages.js,
// backward_inspector.js, weight_templates.js): the image shown, the target and the last answer.
import {state} from "./page_state.js";

export const bw = {
  source: null,      // what the page shows: {drawing: {width, height, pixels}} or {image, index, label}
  target: null,      // the digit the loss is taken at; null = the prediction (a test image: its label)
  answer: null,      // the last POST /api/backward
  stale: true,       // the answer is not about the current source, target and lr
  requestId: 0,      // answers to older requests are dropped
  stepShown: false,  // "Take one step" was pressed for this source
  templates: null,   // GET /api/templates
  templateMode: "summed",
  templateDigit: null,
  templateView: null,
  stages: [],        // per stage: {section, legend, grid, maps: [{canvas, wrap, cursor, box}], ...}
};

/** The digit the loss is taken at: the one picked, else a test image's label, else the prediction. */
export function currentTarget() {
  if (bw.target !== null) return bw.target;
  if (bw.source && bw.source.label !== undefined) return bw.source.label;
  return state.result ? state.result.prediction : 0;
}

/** dL/dz for digit d's logit z, from answer `a`: p - 1 at the target, p elsewhere. */
export function logitGradient(a, d) { return a.probabilities[d] - (d === a.label ? 1 : 0); }

/** The gradient map a backward stage shows, as rows: dL/dx for stage 0, else dL/d(output of
 * model.layers[stage - 1]), map `channel`. */
export function gradientRows(stage, channel) {
  const a = bw.answer;
  return stage === 0 ? a.input_gradient : a.layers[stage - 1].output_gradient.maps[channel];
}

/** (k, k, C) weights or (k, k[, C]) gradients -> (k, k), summed over C. */
export function filterKernel(filter) {
  return filter.map((row) => row.map((v) => (Array.isArray(v) ? v.reduce((s, x) => s + x, 0) : v)));
}
