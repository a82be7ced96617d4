// What the canvas components share (live_chart, scatter3d): views/components/canvas_assets.py puts this
// before each one's main.js, so that each stays one inline script (components v2: no build, no imports).

function num(x, fallback) {
  return typeof x === "number" && Number.isFinite(x) ? x : fallback;
}

// Size the canvas to w x h CSS pixels with a backing store at the device's pixel ratio (reallocated only
// when that size changes), scale its 2-D context ctx to CSS pixels and clear it.
function fitCanvas(canvas, ctx, w, h) {
  const ratio = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
    canvas.style.height = `${h}px`;
  }
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
}
