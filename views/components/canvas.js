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

// Pixels of backing store per CSS pixel of the canvas: the device's pixel ratio times its CSS zoom.
function pixelRatio(canvas) {
  return (window.devicePixelRatio || 1) * cssZoom(canvas);
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

// The component's state for the element it is mounted in: made once by setup(parentElement) and kept in
// states (a WeakMap keyed by the element, so it goes with the element) as long as the element holds a
// .canvas (undefined otherwise); its api set to the component; render(s, data) called when data is an
// object. Returns the state (undefined while there is no .canvas).
function mountState(states, component, setup, render) {
  const { data, parentElement } = component;
  let s = states.get(parentElement);
  if (!s) {
    if (!parentElement.querySelector(".canvas")) return undefined;
    s = setup(parentElement);
    states.set(parentElement, s);
  }
  s.api = component;
  if (data && typeof data === "object") render(s, data);
  return s;
}
