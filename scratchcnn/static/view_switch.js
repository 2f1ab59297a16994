// The switch above the maps ("Forward | Backward"): which view #flow shows.
//
// Each button of #view-switch has data-view="NAME"; the element with data-view-panel="NAME" is
// that view's panel. Showing a view shows its panel alone, presses its button, sets the body's
// class NAME-view, and announces "scratchcnn:view" with detail {view: NAME}: each view listens
// to it to hide its outlines, and the view shown writes its hints (#flow-hint, #inspect).
import {announce} from "./page_state.js";

let current = "forward";

/** The name of the view shown. */
export const currentView = () => current;

/** Show view `name`. */
export function showView(name) {
  current = name;
  for (const button of document.querySelectorAll("#view-switch [data-view]")) {
    const view = button.dataset.view;
    button.setAttribute("aria-pressed", String(view === name));
    document.body.classList.toggle(`${view}-view`, view === name);
  }
  for (const panel of document.querySelectorAll("[data-view-panel]")) {
    panel.hidden = panel.dataset.viewPanel !== name;
  }
  announce("view", {view: name});
}

/** Make the switch's buttons work. */
export function listenToSwitch() {
  for (const button of document.querySelectorAll("#view-switch [data-view]")) {
    button.addEventListener("click", () => showView(button.dataset.view));
  }
}
