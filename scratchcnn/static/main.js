// scratchcnn's "draw a digit, watch it flow" page: the one script index.html loads
// (<script type="module">); it imports the others and starts them. Plain JavaScript modules, no
// libraries, no build step, and nothing shared through globals: each module imports what it uses.
//
// 1. Draw on the 280x280 pad (drawing_pad.js). After each stroke, drawing_flow.js POSTs it as
//    {width, height, pixels} to /api/predict (pixels: 280*280 grey levels 0..255, row-major;
//    white ink on black).
// 2. The forward view (forward_view.js) shows what comes back: the 28x28 input, every layer's
//    output as heatmaps, the 10 probabilities; hovering a map pixel explains it.
// 3. The backward view (backward_view.js) shows the gradients of the same drawing, the explain
//    view (explain_view.js) why the network answered as it did; the training panel
//    (train_panel.js) trains the network from the page.
//
// The modules by role: dom.js (element and number helpers), heatmap.js (colour scales, painting a
// grid of numbers), figures.js (tables of numbers, legends, outlines), api.js (JSON requests),
// page_state.js (the state the modules share, the events, the status line), view_switch.js (which
// view #flow shows).
//
// How a new view or panel plugs in (explain_view.js is an example):
// - Write a module of its own that exports a start function (startExplainView) which adds its
//   listeners; import it here and call it below, before
//   loadModel(). List the file in scratchcnn/serve/routes.py (PAGE_SCRIPTS): the server serves
//   only the files listed there.
// - Listen to the page's events, on `document`:
//     "scratchcnn:model"    state.model changed (at start, or a training job changed the layers):
//                           build your view for it;
//     "scratchcnn:result"   a drawing was scored: event.detail.drawing is {width, height, pixels}
//                           as sent to /api/predict, state.result the forward pass;
//     "scratchcnn:test-image" the backward view put a test image on the pad: event.detail.image
//                           (28x28 grey levels) and event.detail.index;
//     "scratchcnn:cleared"  the pad was cleared: empty your view;
//     "scratchcnn:view"     the view switch changed: event.detail.view is the view now shown.
//   Read the shared state from page_state.js (`import {state} from "./page_state.js"`): the
//   model, the forward result, and state.predictOn, the network to ask ({"network": "training"}
//   while a job trains), which your requests should pass on.
// - A view shown by the switch: add a button <button data-view="explain"> to #view-switch and a
//   panel <div data-view-panel="explain" hidden> to #flow in index.html; view_switch.js shows
//   the panel whose name the pressed button gives. Write your hints (#flow-hint, #inspect) on
//   "scratchcnn:view" when event.detail.view is yours, and hide your outlines on any other.
// - Explain numbers with the shared pieces (heatmap.js, figures.js) rather than copies.
import {$} from "./dom.js";
import {clearDrawing, loadModel, predictDrawing} from "./drawing_flow.js";
import {listenToPad} from "./drawing_pad.js";
import {startBackwardView} from "./backward_view.js";
import {startExplainView} from "./explain_view.js";
import {startForwardView} from "./forward_view.js";
import {startTrainPanel} from "./train_panel.js";
import {listenToSwitch} from "./view_switch.js";

listenToPad(predictDrawing);
$("clear").addEventListener("click", clearDrawing);
listenToSwitch();
startForwardView();
startBackwardView();
startExplainView();
startTrainPanel();
loadModel();
