// A 3-D scatter drawn on a canvas, updated in place: the browser keeps its own view (turned by a drag, zoomed
// by the wheel), so a new frame of data never moves the camera, and the static point set travels once.
//
// Data in (from views/components/scatter3d.py, plain numbers and short plain text only):
//   version, static {sets} (only while the browser lacks this version), sets (the points that change),
//   ranges [[lo, hi]] x 3, axes [3 names], title, height, frame (a counter), view {az, el, zoom} (the
//   initial view), view_key (views are kept per key, across remounts).
//   A set: {name, color "#rrggbb", size (px), opacity, symbol "circle" | "diamond", x, y, z}.
// Values out: state "have" (the static version drawn).
// Text is only ever drawn with fillText or set with textContent: nothing becomes HTML.

// num(), fitToData() and mountState() come from ../canvas.js, which views/components/canvas_assets.py puts first.

const PLOTS = new WeakMap();
// a touch screen (a phone): two fingers pinch to zoom, a double tap resets, and the hint says so
const COARSE = typeof matchMedia === "function" && matchMedia("(pointer: coarse)").matches;
const VIEWS = new Map(); // view_key -> {az, el, zoom}: survives a remount of the component
const COLOUR = /^#[0-9a-fA-F]{6}$/;

function niceTicks(lo, hi, n) {
  const span = hi - lo;
  if (!(span > 0)) return [];
  const raw = span / n;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) out.push(Math.round(t / step) * step);
  return out;
}

function toSet(set) {
  const x = Float32Array.from(set.x || []);
  const y = Float32Array.from(set.y || []);
  const z = Float32Array.from(set.z || []);
  return {
    name: typeof set.name === "string" ? set.name : "",
    color: COLOUR.test(set.color || "") ? set.color : "#444444",
    size: num(set.size, 2),
    opacity: num(set.opacity, 1),
    symbol: set.symbol === "diamond" ? "diamond" : "circle",
    x,
    y,
    z,
    n: Math.min(x.length, y.length, z.length),
  };
}

function setup(parent) {
  const canvas = parent.querySelector(".canvas");
  const s = {
    canvas,
    ctx: canvas.getContext("2d"),
    title: parent.querySelector(".title"),
    data: null,
    api: null,
    statics: null, // {version, sets}
    sets: [],
    asked: "",
    drag: null,
    raf: 0,
    frames: 0,
  };
  s.view = () => {
    const key = s.data && typeof s.data.view_key === "string" ? s.data.view_key : "";
    if (!VIEWS.has(key)) {
      const v = (s.data && s.data.view) || {};
      VIEWS.set(key, { az: num(v.az, -0.785), el: num(v.el, 0.37), zoom: num(v.zoom, 1) });
    }
    return VIEWS.get(key);
  };
  s.schedule = () => {
    if (!s.raf) s.raf = requestAnimationFrame(() => ((s.raf = 0), draw(s)));
  };
  const fingers = new Map(); // pointer id -> [x, y] of the touches on the canvas
  let pinch = 0; // with two fingers: their distance at the last move
  const spread = () => {
    const [a, b] = [...fingers.values()];
    return Math.hypot(a[0] - b[0], a[1] - b[1]);
  };
  const down = (e) => {
    if (e.pointerType === "touch") {
      fingers.set(e.pointerId, [e.clientX, e.clientY]);
      if (fingers.size === 2) {
        pinch = spread();
        s.drag = null;
        return;
      }
    }
    s.drag = { x: e.clientX, y: e.clientY };
    canvas.setPointerCapture(e.pointerId);
  };
  const move = (e) => {
    if (fingers.has(e.pointerId)) fingers.set(e.pointerId, [e.clientX, e.clientY]);
    if (pinch > 0 && fingers.size === 2 && s.data) {
      const d = spread();
      const v = s.view();
      v.zoom = Math.max(0.4, Math.min(5, v.zoom * (d / pinch)));
      pinch = d;
      s.schedule();
      return;
    }
    if (!s.drag || !s.data) return;
    const v = s.view();
    v.az -= (e.clientX - s.drag.x) * 0.01;
    v.el = Math.max(-1.55, Math.min(1.55, v.el + (e.clientY - s.drag.y) * 0.01));
    s.drag = { x: e.clientX, y: e.clientY };
    s.schedule();
  };
  const up = (e) => {
    fingers.delete(e.pointerId);
    if (fingers.size < 2) pinch = 0;
    s.drag = null;
  };
  const wheel = (e) => {
    if (!s.data) return;
    e.preventDefault();
    const v = s.view();
    v.zoom = Math.max(0.4, Math.min(5, v.zoom * (e.deltaY < 0 ? 1.1 : 1 / 1.1)));
    s.schedule();
  };
  const reset = () => {
    if (!s.data) return;
    VIEWS.delete(typeof s.data.view_key === "string" ? s.data.view_key : "");
    s.schedule();
  };
  canvas.addEventListener("pointerdown", down);
  canvas.addEventListener("pointermove", move);
  canvas.addEventListener("pointerup", up);
  canvas.addEventListener("pointercancel", up);
  canvas.addEventListener("wheel", wheel, { passive: false });
  canvas.addEventListener("dblclick", reset);
  if (COARSE) {
    const hint = parent.querySelector(".hint");
    if (hint) hint.textContent = "drag to turn · pinch to zoom · double-tap resets the view";
  }
  return s;
}

function draw(s) {
  const d = s.data;
  if (!d) return;
  const canvas = s.canvas;
  const [w, h] = fitToData(s, 160, 480, 160, 420);
  const ctx = s.ctx;
  const view = s.view();
  const ranges = Array.isArray(d.ranges) && d.ranges.length === 3 ? d.ranges : [[-1, 1], [-1, 1], [-1, 1]];
  const lo = ranges.map((r) => num(r[0], -1));
  const span = ranges.map((r, i) => Math.max(num(r[1], 1) - lo[i], 1e-9));
  const ca = Math.cos(view.az), sa = Math.sin(view.az), ce = Math.cos(view.el), se = Math.sin(view.el);
  // the legend's items (static sets first, then the ones that change), wrapped into as many lines of 16 px
  // as the width needs (one line cut "chosen test point" at the edge of a narrow column); the box below it
  const sets = [...((s.statics && s.statics.sets) || []), ...s.sets];
  ctx.font = "12px sans-serif";
  const legend = [];
  let lx = 4, ly = 12;
  for (const set of sets) {
    if (!set.name) continue;
    const width = 24 + ctx.measureText(set.name).width;
    if (lx > 4 && lx + width - 8 > w) {
      lx = 4;
      ly += 16;
    }
    legend.push([set, lx, ly]);
    lx += width;
  }
  const top = 18 + ly;
  const scale = ((Math.min(w, h - top) / 2) / 1.75) * view.zoom;
  const cx = w / 2, cy = top + (h - top) / 2;
  // unit cube [-1, 1]^3 -> screen: right r = (-sin az, cos az, 0), up u = (-sin el cos az, -sin el sin az, cos el)
  const project = (x, y, z) => [
    cx + scale * (-sa * x + ca * y),
    cy - scale * (-se * ca * x - se * sa * y + ce * z),
  ];
  const unit = (value, axis) => ((value - lo[axis]) / span[axis]) * 2 - 1;

  // the box, its ticks and axis names
  ctx.lineWidth = 1;
  ctx.strokeStyle = "rgba(0, 0, 0, 0.18)";
  ctx.beginPath();
  for (const a of [-1, 1]) {
    for (const b of [-1, 1]) {
      for (const [p, q] of [
        [[-1, a, b], [1, a, b]],
        [[a, -1, b], [a, 1, b]],
        [[a, b, -1], [a, b, 1]],
      ]) {
        const [x0, y0] = project(...p);
        const [x1, y1] = project(...q);
        ctx.moveTo(x0, y0);
        ctx.lineTo(x1, y1);
      }
    }
  }
  ctx.stroke();
  const names = Array.isArray(d.axes) ? d.axes : ["x", "y", "z"];
  ctx.fillStyle = "rgba(49, 51, 63, 0.8)";
  ctx.font = "11px sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  const edges = [
    (t) => [t, -1, -1],
    (t) => [1, t, -1],
    (t) => [-1, -1, t],
  ];
  for (let axis = 0; axis < 3; axis++) {
    const out = axis === 2 ? [-1.12, -1.12, 0] : axis === 0 ? [0, -1.15, -1.12] : [1.15, 0, -1.12];
    for (const t of niceTicks(lo[axis], lo[axis] + span[axis], 4)) {
      const p = edges[axis](unit(t, axis));
      const q = p.map((c, i) => (out[i] ? out[i] : c));
      const [x, y] = project(...q);
      ctx.fillText(String(Math.round(t * 100) / 100), x, y);
    }
    const mid = edges[axis](0).map((c, i) => (out[i] ? out[i] * 1.16 : c));
    const [x, y] = project(...mid);
    ctx.font = "bold 12px sans-serif";
    ctx.fillText(typeof names[axis] === "string" ? names[axis] : "", x, y);
    ctx.font = "11px sans-serif";
  }

  // the points: static sets first, then the ones that change
  for (const set of sets) {
    ctx.globalAlpha = set.opacity;
    ctx.fillStyle = set.color;
    const r = set.size;
    ctx.beginPath();
    for (let i = 0; i < set.n; i++) {
      const [x, y] = project(unit(set.x[i], 0), unit(set.y[i], 1), unit(set.z[i], 2));
      if (set.symbol === "diamond") {
        ctx.moveTo(x, y - r);
        ctx.lineTo(x + r, y);
        ctx.lineTo(x, y + r);
        ctx.lineTo(x - r, y);
        ctx.closePath();
      } else {
        ctx.moveTo(x + r, y);
        ctx.arc(x, y, r, 0, 2 * Math.PI);
      }
    }
    ctx.fill();
  }
  ctx.globalAlpha = 1;

  // the legend
  ctx.textAlign = "left";
  ctx.font = "12px sans-serif";
  for (const [set, x, y] of legend) {
    ctx.fillStyle = set.color;
    ctx.beginPath();
    ctx.arc(x + 5, y, 4, 0, 2 * Math.PI);
    ctx.fill();
    ctx.fillStyle = "rgba(49, 51, 63, 0.9)";
    ctx.fillText(set.name, x + 13, y);
  }
  canvas.dataset.view = JSON.stringify({
    az: Math.round(view.az * 1e4) / 1e4,
    el: Math.round(view.el * 1e4) / 1e4,
    zoom: Math.round(view.zoom * 1e4) / 1e4,
  });
}

function render(s, data) {
  s.data = data;
  const st = data.static;
  if (st && Array.isArray(st.sets)) {
    s.statics = { version: data.version, sets: st.sets.map(toSet) };
    s.api.setStateValue("have", data.version);
  } else if (!s.statics || s.statics.version !== data.version) {
    // the server thinks the browser holds this version (a remount lost it): ask once per version
    if (s.asked !== data.version) {
      s.asked = data.version;
      s.api.setStateValue("have", `need:${data.version}:${Date.now()}`);
    }
  }
  s.sets = Array.isArray(data.sets) ? data.sets.map(toSet) : [];
  s.title.textContent = typeof data.title === "string" ? data.title : "";
  if (s.canvas.dataset.frame !== String(data.frame)) {
    s.frames += 1;
    s.canvas.dataset.frame = String(data.frame);
    s.canvas.dataset.frames = String(s.frames);
  }
  draw(s);
}

export default function (component) {
  mountState(PLOTS, component, setup, render, draw);
  // no cleanup: the state (the static points) must outlive a data update; the listeners and the state go
  // with the element when it is removed (a WeakMap entry keyed by it)
  return undefined;
}
