// The last section of the backward view: what the last layer looks for. Its weights for each
// digit, reshaped to its input (GET /api/templates), summed over the input maps (ten pictures,
// one per digit) or one digit's weights per input map.
import {getJson} from "./api.js";
import {el, fmtg} from "./dom.js";
import {legend} from "./figures.js";
import {divergingScale, largest, paint} from "./heatmap.js";
import {bw} from "./backward_state.js";
import {stageSection} from "./backward_stages.js";

/** Fetch the served network's templates into bw.templates (null when there are none). */
export async function loadTemplates() {
  try {
    bw.templates = await getJson("/api/templates");
  } catch (error) {
    bw.templates = null;
  }
}

/** The section, at the end of #backward, with its "summed | per channel" buttons. */
export function buildTemplates() {
  const t = bw.templates;
  bw.templateView = null;
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

function templateFigure(rows, colour, i, digit) {
  const figure = el("figure", "template"), canvas = el("canvas");
  paint(canvas, rows, colour);
  const summed = bw.templateMode === "summed";
  figure.append(canvas, el("figcaption", "", summed ? `${i}` : `digit ${digit}, map ${i + 1}`));
  if (summed) {
    figure.classList.toggle("target", i === digit);
    figure.title = `digit ${i}: click to see it per channel`;
    figure.addEventListener("click", () => { bw.templateDigit = i; bw.templateMode = "per channel"; showTemplates(); });
  }
  return figure;
}

/** Paint the templates: the ten digits summed over channels, or one digit (the one clicked, else
 * the target) per channel. */
export function showTemplates() {
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
  shown.forEach((rows, i) => view.grid.append(templateFigure(rows, colour, i, digit)));
}
