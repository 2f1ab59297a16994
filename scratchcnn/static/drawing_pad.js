// The 280x280 drawing pad: white ink on black, drawn with pointer events (mouse, touch, pen).
import {$, el} from "./dom.js";
import {grey, paint} from "./heatmap.js";

const INK_WIDTH = 20;      // stroke width on the 280-pixel canvas: MNIST-like after scaling

const pad = $("pad"), ink = pad.getContext("2d");
let drawing = false, last = null, strokes = 0;

/** Black the pad and forget its strokes. */
export function clearPad() {
  ink.fillStyle = "#000";
  ink.fillRect(0, 0, pad.width, pad.height);
  strokes = 0;
}

/** How many strokes the pad shows (0 after clearPad or showOnPad). */
export const strokeCount = () => strokes;

/** The pad as a PNG data URL: POST /api/predict's compact form ({png}). */
export function padPng() {
  return pad.toDataURL("image/png");
}

/** The pad as POST /api/predict takes it: {width, height, pixels} (grey levels 0..255, row-major). */
export function padDrawing() {
  const rgba = ink.getImageData(0, 0, pad.width, pad.height).data;
  const pixels = new Array(pad.width * pad.height);
  for (let i = 0; i < pixels.length; i++) pixels[i] = rgba[4 * i];   // red = grey level
  return {width: pad.width, height: pad.height, pixels};
}

/** A 28x28 image (rows of grey levels), blown up onto the pad; it counts as no stroke. */
export function showOnPad(pixels) {
  const small = el("canvas");
  paint(small, pixels, grey);
  ink.imageSmoothingEnabled = false;
  ink.drawImage(small, 0, 0, pad.width, pad.height);
  strokes = 0;
}

function padPoint(event) {                // CSS pixels -> canvas pixels
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width,
          (event.clientY - box.top) * pad.height / box.height];
}

function line(from, to) {
  ink.strokeStyle = "#fff";
  ink.lineWidth = INK_WIDTH;
  ink.lineCap = ink.lineJoin = "round";
  ink.beginPath();
  ink.moveTo(from[0], from[1]);
  ink.lineTo(to[0], to[1]);
  ink.stroke();
}

/** Start drawing on the pad; `onStroke()` is called at the end of every stroke. */
export function listenToPad(onStroke) {
  pad.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    pad.setPointerCapture(event.pointerId);
    drawing = true;
    last = padPoint(event);
    line(last, last);
  });
  pad.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    const p = padPoint(event);
    line(last, p);
    last = p;
  });
  const endStroke = () => {
    if (!drawing) return;
    drawing = false;
    strokes += 1;
    onStroke();
  };
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);
}
