// What the canvas components share (latent_pad, live_chart, scatter3d): views/components/canvas_assets.py puts this
// before each one's main.js, so that each stays one inline script (components v2: no build, no imports).

function num(x, fallback) {
  return typeof x === "number" && Number.isFinite(x) ? x : fallback;
}

// The CSS zoom the element is drawn at (lecture mode's projector scale zooms the page's main block; 1 where
// the browser has no currentCSSZoom). Pointer positions from clientX/Y are divided by it; backing stores are
// multiplied by it, so a zoomed canvas stays sharp.
function cssZoom(el) {
  return num(el && el.currentCSSZoom, 1);
}

// A canvas's PNG (the PNG button) is drawn at this many backing-store pixels per CSS pixel at least: at the
// screen's 1 the picture of a 448 x 440 chart would be 448 x 440 px, too small for a slide.
const EXPORT_SCALE = 3;
// Set to EXPORT_SCALE while the PNG button redraws its canvas for the file (0 otherwise).
let exportRatio = 0;

// Pixels of backing store per CSS pixel of the canvas: the device's pixel ratio times its CSS zoom (while a
// PNG is drawn, at least EXPORT_SCALE).
function pixelRatio(canvas) {
  const ratio = (window.devicePixelRatio || 1) * cssZoom(canvas);
  return exportRatio ? Math.max(ratio, exportRatio) : ratio;
}

// Size the canvas to w x h CSS pixels with a backing store at pixelRatio (reallocated only when that size
// changes), scale its 2-D context ctx to CSS pixels and clear it.
function fitCanvas(canvas, ctx, w, h) {
  const ratio = pixelRatio(canvas);
  if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
    canvas.style.height = `${h}px`;
  }
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
}

// Fit s.canvas (2-D context s.ctx) for a redraw of s.data (fitCanvas): its CSS width, at least minW
// (defaultW while it has none), by s.data.height, at least minH (defaultH when that is not a number).
// Returns [w, h] in CSS pixels.
function fitToData(s, minW, defaultW, minH, defaultH) {
  const w = Math.max(minW, Math.round(s.canvas.clientWidth || defaultW));
  const h = Math.max(minH, Math.round(num(s.data.height, defaultH)));
  fitCanvas(s.canvas, s.ctx, w, h);
  return [w, h];
}

// A small "PNG" button in the canvas's top-right corner (shown on hover, and always to keyboard focus) that
// saves what the canvas shows now, for a slide: redrawn (s.redraw, when the component gave its draw
// function) at EXPORT_SCALE backing-store pixels per CSS pixel, copied, and drawn again for the screen; the
// layout is the screen's, so the file shows what the page shows, 3x as sharp. The file name is the
// server's s.data.export_name when it sent one (it says page, model and step), else "aevb-chart.png".
// Nothing goes to the server.
function addPngButton(s) {
  const canvas = s.canvas;
  const holder = canvas.parentElement;
  if (!holder || holder.querySelector(".aevb-png")) return;
  if (getComputedStyle(holder).position === "static") holder.style.position = "relative";
  const button = document.createElement("button");
  button.type = "button";
  button.className = "aevb-png";
  button.textContent = "PNG";
  button.title = "Save this picture as a PNG (for a slide)";
  button.setAttribute("aria-label", "Save this picture as a PNG");
  Object.assign(button.style, {
    position: "absolute", top: "4px", right: "4px", zIndex: "2", font: "11px sans-serif",
    padding: "1px 6px", border: "1px solid #bbb", borderRadius: "4px", background: "rgba(255,255,255,0.85)",
    color: "#333", cursor: "pointer", opacity: "0", transition: "opacity 0.15s",
  });
  holder.addEventListener("pointerenter", () => { button.style.opacity = "1"; });
  holder.addEventListener("pointerleave", () => { button.style.opacity = "0"; });
  button.addEventListener("focus", () => { button.style.opacity = "1"; });
  button.addEventListener("pointerdown", (e) => e.stopPropagation());
  button.addEventListener("click", (e) => {
    e.stopPropagation();
    const name = (s.data && typeof s.data.export_name === "string" && s.data.export_name) || "aevb-chart.png";
    const redraw = typeof s.redraw === "function" ? s.redraw : null;
    if (redraw) {
      exportRatio = EXPORT_SCALE;
      try {
        redraw();
      } finally {
        exportRatio = 0;
      }
    }
    // toBlob copies the canvas's pixels now (and encodes them later): the screen's redraw can follow at once
    canvas.toBlob((blob) => {
      if (!blob) return;
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = name;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 2000);
    }, "image/png");
    if (redraw) redraw();
  });
  holder.appendChild(button);
}

// The component's state for the element it is mounted in: made once by setup(parentElement) and kept in
// states (a WeakMap keyed by the element, so it goes with the element) as long as the element holds a
// .canvas (undefined otherwise); its api set to the component; render(s, data) called when data is an
// object. draw(s), when given, redraws the canvas from the state alone (no message to the server): the PNG
// button redraws with it at EXPORT_SCALE. Returns the state (undefined while there is no .canvas).
function mountState(states, component, setup, render, draw) {
  const { data, parentElement } = component;
  let s = states.get(parentElement);
  if (!s) {
    if (!parentElement.querySelector(".canvas")) return undefined;
    s = setup(parentElement);
    if (typeof draw === "function") s.redraw = () => draw(s);
    addPngButton(s);
    states.set(parentElement, s);
  }
  s.api = component;
  if (data && typeof data === "object") render(s, data);
  return s;
}
