// The latent pad: a canvas map of the latent plane that streams z to the server while the pointer drags.
//
// Data in (from views/components/latent_pad.py, plain numbers and server-made PNG data URLs only):
//   version, points {u, v, c} (only when the pad lacks this version), region, bounds, z, ack, image,
//   caption, title, row, row_title, overlays {lines, marks}, colors, height, pick_px, hint;
//   decoder (float32 arrays of the decoder on this plane, only when the pad lacks decoder_version), view,
//   label_k, row_k, caption_format; equal_scale (the canvas as tall as the region at the same scale on both
//   axes, at most `height`: a square region draws a square map), static (a picture only: no pointer, keys or
//   wheel, nothing reported back, the points sent with every frame; the Watch page while it plays), frame (a
//   counter, exposed as the canvas's data-frame), hint_lines (lines kept for the hint, however short).
// Values out: trigger "move" {u, v, seq} (latest wins: at most one in flight), trigger "pick" {kind, i},
//   trigger "zoom" {dir, u, v}, state "have" (the point-set version drawn), state "have_decoder".
// With a decoder (explorer_core/explore/browser_decoder.py) the pad decodes the z under the pointer itself,
// every frame, and sends z when the pointer is released or the keys rest; without one, every move goes to
// the server, which answers with the decoded PNG.
// Text is only ever set with textContent or drawn with fillText: nothing becomes HTML.

// num(), fitCanvas() and mountState() come from ../canvas.js, which views/components/canvas_assets.py puts
// first.

const PADS = new WeakMap();
const MOVE_TIMEOUT_MS = 4000;
const WHEEL_GAP_MS = 250;
const DRAG_PX = 3;
const KEY_SYNC_MS = 300;
// a touch screen (a phone): its hint speaks of fingers, and two fingers pinch to zoom (a wheel notch per
// PINCH_STEP of change in their distance)
const COARSE = typeof matchMedia === "function" && matchMedia("(pointer: coarse)").matches;
const PINCH_STEP = 1.3;

/** The hint as a touch screen reads it: no keys or wheel, a tap for a click, a pinch for the wheel. */
export function touchHint(text) {
  const parts = text.split(" · ");
  const zooms = parts.some((p) => /wheel/i.test(p));
  const kept = parts
    .filter((p) => !/arrow key|wheel/i.test(p))
    .map((p) => p.replace(/\bclick/g, "tap").replace(/\bClick/g, "Tap").replace(/the pointer/g, "your finger"));
  return (zooms ? [...kept, "pinch: zoom"] : kept).join(" · ");
}
// the first ask for the decoder waits this long after the pad's first data (the page draws first)
const DECODER_ASK_DELAY_MS = 400;
const ROW_PAD = 2;
const ROW_GREY = 128;

// Decoders and point sets this page loaded, by version, the newest KEPT of each: a pad that mounts again
// (the visitor went to another page of the app and came back) takes them from here instead of asking the
// server for them again (megabytes for a 500-500 decoder). The module lives as long as the browser tab.
const KEPT = 3;
const keptDecoders = new Map();
const keptPoints = new Map();
function keep(map, version, value) {
  map.delete(version);
  map.set(version, value);
  while (map.size > KEPT) map.delete(map.keys().next().value);
  return value;
}

// ------------------------------------------------------------------ the decoder, run in the browser
function f32(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}

function loadDecoder(p) {
  const tables = {};
  for (const [view, t] of Object.entries(p.tables || {})) tables[view] = f32(t);
  return {
    version: p.version,
    h0: p.h0,
    k: p.k,
    fw: f32(p.first_w),
    fb: f32(p.first_b),
    layers: (p.layers || []).map((l) => ({ w: f32(l.w), b: f32(l.b), nIn: l.n_in, nOut: l.n_out })),
    tables,
    lutMax: num(p.lut_max, 256),
    lutSize: num(p.lut_size, 8193),
  };
}

// The grey levels [784] of the decoding at plane point (u, v) under label row k, by the view's table
// (the same arithmetic as PlaneDecoder.logits / table_lookup on the server).
function decodeLocal(dec, u, v, k, table) {
  let h = new Float64Array(dec.h0);
  const fb = k * dec.h0;
  for (let j = 0; j < dec.h0; j++) {
    const a = dec.fw[2 * j] * u + dec.fw[2 * j + 1] * v + dec.fb[fb + j];
    h[j] = a > 0 ? a : 0;
  }
  dec.layers.forEach((l, i) => {
    const out = new Float64Array(l.nOut);
    const last = i === dec.layers.length - 1;
    for (let o = 0; o < l.nOut; o++) {
      let acc = l.b[o];
      const row = o * l.nIn;
      for (let q = 0; q < l.nIn; q++) acc += l.w[row + q] * h[q];
      out[o] = last || acc > 0 ? acc : 0;
    }
    h = out;
  });
  const px = new Uint8ClampedArray(h.length);
  const top = dec.lutSize - 1;
  const scale = top / (2 * dec.lutMax);
  for (let i = 0; i < h.length; i++) {
    const t = (h[i] + dec.lutMax) * scale;
    let value;
    if (t <= 0) value = table[0];
    else if (t >= top) value = table[top];
    else {
      const i0 = Math.floor(t);
      const f = t - i0;
      value = table[i0] * (1 - f) + table[i0 + 1] * f;
    }
    px[i] = Math.round(value * 255);
  }
  return px;
}

// Grey images [n][side * side] side by side (ROW_PAD grey pixels between) as a PNG data URL.
function greyURL(s, images, side) {
  const n = images.length;
  const w = n * (side + ROW_PAD) - ROW_PAD;
  const c = s.scratch || (s.scratch = document.createElement("canvas"));
  c.width = w;
  c.height = side;
  const ctx = c.getContext("2d");
  const img = ctx.createImageData(w, side);
  img.data.fill(ROW_GREY);
  images.forEach((px, j) => {
    const x0 = j * (side + ROW_PAD);
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        const o = 4 * (y * w + x0 + x);
        const g = px[y * side + x];
        img.data[o] = g;
        img.data[o + 1] = g;
        img.data[o + 2] = g;
      }
    }
  });
  for (let i = 3; i < img.data.length; i += 4) img.data[i] = 255;
  ctx.putImageData(img, 0, 0);
  return c.toDataURL("image/png");
}

function localView(s) {
  const d = s.data;
  if (!s.dec || !d || d.decoder_version !== s.dec.version) return null;
  const table = s.dec.tables[d.view];
  return table ? table : null;
}

// Show the decoding of the cursor's z, decoded here; false when this pad cannot (no decoder, or a view
// without a table: then the server's image is shown).
function showLocal(s) {
  const table = localView(s);
  if (!table) return false;
  const d = s.data;
  const [u, v] = s.cursor();
  const k = Math.min(Math.max(0, Math.round(num(d.label_k, 0))), s.dec.k - 1);
  const rows = Array.isArray(d.row_k) ? d.row_k.filter((r) => r >= 0 && r < s.dec.k) : [];
  if (typeof d.caption_format === "string" && d.caption_format) {
    s.caption.textContent = d.caption_format.replace("{u}", u.toFixed(2)).replace("{v}", v.toFixed(2));
  }
  const key = `${s.dec.version}|${d.view}|${u}|${v}|${k}|${rows.join(",")}`;
  if (key === s.localKey) return true;
  s.localKey = key;
  const side = Math.round(Math.sqrt(s.dec.layers[s.dec.layers.length - 1].nOut));
  setImage(s, greyURL(s, [decodeLocal(s.dec, u, v, k, table)], side));
  if (rows.length) {
    const url = greyURL(s, rows.map((r) => decodeLocal(s.dec, u, v, r, table)), side);
    if (s.row.getAttribute("src") !== url) s.row.setAttribute("src", url);
  }
  return true;
}

function setImage(s, url) {
  if (s.img.getAttribute("src") === url) return;
  s.img.setAttribute("src", url);
  s.shown += 1;
  s.img.dataset.shown = String(s.shown);
}

// The canvas's size [w, h] in CSS pixels: the map's width by the data's height; with equal_scale, as tall as
// the region at the same scale on both axes (a square region: a square), at most the data's height (a
// region too tall for that is drawn narrower, at the same scale still).
function layout(s) {
  const d = s.data || {};
  const avail = Math.max(120, Math.round(s.canvas.parentElement.clientWidth || s.canvas.clientWidth || 480));
  const maxH = Math.max(120, Math.round(num(d.height, 420)));
  const r = d.region;
  if (!d.equal_scale || !Array.isArray(r)) return [avail, maxH];
  const tall = (r[1][1] - r[1][0]) / (r[0][1] - r[0][0]);
  if (!(tall > 0) || !Number.isFinite(tall)) return [avail, maxH];
  if (avail * tall <= maxH) return [avail, Math.max(120, Math.round(avail * tall))];
  return [Math.max(120, Math.round(maxH / tall)), maxH];
}

// A tick's text: a negative value with a real minus sign (U+2212), which reads as one at 10 px where a
// hyphen is a dot.
function tickText(value) {
  const text = String(+Math.abs(value).toPrecision(3));
  return value < 0 ? `\u2212${text}` : text;
}

function setup(parent) {
  const root = parent.querySelector(".pad");
  const canvas = parent.querySelector(".canvas");
  const s = {
    root,
    canvas,
    ctx: canvas.getContext("2d"),
    img: parent.querySelector(".decoded"),
    caption: parent.querySelector(".caption"),
    title: parent.querySelector(".title"),
    hint: parent.querySelector(".hint"),
    rowwrap: parent.querySelector(".rowwrap"),
    row: parent.querySelector(".row"),
    rowtitle: parent.querySelector(".rowtitle"),
    data: null,
    api: null,
    points: null, // {version, u: Float32Array, v: Float32Array, c: Uint8Array}
    layer: null, // offscreen canvas with the points, for (version, region, size)
    layerKey: "",
    local: null, // [u, v] while the pointer (or keys) lead
    seq: Date.now(),
    inflight: null,
    sentAt: 0,
    pending: null,
    down: null,
    dragging: false,
    lastWheel: 0,
    asked: "",
    askedDecoder: "",
    shown: 0,
    dec: null, // the decoder (loadDecoder), when the server sent one
    localKey: "",
    scratch: null,
    keyTimer: null,
  };
  // the canvas's size in CSS pixels, as drawn last (layout(s) before the first draw)
  s.size = () => s.wh || layout(s);
  s.toPx = (u, v) => {
    const [w, h] = s.size();
    const r = s.data.region;
    return [((u - r[0][0]) / (r[0][1] - r[0][0])) * w, (1 - (v - r[1][0]) / (r[1][1] - r[1][0])) * h];
  };
  s.toPlane = (x, y) => {
    const [w, h] = s.size();
    const r = s.data.region;
    return [r[0][0] + (x / w) * (r[0][1] - r[0][0]), r[1][0] + (1 - y / h) * (r[1][1] - r[1][0])];
  };
  s.clamp = (uv) => {
    const b = s.data.bounds;
    return [Math.min(Math.max(uv[0], b[0][0]), b[0][1]), Math.min(Math.max(uv[1], b[1][0]), b[1][1])];
  };
  s.cursor = () => s.local || s.data.z;

  const eventXY = (e) => {
    const rect = canvas.getBoundingClientRect();
    const zoom = cssZoom(canvas);
    return [(e.clientX - rect.left) / zoom, (e.clientY - rect.top) / zoom];
  };

  // the fingers on the canvas (id -> [x, y]) and, with two, their distance at the last zoom step
  s.touches = new Map();
  s.pinch = 0;
  const pinchDistance = () => {
    const [a, b] = [...s.touches.values()];
    return Math.hypot(a[0] - b[0], a[1] - b[1]);
  };
  s.onDown = (e) => {
    if (e.pointerType === "touch" && s.data && !s.data.static) {
      s.touches.set(e.pointerId, eventXY(e));
      if (s.touches.size === 2) {
        s.pinch = pinchDistance(); // a second finger: a pinch, not a drag
        s.down = null;
        s.dragging = false;
        s.local = null;
        return;
      }
    }
    if (e.button !== 0 || !s.data || s.data.static) return;
    canvas.focus();
    canvas.setPointerCapture(e.pointerId);
    s.down = eventXY(e);
    s.dragging = false;
    e.preventDefault();
  };
  s.onMove = (e) => {
    if (s.touches.has(e.pointerId)) s.touches.set(e.pointerId, eventXY(e));
    if (s.pinch > 0 && s.touches.size === 2 && s.data) {
      const d = pinchDistance();
      const ratio = d / s.pinch;
      if (ratio > PINCH_STEP || ratio < 1 / PINCH_STEP) {
        s.pinch = d;
        const [a, b] = [...s.touches.values()];
        const [u, v] = s.toPlane((a[0] + b[0]) / 2, (a[1] + b[1]) / 2);
        s.api.setTriggerValue("zoom", { dir: ratio > 1 ? 1 : -1, u, v });
      }
      return;
    }
    if (!s.down || !s.data) return;
    const [x, y] = eventXY(e);
    if (!s.dragging && Math.hypot(x - s.down[0], y - s.down[1]) < DRAG_PX) return;
    s.dragging = true;
    const uv = s.clamp(s.toPlane(x, y));
    if (localView(s)) {
      s.local = uv; // decoded here; z goes to the server on release
      draw(s);
    } else moveTo(s, uv);
  };
  s.onUp = (e) => {
    s.touches.delete(e.pointerId);
    if (s.touches.size < 2) s.pinch = 0;
    if (!s.down || !s.data) return;
    const [x, y] = eventXY(e);
    if (!s.dragging) {
      const hit = nearest(s, x, y);
      if (hit) {
        s.api.setTriggerValue("pick", hit);
      } else {
        moveTo(s, s.clamp(s.toPlane(x, y)));
      }
    } else if (s.local) send(s);
    s.down = null;
    s.dragging = false;
  };
  s.onKey = (e) => {
    if (!s.data || s.data.static) return;
    const r = s.data.region;
    const step = ((r[0][1] - r[0][0]) / 60) * (e.shiftKey ? 5 : 1);
    const d = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] }[e.key];
    if (!d) return;
    e.preventDefault();
    const z = s.cursor();
    const uv = s.clamp([z[0] + d[0], z[1] + d[1]]);
    if (localView(s)) {
      // decoded here at once; z goes to the server when the keys rest
      s.local = uv;
      draw(s);
      clearTimeout(s.keyTimer);
      s.keyTimer = setTimeout(() => s.local && send(s), KEY_SYNC_MS);
    } else moveTo(s, uv);
  };
  s.onWheel = (e) => {
    if (!s.data || s.data.static) return;
    e.preventDefault();
    const now = performance.now();
    if (now - s.lastWheel < WHEEL_GAP_MS || e.deltaY === 0) return;
    s.lastWheel = now;
    const [u, v] = s.toPlane(...eventXY(e));
    s.api.setTriggerValue("zoom", { dir: e.deltaY < 0 ? 1 : -1, u, v });
  };
  canvas.addEventListener("pointerdown", s.onDown);
  canvas.addEventListener("pointermove", s.onMove);
  canvas.addEventListener("pointerup", s.onUp);
  canvas.addEventListener("pointercancel", s.onUp);
  canvas.addEventListener("keydown", s.onKey);
  canvas.addEventListener("wheel", s.onWheel, { passive: false });
  s.resize = new ResizeObserver(() => draw(s));
  s.resize.observe(canvas.parentElement);
  s.cleanup = () => {
    canvas.removeEventListener("pointerdown", s.onDown);
    canvas.removeEventListener("pointermove", s.onMove);
    canvas.removeEventListener("pointerup", s.onUp);
    canvas.removeEventListener("pointercancel", s.onUp);
    canvas.removeEventListener("keydown", s.onKey);
    canvas.removeEventListener("wheel", s.onWheel);
    clearTimeout(s.keyTimer);
    s.resize.disconnect();
    PADS.delete(parent);
  };
  return s;
}

// Latest wins: one move in flight; newer positions wait in `pending`, only the newest is kept.
function moveTo(s, uv) {
  s.local = uv;
  draw(s);
  send(s);
}

function send(s) {
  const now = performance.now();
  if (s.inflight !== null && now - s.sentAt < MOVE_TIMEOUT_MS) {
    s.pending = true;
    return;
  }
  s.pending = false;
  s.seq += 1;
  s.inflight = s.seq;
  s.sentAt = now;
  s.api.setTriggerValue("move", { u: s.local[0], v: s.local[1], seq: s.seq });
}

function nearest(s, x, y) {
  const d = s.data;
  const limit = num(d.pick_px, 8);
  let best = null;
  let bestD = Infinity;
  for (const m of (d.overlays && d.overlays.marks) || []) {
    if (typeof m.pick !== "number") continue;
    const [mx, my] = s.toPx(m.u, m.v);
    const dist = Math.hypot(mx - x, my - y);
    if (dist <= Math.max(limit, num(m.r, 0)) && dist < bestD) {
      best = { kind: "mark", i: m.pick };
      bestD = dist;
    }
  }
  if (best || !s.points || !d.pick_points) return best;
  const p = s.points;
  for (let i = 0; i < p.u.length; i++) {
    const [px, py] = s.toPx(p.u[i], p.v[i]);
    const dist = Math.hypot(px - x, py - y);
    if (dist <= limit && dist < bestD) {
      best = { kind: "point", i };
      bestD = dist;
    }
  }
  return best;
}

function drawLayer(s, w, h, ratio) {
  const key = `${s.points ? s.points.version : ""}|${JSON.stringify(s.data.region)}|${w}x${h}@${ratio}`;
  if (s.layer && s.layerKey === key) return s.layer;
  const layer = document.createElement("canvas");
  layer.width = w * ratio;
  layer.height = h * ratio;
  const ctx = layer.getContext("2d");
  ctx.scale(ratio, ratio);
  const colors = s.data.colors || [];
  drawAxes(s, ctx, w, h);
  let sample = "";
  if (s.points) {
    const p = s.points;
    const px = new Float32Array(p.u.length * 2);
    ctx.globalAlpha = 0.6;
    for (let i = 0; i < p.u.length; i++) {
      const [x, y] = s.toPx(p.u[i], p.v[i]);
      px[2 * i] = x;
      px[2 * i + 1] = y;
      if (x < -2 || y < -2 || x > w + 2 || y > h + 2) continue;
      ctx.fillStyle = colors[p.c[i]] || "#888888";
      ctx.fillRect(x - 1.5, y - 1.5, 3, 3);
    }
    // for tests and tools: one isolated point inside the view (css px in the canvas, and its position)
    const limit = num(s.data.pick_px, 8) * 2;
    for (let i = 0; i < p.u.length && !sample; i++) {
      const x = px[2 * i];
      const y = px[2 * i + 1];
      if (x < 20 || y < 20 || x > w - 20 || y > h - 20) continue;
      let alone = true;
      for (let j = 0; j < p.u.length && alone; j++) {
        if (j !== i && Math.hypot(px[2 * j] - x, px[2 * j + 1] - y) < limit) alone = false;
      }
      if (alone) sample = `${x.toFixed(1)},${y.toFixed(1)},${i}`;
    }
  }
  drawLegend(ctx, colors);
  s.canvas.dataset.sample = sample;
  s.layer = layer;
  s.layerKey = key;
  return layer;
}

function niceStep(span) {
  const raw = span / 6;
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

// Light grid lines with their values, and the axis names (plain text from the server, drawn with fillText).
function drawAxes(s, ctx, w, h) {
  const r = s.data.region;
  ctx.save();
  ctx.font = "10px sans-serif";
  ctx.fillStyle = "#8a8d96";
  ctx.lineWidth = 1;
  // every label lies wholly inside the canvas (one at an edge is moved in, not cut: "−10" at the left edge
  // once showed as "10"); one that would overlap its neighbour, or the x labels' row, is left out. The
  // labels drawn go to the canvas's data-ticks ("axis|text|left|right|top|bottom", css px) for tests.
  const ticks = [];
  const TICK_H = 10;
  for (const axis of [0, 1]) {
    const [lo, hi] = r[axis];
    const step = niceStep(hi - lo);
    let last = -Infinity;
    for (let t = Math.ceil(lo / step) * step; t <= hi; t += step) {
      const value = Math.abs(t) < step / 1e6 ? 0 : t;
      ctx.strokeStyle = value === 0 ? "#d5d7dd" : "#eef0f3";
      ctx.beginPath();
      if (axis === 0) {
        const [x] = s.toPx(value, r[1][0]);
        ctx.moveTo(x, 0);
        ctx.lineTo(x, h);
        ctx.stroke();
        const label = tickText(value);
        const half = ctx.measureText(label).width / 2;
        const cx = Math.min(Math.max(x, half + 2), w - half - 2);
        if (cx - half < last + 4) continue;
        last = cx + half;
        ctx.textAlign = "center";
        ctx.textBaseline = "bottom";
        ctx.fillText(label, cx, h - 2);
        ticks.push(["x", label, cx - half, cx + half, h - 2 - TICK_H, h - 2]);
      } else {
        const [, y] = s.toPx(r[0][0], value);
        ctx.moveTo(0, y);
        ctx.lineTo(w, y);
        ctx.stroke();
        const label = tickText(value);
        const cy = Math.max(y, TICK_H / 2 + 2);
        // bottom up: the last label drawn is below this one; the lowest would sit on the x labels' row
        if (cy > h - 2 * TICK_H - 6 || (last > -Infinity && last - cy < TICK_H + 2)) continue;
        last = cy;
        ctx.textAlign = "left";
        ctx.textBaseline = "middle";
        ctx.fillText(label, 3, cy);
        ticks.push(["y", label, 3, 3 + ctx.measureText(label).width, cy - TICK_H / 2, cy + TICK_H / 2]);
      }
    }
  }
  s.canvas.dataset.ticks = ticks
    .map(([axis, label, ...box]) => [axis, label, ...box.map((v) => v.toFixed(1))].join("|"))
    .join(";");
  const axes = Array.isArray(s.data.axes) ? s.data.axes : [];
  ctx.font = "12px sans-serif";
  ctx.fillStyle = "#555a66";
  if (typeof axes[0] === "string") {
    ctx.textAlign = "right";
    ctx.textBaseline = "bottom";
    ctx.fillText(axes[0], w - 4, h - 14);
  }
  if (typeof axes[1] === "string") {
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
    ctx.fillText(axes[1], 22, 4);
  }
  ctx.restore();
}

function drawLegend(ctx, colors) {
  if (!colors.length) return;
  ctx.save();
  ctx.font = "11px sans-serif";
  ctx.textBaseline = "middle";
  ctx.textAlign = "left";
  const x0 = 22;
  const y0 = 24;
  colors.forEach((c, i) => {
    const x = x0 + i * 22;
    ctx.globalAlpha = 0.9;
    ctx.fillStyle = c;
    ctx.fillRect(x, y0 - 4, 8, 8);
    ctx.globalAlpha = 1;
    ctx.fillStyle = "#555a66";
    ctx.fillText(String(i), x + 10, y0);
  });
  ctx.restore();
}

function drawMark(ctx, x, y, m) {
  const r = num(m.r, 5);
  ctx.strokeStyle = m.color || "#000000";
  ctx.fillStyle = m.color || "#000000";
  ctx.lineWidth = num(m.width, 2);
  ctx.beginPath();
  if (m.shape === "x") {
    ctx.moveTo(x - r, y - r);
    ctx.lineTo(x + r, y + r);
    ctx.moveTo(x + r, y - r);
    ctx.lineTo(x - r, y + r);
    ctx.stroke();
  } else if (m.shape === "plus") {
    ctx.moveTo(x - r, y);
    ctx.lineTo(x + r, y);
    ctx.moveTo(x, y - r);
    ctx.lineTo(x, y + r);
    ctx.stroke();
  } else {
    ctx.arc(x, y, r, 0, 2 * Math.PI);
    if (m.shape === "disc") {
      ctx.globalAlpha = 0.85;
      ctx.fill();
      ctx.globalAlpha = 1;
      ctx.strokeStyle = "#ffffff";
      ctx.lineWidth = 1.5;
    }
    ctx.stroke();
  }
  if (typeof m.text === "string" && m.text) {
    ctx.font = `bold ${Math.max(10, Math.round(r * 1.1))}px sans-serif`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillStyle = m.shape === "disc" ? "#ffffff" : m.color || "#000000";
    ctx.fillText(m.text, x, y);
  }
}

function draw(s) {
  if (!s.data) return;
  const [w, h] = (s.wh = layout(s));
  const canvas = s.canvas;
  canvas.style.width = s.data.equal_scale ? `${w}px` : "";
  // the PNG button (canvas.js) in the canvas's corner, also when the canvas is narrower than its box
  const png = canvas.parentElement.querySelector(".aevb-png");
  if (png) png.style.right = `${Math.max(0, canvas.parentElement.clientWidth - w) + 4}px`;
  const ratio = pixelRatio(canvas);
  const ctx = s.ctx;
  fitCanvas(canvas, ctx, w, h);
  ctx.drawImage(drawLayer(s, w, h, ratio), 0, 0, w, h);
  const ov = s.data.overlays || {};
  for (const line of ov.lines || []) {
    const pts = line.pts || [];
    if (pts.length < 2) continue;
    ctx.strokeStyle = line.color || "#000000";
    ctx.lineWidth = num(line.width, 2);
    ctx.setLineDash(Array.isArray(line.dash) ? line.dash : []);
    ctx.beginPath();
    pts.forEach((p, i) => {
      const [x, y] = s.toPx(p[0], p[1]);
      if (i === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    });
    if (line.closed) ctx.closePath();
    ctx.stroke();
  }
  ctx.setLineDash([]);
  for (const m of ov.marks || []) {
    const [x, y] = s.toPx(m.u, m.v);
    drawMark(ctx, x, y, m);
  }
  const z = s.cursor();
  const [cx, cy] = s.toPx(z[0], z[1]);
  drawMark(ctx, cx, cy, { shape: "plus", r: 11, width: 4, color: "#ffffff" });
  drawMark(ctx, cx, cy, { shape: "plus", r: 10, width: 2, color: "#111111" });
  canvas.dataset.z = `${z[0].toFixed(4)},${z[1].toFixed(4)}`;
  canvas.dataset.local = showLocal(s) ? "1" : "0";
  // for tests and tools: where the pickable marks are (css px in the canvas) and their pick ids
  canvas.dataset.picks = (ov.marks || [])
    .filter((m) => typeof m.pick === "number")
    .map((m) => {
      const [x, y] = s.toPx(m.u, m.v);
      return `${x.toFixed(1)},${y.toFixed(1)},${m.pick}`;
    })
    .join(";");
  const r = s.data.region;
  canvas.dataset.region = `${r[0][0]},${r[0][1]},${r[1][0]},${r[1][1]}`;
}

function render(s, data) {
  s.data = data;
  s.canvas.style.cursor = data.static ? "default" : "";
  s.canvas.tabIndex = data.static ? -1 : 0;
  if (typeof data.frame === "number") s.canvas.dataset.frame = String(data.frame);
  if (data.static) {
    // a picture only: its points come with every frame, are not kept for other pads, and nothing is reported
    if (data.points && Array.isArray(data.points.u) && (!s.points || s.points.version !== data.version)) {
      s.points = {
        version: data.version,
        u: Float32Array.from(data.points.u),
        v: Float32Array.from(data.points.v),
        c: Uint8Array.from(data.points.c),
      };
      s.layer = null;
    }
  } else if (data.points && Array.isArray(data.points.u)) {
    // what the server sent joins what this tab keeps; the pad then takes its version from there (sent now,
    // or loaded before this pad mounted) and reports it held
    keep(keptPoints, data.version, {
      version: data.version,
      u: Float32Array.from(data.points.u),
      v: Float32Array.from(data.points.v),
      c: Uint8Array.from(data.points.c),
    });
  }
  const points = data.static ? undefined : keptPoints.get(data.version);
  if (points && s.points !== points) {
    s.points = keep(keptPoints, data.version, points);
    s.layer = null;
    s.api.setStateValue("have", data.version);
  } else if (!data.static && (!s.points || s.points.version !== data.version)) {
    // the server thinks this pad has the points (a remount lost them): ask again, once per version
    if (s.asked !== data.version) {
      s.asked = data.version;
      s.api.setStateValue("have", `need:${data.version}:${Date.now()}`);
    }
  }
  const sent =
    data.decoder && typeof data.decoder === "object" && data.decoder.version === data.decoder_version;
  if (sent && !keptDecoders.has(data.decoder.version)) {
    keep(keptDecoders, data.decoder.version, loadDecoder(data.decoder));
  }
  const decoder = data.decoder_version ? keptDecoders.get(data.decoder_version) : undefined;
  if (decoder && (s.dec !== decoder || sent)) {
    s.dec = keep(keptDecoders, decoder.version, decoder);
    s.localKey = "";
    s.api.setStateValue("have_decoder", decoder.version);
  } else if (data.decoder_version && (!s.dec || s.dec.version !== data.decoder_version)) {
    if (s.askedDecoder !== data.decoder_version) {
      s.askedDecoder = data.decoder_version;
      const version = data.decoder_version;
      // the first ask waits until the page has drawn: the decoder is large, the first picture comes first
      const ask = () => {
        if (!s.dec || s.dec.version !== version) {
          s.api.setStateValue("have_decoder", `need:${version}:${Date.now()}`);
        }
      };
      if (s.dec) ask();
      else setTimeout(ask, DECODER_ASK_DELAY_MS);
    }
  }
  if (s.inflight !== null && num(data.ack, -1) >= s.inflight) {
    s.inflight = null;
    if (s.pending) send(s);
    else if (!s.down) s.local = null; // answered and released: the server's z leads again
  }
  const local = Boolean(localView(s));
  if (!local && typeof data.image === "string" && data.image.startsWith("data:image/png;base64,")) {
    setImage(s, data.image);
    s.localKey = "";
  }
  s.title.textContent = typeof data.title === "string" ? data.title : "";
  s.caption.textContent = typeof data.caption === "string" ? data.caption : "";
  const hint = typeof data.hint === "string" ? data.hint : "";
  s.hint.textContent = COARSE ? touchHint(hint) : hint;
  const hintLines = Math.round(num(data.hint_lines, 0));
  s.hint.style.minHeight = hintLines > 0 ? `${hintLines}lh` : "";
  const hasRow =
    (local && Array.isArray(data.row_k) && data.row_k.length > 0) ||
    (typeof data.row === "string" && data.row.startsWith("data:image/png;base64,"));
  s.rowwrap.classList.toggle("on", hasRow);
  if (!local && hasRow && s.row.getAttribute("src") !== data.row) s.row.setAttribute("src", data.row);
  s.rowtitle.textContent = typeof data.row_title === "string" ? data.row_title : "";
  draw(s);
}

export default function (component) {
  const s = mountState(PADS, component, setup, render, draw);
  return s ? s.cleanup : undefined;
}
