// AEVB Explorer, published page: the replays of recorded runs (factor analysis and Watch it learn).
//
// Training needs torch, which a browser does not have, so these two pages replay a run recorded with the
// app's own code (explorer_core/publish/recordings.py): a scrubber and Play move through the recorded steps,
// nothing is trained here, and the page says so. The curves are the app's charts (the specs of
// explorer_core/figures, drawn as views/components/live_chart draws them) with a cursor at the step shown;
// the 3-D scatter turns on a drag as the app's does (views/components/scatter3d). The state (step, speed,
// view, test point) lives in the address's hash, as on the model pages.
//
// app.js calls window.AEVBReplay.pages[kind](data, entry, ui), ui holding its helpers (el, paint, hash...).
// Text is only set with textContent or drawn with fillText: nothing read from the hash becomes HTML.
(function (root) {
  "use strict";

  const COLOUR = /^(#[0-9a-fA-F]{6}|rgba?\([0-9., ]+\))$/;
  const MARGIN = { l: 58, r: 12, t: 28, b: 40 };
  // the app's colours (explorer_core/figures/common.py)
  const DATA_COLOUR = "#1f77b4";
  const MODEL_COLOUR = "#ff7f0e";
  const Q_COLOUR = "#d62728";
  const EXACT_COLOUR = "#2ca02c";
  const CURSOR_COLOUR = "#31333f";
  // the future part of a curve (after the step shown): drawn faintly, so the run's course stays in view
  const FUTURE_OPACITY = 0.18;

  function num(x, fallback) {
    return typeof x === "number" && Number.isFinite(x) ? x : fallback;
  }
  function clamp(x, lo, hi) {
    return Math.min(Math.max(x, lo), hi);
  }
  function colour(c, fallback) {
    return typeof c === "string" && COLOUR.test(c) ? c : fallback;
  }
  function text(t) {
    return typeof t === "string" ? t : "";
  }
  // base64 -> a typed array of little-endian values (the buffer is fresh, so always aligned)
  function typed(b64, Type) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Type(bytes.buffer);
  }
  // Python's f"{x:.4f}" (an ASCII minus, as the app's sentences)
  function fixed(x, d) {
    return Number(x).toFixed(d);
  }

  // ------------------------------------------------------------------------------------------ canvases
  // backing-store pixels per CSS pixel: the device's ratio times the lecture scale's CSS zoom (sharp at 150 %)
  function pixelRatio(canvas) {
    return (window.devicePixelRatio || 1) * num(canvas.currentCSSZoom, 1);
  }
  // size a canvas to w x h CSS pixels and return its 2-D context in CSS pixels, cleared
  function fitCanvas(canvas, w, h) {
    const r = pixelRatio(canvas);
    const W = Math.round(w * r);
    const H = Math.round(h * r);
    if (canvas.width !== W || canvas.height !== H) {
      canvas.width = W;
      canvas.height = H;
    }
    canvas.style.height = `${h}px`; // CSSOM (the page's CSP allows no style attribute)
    const ctx = canvas.getContext("2d");
    ctx.setTransform(r, 0, 0, r, 0, 0);
    ctx.clearRect(0, 0, w, h);
    return ctx;
  }
  function widthOf(canvas, fallback) {
    return Math.round(canvas.clientWidth || fallback);
  }

  // ------------------------------------------------------------------------------------------ charts
  function niceTicks(lo, hi, n) {
    const span = hi - lo;
    if (!(span > 0)) return [];
    const raw = span / n;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) || raw;
    const out = [];
    for (let t = Math.ceil(lo / step - 1e-9) * step; t <= hi + 1e-9 * span; t += step) {
      out.push(Math.round(t / step) * step);
    }
    return out;
  }
  function tickText(t) {
    const a = Math.abs(t);
    if (a === 0) return "0";
    if (a >= 1e4 || a < 1e-3) return t.toExponential(0);
    return String(Math.round(t * 1000) / 1000);
  }

  // One panel of a chart spec in box [x0, y0, w, h]; `cursor` (an x value, or null) splits each line into its
  // past (drawn) and its future (drawn faintly) and is drawn as a vertical line with a dot on each curve.
  // Returns the shaded phases' pixel boxes (for the tests: [label, x0, x1, y0, y1]).
  function drawPanel(ctx, p, box, cw, cursor) {
    const [x0, y0, w, h] = box;
    const xr = (p.x && p.x.range) || [0, 1];
    const yr = (p.y && p.y.range) || [0, 1];
    const log = !!(p.y && p.y.log);
    let xlo = num(xr[0], 0);
    let xhi = num(xr[1], 1);
    let ylo = num(yr[0], 0);
    let yhi = num(yr[1], 1);
    if (log) {
      ylo = Math.log10(Math.max(ylo, 1e-300));
      yhi = Math.log10(Math.max(yhi, 1e-300));
    }
    if (!(xhi > xlo)) xhi = xlo + 1;
    if (!(yhi > ylo)) yhi = ylo + 1;
    if (p.equal) {
      const ux = (xhi - xlo) / w;
      const uy = (yhi - ylo) / h;
      if (ux > uy) {
        const c = (ylo + yhi) / 2;
        const half = (ux * h) / 2;
        ylo = c - half;
        yhi = c + half;
      } else {
        const c = (xlo + xhi) / 2;
        const half = (uy * w) / 2;
        xlo = c - half;
        xhi = c + half;
      }
    }
    const X = (x) => x0 + ((x - xlo) / (xhi - xlo)) * w;
    const Y = (y) => y0 + h - (((log ? Math.log10(Math.max(y, 1e-300)) : y) - ylo) / (yhi - ylo)) * h;
    const shaded = [];
    ctx.save();
    ctx.beginPath();
    ctx.rect(x0, y0, w, h);
    ctx.clip();
    for (const b of p.bands || []) {
      const a = X(num(b.x0, 0));
      const z = X(num(b.x1, 0));
      ctx.fillStyle = colour(b.color, "rgba(128,128,128,0.2)");
      ctx.fillRect(a, y0, z - a, h);
      shaded.push([text(b.label), a, z, y0, y0 + h]);
      if (b.label) {
        ctx.fillStyle = "rgba(49,51,63,0.75)";
        ctx.font = "11px sans-serif";
        ctx.textAlign = "left";
        ctx.textBaseline = "top";
        ctx.fillText(text(b.label), a + 3, y0 + 2);
      }
    }
    ctx.strokeStyle = "rgba(0,0,0,0.07)";
    ctx.lineWidth = 1;
    const xt = niceTicks(xlo, xhi, Math.max(2, Math.floor(w / 90)));
    const yt = log
      ? Array.from({ length: Math.floor(yhi) - Math.ceil(ylo) + 1 }, (_, i) => Math.pow(10, Math.ceil(ylo) + i))
      : niceTicks(ylo, yhi, Math.max(2, Math.floor(h / 45)));
    ctx.beginPath();
    for (const t of xt) {
      ctx.moveTo(X(t), y0);
      ctx.lineTo(X(t), y0 + h);
    }
    for (const t of yt) {
      ctx.moveTo(x0, Y(t));
      ctx.lineTo(x0 + w, Y(t));
    }
    ctx.stroke();
    for (const l of [...(p.hlines || []), ...(p.vlines || [])]) {
      ctx.strokeStyle = colour(l.color, "#000000");
      ctx.lineWidth = num(l.width, 1);
      ctx.setLineDash(Array.isArray(l.dash) ? l.dash : []);
      ctx.beginPath();
      if ("y" in l) {
        ctx.moveTo(x0, Y(num(l.y, 0)));
        ctx.lineTo(x0 + w, Y(num(l.y, 0)));
      } else {
        ctx.moveTo(X(num(l.x, 0)), y0);
        ctx.lineTo(X(num(l.x, 0)), y0 + h);
      }
      ctx.stroke();
    }
    const dots = [];
    for (const l of p.lines || []) {
      const xs = l.x || [];
      const ys = l.y || [];
      const n = Math.min(xs.length, ys.length);
      // the last point at or before the cursor
      let split = n - 1;
      if (cursor !== null) {
        split = -1;
        for (let i = 0; i < n; i++) {
          if (typeof xs[i] === "number" && xs[i] <= cursor + 1e-9) split = i;
          else if (typeof xs[i] === "number") break;
        }
      }
      ctx.strokeStyle = colour(l.color, "#1f77b4");
      ctx.lineWidth = num(l.width, 1.5);
      ctx.setLineDash(Array.isArray(l.dash) ? l.dash : []);
      const stroke = (from, to, alpha) => {
        if (to < from) return;
        ctx.globalAlpha = alpha;
        ctx.beginPath();
        let pen = false;
        for (let i = from; i <= to; i++) {
          const x = xs[i];
          const y = ys[i];
          if (typeof x !== "number" || typeof y !== "number" || (log && y <= 0)) {
            pen = false;
            continue;
          }
          if (pen) ctx.lineTo(X(x), Y(y));
          else ctx.moveTo(X(x), Y(y));
          pen = true;
        }
        ctx.stroke();
      };
      const base = num(l.opacity, 1);
      stroke(0, split, base);
      if (split < n - 1) stroke(Math.max(split, 0), n - 1, base * FUTURE_OPACITY);
      ctx.globalAlpha = 1;
      if (cursor !== null && split >= 0 && typeof ys[split] === "number" && !(log && ys[split] <= 0)) {
        dots.push([X(xs[split]), Y(ys[split]), colour(l.color, "#1f77b4")]);
      }
    }
    ctx.setLineDash([]);
    for (const m of p.markers || []) {
      const xs = m.x || [];
      const ys = m.y || [];
      const r = num(m.size, 4);
      for (let i = 0; i < Math.min(xs.length, ys.length); i++) {
        if (typeof xs[i] !== "number" || typeof ys[i] !== "number") continue;
        ctx.fillStyle = colour(m.color, "#000000");
        ctx.beginPath();
        ctx.arc(X(xs[i]), Y(ys[i]), r, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
    if (cursor !== null) {
      ctx.strokeStyle = CURSOR_COLOUR;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      ctx.moveTo(X(cursor), y0);
      ctx.lineTo(X(cursor), y0 + h);
      ctx.stroke();
      for (const [x, y, c] of dots) {
        ctx.fillStyle = "#fff";
        ctx.beginPath();
        ctx.arc(x, y, 4.5, 0, 2 * Math.PI);
        ctx.fill();
        ctx.fillStyle = c;
        ctx.beginPath();
        ctx.arc(x, y, 3, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
    ctx.restore();
    ctx.strokeStyle = "rgba(0,0,0,0.25)";
    ctx.lineWidth = 1;
    ctx.strokeRect(x0, y0, w, h);
    ctx.fillStyle = "rgba(49,51,63,0.85)";
    ctx.font = "11px sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    if (p.x && p.x.ticks !== false) {
      for (const t of xt) {
        const label = tickText(t);
        const half = ctx.measureText(label).width / 2;
        ctx.fillText(label, Math.min(Math.max(X(t), half + 1), cw - half - 1), y0 + h + 3);
      }
    }
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const t of yt) ctx.fillText(tickText(t), x0 - 4, Math.min(Math.max(Y(t), y0 + 6), y0 + h - 6));
    ctx.font = "12px sans-serif";
    if (p.x && p.x.title) {
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      ctx.fillText(text(p.x.title), x0 + w / 2, y0 + h + 17);
    }
    if (p.y && p.y.title) {
      ctx.save();
      ctx.translate(x0 - 46, y0 + h / 2);
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText(text(p.y.title), 0, 0);
      ctx.restore();
    }
    if (p.title) {
      ctx.textAlign = "left";
      ctx.textBaseline = "bottom";
      // a title longer than the panel is cut with an ellipsis (a phone is narrow)
      let title = text(p.title);
      while (title.length > 4 && ctx.measureText(title).width > cw - x0 - 4) title = `${title.slice(0, -2)}\u2026`;
      ctx.fillText(title, x0, y0 - 3);
    }
    return shaded;
  }

  // A chart spec (title, height, legend, panels) on `canvas` with a cursor at x = `cursor` (or null). The
  // shaded phases' pixel boxes go to canvas.dataset.bands (JSON) for the tests.
  function drawChart(canvas, spec, cursor, height) {
    const w = Math.max(220, widthOf(canvas, 600));
    const h = Math.max(140, Math.round(height || num(spec.height, 400)));
    const ctx = fitCanvas(canvas, w, h);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, w, h);
    const legend = Array.isArray(spec.legend) ? spec.legend : [];
    ctx.font = "12px sans-serif";
    const placed = [];
    let lx = MARGIN.l;
    let line = 0;
    for (const item of legend) {
      const name = text(item.name);
      const width = 40 + ctx.measureText(name).width;
      if (lx > MARGIN.l && lx + width > w - MARGIN.r) {
        lx = MARGIN.l;
        line += 1;
      }
      placed.push([item, name, lx, line]);
      lx += width;
    }
    const legendLines = legend.length ? line + 1 : 0;
    const top = MARGIN.t + (spec.title ? 18 : 0);
    const bottom = MARGIN.b + 20 * legendLines;
    const area = [MARGIN.l, top, w - MARGIN.l - MARGIN.r, h - top - bottom];
    if (spec.title) {
      ctx.fillStyle = "rgba(49,51,63,1)";
      ctx.font = "bold 14px sans-serif";
      ctx.textAlign = "left";
      ctx.textBaseline = "top";
      ctx.fillText(text(spec.title), 4, 4);
    }
    const bands = [];
    for (const p of spec.panels || []) {
      const t = num(p.top, 0);
      const b = num(p.bottom, 1);
      bands.push(...drawPanel(ctx, p, [area[0], area[1] + t * area[3], area[2], (b - t) * area[3]], w, cursor));
    }
    ctx.font = "12px sans-serif";
    ctx.textBaseline = "middle";
    ctx.textAlign = "left";
    for (const [item, name, x, row] of placed) {
      const y = h - 10 - 20 * (legendLines - 1 - row);
      ctx.strokeStyle = colour(item.color, "#000000");
      ctx.lineWidth = num(item.width, 2);
      ctx.setLineDash(Array.isArray(item.dash) ? item.dash : []);
      ctx.beginPath();
      ctx.moveTo(x, y);
      ctx.lineTo(x + 22, y);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = "rgba(49,51,63,0.9)";
      ctx.fillText(name, x + 27, y);
    }
    canvas.dataset.bands = JSON.stringify(bands.map((b) => [b[0], ...b.slice(1).map((v) => Math.round(v))]));
    canvas.dataset.cursor = cursor === null ? "" : String(cursor);
  }

  // ------------------------------------------------------------------------------------- 3-D scatter
  // Point sets {name, color, size, opacity, symbol, xyz (Float64Array [n * 3])} in the box `ranges` [[lo, hi]
  // x 3], seen from azimuth az and elevation el (radians), zoom; as views/components/scatter3d draws them.
  function drawScatter(canvas, sets, ranges, view, axes) {
    const w = Math.max(220, widthOf(canvas, 480));
    const h = Math.round(clamp(w * 0.9, 240, 440));
    const ctx = fitCanvas(canvas, w, h);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, w, h);
    const lo = ranges.map((r) => num(r[0], -1));
    const span = ranges.map((r, i) => Math.max(num(r[1], 1) - lo[i], 1e-9));
    const ca = Math.cos(view.az);
    const sa = Math.sin(view.az);
    const ce = Math.cos(view.el);
    const se = Math.sin(view.el);
    ctx.font = "12px sans-serif";
    const legend = [];
    let lx = 4;
    let ly = 12;
    for (const set of sets) {
      const width = 24 + ctx.measureText(set.name).width;
      if (lx > 4 && lx + width - 8 > w) {
        lx = 4;
        ly += 16;
      }
      legend.push([set, lx, ly]);
      lx += width;
    }
    const top = 18 + ly;
    const scale = (Math.min(w, h - top) / 2 / 1.75) * view.zoom;
    const cx = w / 2;
    const cy = top + (h - top) / 2;
    const project = (x, y, z) => [cx + scale * (-sa * x + ca * y), cy - scale * (-se * ca * x - se * sa * y + ce * z)];
    const unit = (value, axis) => ((value - lo[axis]) / span[axis]) * 2 - 1;
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
          const [px, py] = project(...p);
          const [qx, qy] = project(...q);
          ctx.moveTo(px, py);
          ctx.lineTo(qx, qy);
        }
      }
    }
    ctx.stroke();
    ctx.fillStyle = "rgba(49, 51, 63, 0.8)";
    ctx.font = "11px sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    const edges = [(t) => [t, -1, -1], (t) => [1, t, -1], (t) => [-1, -1, t]];
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
      ctx.fillText(axes[axis], x, y);
      ctx.font = "11px sans-serif";
    }
    for (const set of sets) {
      ctx.globalAlpha = set.opacity;
      ctx.fillStyle = set.color;
      const r = set.size;
      const n = set.xyz.length / 3;
      ctx.beginPath();
      for (let i = 0; i < n; i++) {
        const [x, y] = project(unit(set.xyz[3 * i], 0), unit(set.xyz[3 * i + 1], 1), unit(set.xyz[3 * i + 2], 2));
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
    canvas.dataset.view = `${view.az.toFixed(3)},${view.el.toFixed(3)},${view.zoom.toFixed(3)}`;
  }

  // drag turns the view, the wheel (or two fingers) zooms, a double click resets; onChange() after each
  function turnable(canvas, view, initial, onChange) {
    let drag = null;
    const fingers = new Map();
    let pinch = 0;
    const spread = () => {
      const [a, b] = [...fingers.values()];
      return Math.hypot(a[0] - b[0], a[1] - b[1]);
    };
    canvas.addEventListener("pointerdown", (e) => {
      if (e.pointerType === "touch") {
        fingers.set(e.pointerId, [e.clientX, e.clientY]);
        if (fingers.size === 2) {
          pinch = spread();
          drag = null;
          return;
        }
      }
      drag = { x: e.clientX, y: e.clientY };
      canvas.setPointerCapture(e.pointerId);
      e.preventDefault();
    });
    canvas.addEventListener("pointermove", (e) => {
      if (fingers.has(e.pointerId)) fingers.set(e.pointerId, [e.clientX, e.clientY]);
      if (pinch > 0 && fingers.size === 2) {
        const d = spread();
        view.zoom = clamp(view.zoom * (d / pinch), 0.4, 5);
        pinch = d;
        onChange();
        return;
      }
      if (!drag) return;
      view.az -= (e.clientX - drag.x) * 0.01;
      view.el = clamp(view.el + (e.clientY - drag.y) * 0.01, -1.55, 1.55);
      drag = { x: e.clientX, y: e.clientY };
      onChange();
    });
    const up = (e) => {
      fingers.delete(e.pointerId);
      if (fingers.size < 2) pinch = 0;
      drag = null;
    };
    canvas.addEventListener("pointerup", up);
    canvas.addEventListener("pointercancel", up);
    canvas.addEventListener(
      "wheel",
      (e) => {
        e.preventDefault();
        view.zoom = clamp(view.zoom * (e.deltaY < 0 ? 1.1 : 1 / 1.1), 0.4, 5);
        onChange();
      },
      { passive: false },
    );
    canvas.addEventListener("dblclick", () => {
      Object.assign(view, initial);
      onChange();
    });
  }

  // ------------------------------------------------------------------------------------------ the player
  // A scrubber over positions 0..last with Play/Pause, a step box and a speed; show(i) draws position i.
  // `rate`: positions per second at speed 1; stepOf(i): the gradient step of position i; at(step): the
  // position of a step typed in the box.
  function player(ui, opts) {
    const { el } = ui;
    const last = opts.last;
    let pos = clamp(opts.initial, 0, last);
    let shown = -1;
    let raf = 0;
    let t0 = 0;
    const speeds = [0.25, 1, 4];
    let speed = speeds.includes(opts.speed) ? opts.speed : 1;
    const play = el("button", { class: "primary", text: "Play", "aria-label": "Play the recording" });
    const range = el("input", {
      type: "range",
      min: "0",
      max: String(last),
      step: "1",
      value: String(pos),
      class: "scrubber",
      "aria-label": "the recorded step shown",
    });
    const box = el("input", {
      type: "number",
      min: "0",
      max: String(opts.stepOf(last)),
      value: String(opts.stepOf(pos)),
      "aria-label": "step",
    });
    const speedSelect = el("select", { "aria-label": "Play speed" });
    for (const s of speeds) speedSelect.append(el("option", { value: String(s), text: `\u00d7 ${s}` }));
    speedSelect.value = String(speed);
    const where = el("span", { class: "numbers" });
    const show = (i) => {
      i = clamp(Math.round(i), 0, last);
      if (i === shown) return;
      shown = i;
      range.value = String(i);
      if (document.activeElement !== box) box.value = String(opts.stepOf(i));
      where.textContent = opts.label(i);
      document.body.dataset.step = String(opts.stepOf(i));
      document.body.dataset.position = String(i);
      opts.show(i);
    };
    const stop = () => {
      cancelAnimationFrame(raf);
      raf = 0;
      play.textContent = "Play";
      play.setAttribute("aria-label", "Play the recording");
      document.body.dataset.playing = "0";
    };
    const tick = (now) => {
      const dt = Math.min((now - t0) / 1000, 0.25);
      t0 = now;
      pos = Math.min(pos + dt * opts.rate * speed, last);
      show(Math.floor(pos));
      if (pos >= last) return stop();
      raf = requestAnimationFrame(tick);
    };
    play.addEventListener("click", () => {
      if (raf) return stop();
      if (shown >= last) pos = 0;
      else pos = shown;
      play.textContent = "Pause";
      play.setAttribute("aria-label", "Pause the recording");
      document.body.dataset.playing = "1";
      t0 = performance.now();
      raf = requestAnimationFrame(tick);
    });
    range.addEventListener("input", () => {
      stop();
      pos = Number(range.value);
      show(pos);
    });
    box.addEventListener("change", () => {
      stop();
      const step = Math.round(Number(box.value));
      pos = Number.isFinite(step) ? opts.at(step) : 0;
      show(pos);
      box.value = String(opts.stepOf(shown));
    });
    speedSelect.addEventListener("change", () => {
      speed = Number(speedSelect.value);
      ui.writeHash({ speed });
    });
    const bar = el(
      "div",
      { class: "player" },
      el(
        "div",
        { class: "controls" },
        // the label stays in view with the player (it sticks to the top of the screen)
        el("span", { class: "badge rec", text: "Recording", title: "a run recorded with the app's code, replayed" }),
        play,
        el("label", { text: "Step " }, box),
        el("label", { text: "Speed " }, speedSelect),
        where,
      ),
      range,
    );
    return {
      bar,
      start: () => {
        show(pos);
        document.body.dataset.playing = "0";
      },
      redraw: () => opts.show(shown),
      position: () => shown,
    };
  }

  function recordingNote(ui, what) {
    return ui.el(
      "p",
      { class: "recording" },
      ui.el("span", { class: "badge rec", text: "Recording" }),
      ui.el("span", { text: ` ${what}` }),
    );
  }

  // what the page shows, folded under one line (at the lecture scales the pictures then sit on the first screen)
  function about(ui, what) {
    return ui.el(
      "details",
      { class: "about" },
      ui.el("summary", { text: "What this page shows" }),
      ui.el("p", { class: "lead", text: what }),
    );
  }

  // --------------------------------------------------------------------------- 2 x 2 symmetric matrices
  // points on the n-sigma contour of N(mean, cov) (as explorer_core.figures.common.ellipse_points)
  function ellipse(mean, cov, nSigma, nPoints) {
    const [a, b, c] = [cov[0], cov[1], cov[3]];
    const tr = (a + c) / 2;
    const det = Math.sqrt(((a - c) / 2) ** 2 + b * b);
    const l1 = Math.max(tr + det, 0);
    const l2 = Math.max(tr - det, 0);
    const th = 0.5 * Math.atan2(2 * b, a - c);
    const xs = [];
    const ys = [];
    for (let k = 0; k < nPoints; k++) {
      const t = (2 * Math.PI * k) / (nPoints - 1);
      const ex = nSigma * Math.sqrt(l1) * Math.cos(t);
      const ey = nSigma * Math.sqrt(l2) * Math.sin(t);
      xs.push(mean[0] + ex * Math.cos(th) - ey * Math.sin(th));
      ys.push(mean[1] + ex * Math.sin(th) + ey * Math.cos(th));
    }
    return [xs, ys];
  }

  // ---------------------------------------------------------------------------------- factor analysis
  // What a phase did, in the app's words (explorer_core/explore/fa.py: trend, change_words, relation_words,
  // describe_phase_change): a change within TOLERANCE nats per point reads as none.
  const TOLERANCE = 1e-4;
  const PHASE_NAMES = { e_step: "E-step", m_step: "M-step", joint: "joint AEVB" };
  const PHASE_PARAMETERS = {
    e_step: "\u03c6 trained, \u03b8 frozen",
    m_step: "\u03b8 trained, \u03c6 frozen",
    joint: "\u03c6 and \u03b8 trained together",
  };
  const GAP_MEANING = {
    e_step: [
      "With \u03b8 held still, q(z|x) moved towards the exact posterior p(z|x): the bound tightened",
      "With \u03b8 held still, q(z|x) ended as far from the exact posterior p(z|x) as it started",
      "With \u03b8 held still, q(z|x) moved away from the exact posterior p(z|x): the bound loosened",
    ],
    m_step: [
      "With q(z|x) held still, \u03b8 moved the exact posterior p(z|x) towards it: the bound tightened",
      "With q(z|x) held still, the exact posterior p(z|x) ended as far from it as it started",
      "With q(z|x) held still, \u03b8 moved the exact posterior p(z|x) away from it: the bound loosened",
    ],
    joint: [
      "q(z|x) and p(z|x) both moved and ended closer together: the bound tightened",
      "q(z|x) and p(z|x) both moved and ended as far apart as they started",
      "q(z|x) and p(z|x) both moved and ended further apart: the bound loosened",
    ],
  };
  function trend(delta) {
    return delta > TOLERANCE ? 1 : delta < -TOLERANCE ? -1 : 0;
  }
  function changeWords(before, after) {
    const delta = after - before;
    const d = trend(delta);
    if (d === 0) return `stayed at ${fixed(after, 4)} (to within 0.0001)`;
    return `${d > 0 ? "rose" : "fell"} by ${fixed(Math.abs(delta), 4)} (${fixed(before, 4)} \u2192 ${fixed(after, 4)})`;
  }
  function relationWords(value, reference) {
    const delta = value - reference;
    const d = trend(delta);
    if (d === 0) return "level with";
    return `${fixed(Math.abs(delta), 4)} ${d > 0 ? "above" : "below"}`;
  }
  // the phase run that holds step s (1-based), cut at s: [phase, first, s]; null at step 0
  function phaseAt(segments, s) {
    for (const [phase, first, last] of segments) if (s >= first && s <= last) return [phase, first, s];
    return null;
  }

  function faPage(d, entry, ui) {
    const { el, writeHash, state, main } = ui;
    const N = d.steps;
    const elbo = typed(d.elbo, Float64Array);
    const evidence = typed(d.evidence, Float64Array);
    const gap = typed(d.gap, Float64Array);
    const P = typed(d.params, Float32Array);
    const xTest = typed(d.x_test, Float32Array);
    const nz = typed(d.noise_z, Float32Array);
    const ne = typed(d.noise_eps, Float32Array);
    const nTest = d.n_test;
    const testXyz = Float64Array.from(xTest);
    const initialView = { az: -0.785, el: 0.37, zoom: 1 };
    const view = {
      az: ui.num("az", initialView.az, -1000, 1000),
      el: ui.num("el", initialView.el, -1.55, 1.55),
      zoom: ui.num("zoom", initialView.zoom, 0.4, 5),
    };
    let point = ui.int("point", 0, 0, nTest - 1);
    const s = d.settings;
    main.append(
      el("h1", { text: "Factor analysis: E- and M-steps, a recorded run" }),
      recordingNote(
        ui,
        "This page replays a run recorded with the app's own code: training needs torch, which a browser does " +
          `not have, so nothing is trained here. Scrub through its ${N.toLocaleString("en")} steps or press Play.`,
      ),
      about(
        ui,
        "A 2-factor model of 3-D data, fitted with AEVB (tutorial section 5.2). An E-step updates only the " +
        "inference parameters \u03c6 = (V, \u03a3) of q(z|x) = N(Vx, \u03a3): the ELBO closes on the evidence, which " +
          "cannot move. An M-step updates only the generative parameters \u03b8 = (W, \u03c3): the ELBO rises, usually " +
          "lifting the evidence with it. Measured on the test points after every step; for this model the " +
          "evidence and the gap KL(q(z|x) \u2016 p(z|x)) are exact.",
      ),
    );
    const scatter = el("canvas", {
      class: "chart scatter",
      role: "img",
      "aria-label": "3-D scatter: test data and samples from the model at this step (drag to turn)",
    });
    const curves = el("canvas", { class: "chart curves", role: "img", "aria-label": "the ELBO against the exact evidence, phases shaded" });
    const ellipses = el("canvas", { class: "chart ellipses", role: "img", "aria-label": "q(z|x) against the exact posterior p(z|x)" });
    const reading = el("div", { class: "reading" });
    const pointInput = el("input", { type: "number", min: "0", max: String(nTest - 1), value: String(point), "aria-label": "test point" });
    const sets = [
      { name: "test data", color: DATA_COLOUR, size: 2, opacity: 0.55, symbol: "circle", xyz: testXyz },
      { name: "model samples", color: MODEL_COLOUR, size: 2, opacity: 0.55, symbol: "circle", xyz: new Float64Array(3 * nTest) },
      { name: "chosen test point", color: "#000000", size: 7, opacity: 1, symbol: "diamond", xyz: new Float64Array(3) },
    ];
    const rowOf = (i) => P.subarray(18 * i, 18 * i + 18);
    function samplesAt(i) {
      const p = rowOf(i);
      const xyz = sets[1].xyz;
      for (let k = 0; k < nTest; k++) {
        const z0 = nz[2 * k];
        const z1 = nz[2 * k + 1];
        for (let r = 0; r < 3; r++) xyz[3 * k + r] = p[2 * r] * z0 + p[2 * r + 1] * z1 + p[6 + r] * ne[3 * k + r];
      }
    }
    function posteriors(i, x) {
      const p = rowOf(i);
      const q = {
        mean: [p[9] * x[0] + p[10] * x[1] + p[11] * x[2], p[12] * x[0] + p[13] * x[1] + p[14] * x[2]],
        cov: [p[15] * p[15], p[15] * p[16], p[15] * p[16], p[16] * p[16] + p[17] * p[17]],
      };
      // p(z|x) = N(S W^T Phi^-1 x, S), S = (I + W^T Phi^-1 W)^-1 (explorer_core/models/factor_analysis.py)
      const A = [0, 1, 2].map((r) => [p[2 * r] / (p[6 + r] * p[6 + r]), p[2 * r + 1] / (p[6 + r] * p[6 + r])]);
      let a = 1;
      let b = 0;
      let c = 1;
      for (let r = 0; r < 3; r++) {
        a += p[2 * r] * A[r][0];
        b += p[2 * r] * A[r][1];
        c += p[2 * r + 1] * A[r][1];
      }
      const det = a * c - b * b;
      const S = [c / det, -b / det, -b / det, a / det];
      const u = [0, 0];
      for (let r = 0; r < 3; r++) {
        u[0] += A[r][0] * x[r];
        u[1] += A[r][1] * x[r];
      }
      const exact = { mean: [S[0] * u[0] + S[1] * u[1], S[2] * u[0] + S[3] * u[1]], cov: S };
      return { q, exact };
    }
    function ellipseSpec(i) {
      const x = [xTest[3 * point], xTest[3 * point + 1], xTest[3 * point + 2]];
      const { q, exact } = posteriors(i, x);
      const lines = [];
      const markers = [];
      let lo = [Infinity, Infinity];
      let hi = [-Infinity, -Infinity];
      for (const [g, c, dash] of [
        [exact, EXACT_COLOUR, []],
        [q, Q_COLOUR, [7, 4]],
      ]) {
        for (const n of [1, 2]) {
          const [xs, ys] = ellipse(g.mean, g.cov, n, 72);
          xs.forEach((v, k) => {
            lo = [Math.min(lo[0], v), Math.min(lo[1], ys[k])];
            hi = [Math.max(hi[0], v), Math.max(hi[1], ys[k])];
          });
          lines.push({ x: xs, y: ys, color: c, dash, width: n === 1 ? 2.5 : 1.2 });
        }
        markers.push({ x: [g.mean[0]], y: [g.mean[1]], color: c, size: 4 });
      }
      const pad = 0.08 * Math.max(hi[0] - lo[0], hi[1] - lo[1], 1e-3);
      return {
        spec: {
          title: "",
          height: 360,
          legend: [
            { name: "exact posterior p(z|x)", color: EXACT_COLOUR, width: 2.5 },
            { name: "amortized posterior q(z|x)", color: Q_COLOUR, dash: [7, 4], width: 2.5 },
          ],
          panels: [
            {
              top: 0,
              bottom: 1,
              equal: true,
              title: `test point ${point}: x = (${x.map((v) => fixed(v, 2)).join(", ")})`,
              x: { range: [lo[0] - pad, hi[0] + pad], title: "z1" },
              y: { range: [lo[1] - pad, hi[1] + pad], title: "z2" },
              lines,
              markers,
            },
          ],
        },
        q,
        exact,
      };
    }
    function readingAt(i) {
      const phase = phaseAt(d.segments, i);
      const parts = [];
      if (!phase) {
        parts.push("No step yet: \u03b8 and \u03c6 are random.");
      } else {
        const [name, first, last] = phase;
        const steps = last - first + 1;
        const ends = [first - 1, last];
        const ev = ends.map((k) => evidence[k]);
        const gp = ends.map((k) => gap[k]);
        const el2 = ends.map((k, j) => ev[j] - gp[j]);
        const span = steps === 1 ? `step ${first}` : `steps ${first}\u2013${last}`;
        parts.push(
          `Last phase: ${PHASE_NAMES[name]} \u00d7 ${steps} (${span}; ${PHASE_PARAMETERS[name]}). Over it, in nats per ` +
            `point, the exact ELBO ${changeWords(...el2)}, the evidence log p(x) ${changeWords(...ev)} and the gap ` +
            `${changeWords(...gp)}. ${GAP_MEANING[name][trend(gp[1] - gp[0]) + 1]}.`,
        );
      }
      const exactElbo = evidence[i] - gap[i];
      parts.push(
        `Exact ELBO = evidence \u2212 gap = ${fixed(evidence[i], 4)} \u2212 ${fixed(gap[i], 4)} = ${fixed(exactElbo, 4)}; ` +
          `the AEVB estimate with K = ${s.n_elbo_samples} reparameterised sample(s) per point reads ${fixed(elbo[i], 4)}.`,
        `The evidence is ${relationWords(evidence[i], d.mle_evidence)} the maximum-likelihood fit (closed-form EM), ` +
          `and ${relationWords(evidence[i], d.true_evidence)} the model that generated the data.`,
      );
      return parts;
    }
    function show(i) {
      samplesAt(i);
      const x = xTest.subarray(3 * point, 3 * point + 3);
      sets[2].xyz = Float64Array.from(x);
      drawScatter(scatter, sets, d.ranges, view, ["x1", "x2", "x3"]);
      scatter.dataset.step = String(i);
      drawChart(curves, d.chart, i, ui.narrow() ? 380 : 440);
      const e = ellipseSpec(i);
      drawChart(ellipses, e.spec, null, 340);
      ellipses.dataset.q = [...e.q.mean, ...e.q.cov].map((v) => v.toFixed(5)).join(",");
      ellipses.dataset.p = [...e.exact.mean, ...e.exact.cov].map((v) => v.toFixed(5)).join(",");
      const [first, ...rest] = readingAt(i);
      reading.replaceChildren(el("p", { text: first }), el("ul", {}, ...rest.map((t) => el("li", { text: t }))));
      writeHash({ step: i });
      ui.pictureDrawn();
    }
    const p = player(ui, {
      last: N,
      initial: ui.int("step", N, 0, N),
      speed: ui.num("speed", 1),
      rate: 200,
      stepOf: (i) => i,
      at: (step) => clamp(step, 0, N),
      label: (i) => {
        const ph = phaseAt(d.segments, i);
        return ph ? `of ${N.toLocaleString("en")} \u00b7 ${PHASE_NAMES[ph[0]]} (${PHASE_PARAMETERS[ph[0]]})` : `of ${N.toLocaleString("en")} \u00b7 the initial model`;
      },
      show,
    });
    turnable(scatter, view, initialView, () => {
      drawScatter(scatter, sets, d.ranges, view, ["x1", "x2", "x3"]);
      writeHash({ az: view.az.toFixed(3), el: view.el.toFixed(3), zoom: view.zoom.toFixed(3) });
    });
    pointInput.addEventListener("change", () => {
      point = clamp(Math.round(Number(pointInput.value) || 0), 0, nTest - 1);
      pointInput.value = String(point);
      writeHash({ point });
      p.redraw();
    });
    main.append(
      p.bar,
      el(
        "div",
        { class: "row" },
        el(
          "div",
          { class: "col" },
          el("div", { class: "caption", text: "Test data vs. samples from the model at this step" }),
          scatter,
          el("p", { class: "hint", text: "Drag to turn, wheel or two fingers to zoom, double-click to reset the view." }),
        ),
        el("div", { class: "col" }, curves),
      ),
      el(
        "div",
        { class: "row" },
        el(
          "div",
          { class: "col" },
          el("div", { class: "controls" }, el("label", { text: "Test point " }, pointInput)),
          ellipses,
          el("p", {
            class: "caption",
            text: "q(z|x) (red, dashed) against the exact posterior p(z|x) (green) for the chosen test point, 1 and 2 \u03c3; the two coincide when the gap is zero.",
          }),
        ),
        el("div", { class: "col" }, el("h2", { text: "What the numbers say" }), reading),
      ),
      el("p", {
        class: "caption",
        text:
          `Recorded: ${s.data}; posterior ${s.posterior} covariance, Adam ${s.lr}, batch ${s.batch_size}, seed ${s.seed}, ` +
          `the tutorial's experiment 2 (${s.schedule.map(([ph, n]) => `${PHASE_NAMES[ph]} \u00d7 ${n}`).join(", ")}). ` +
          "Shaded grey: E-phases; amber: M-phases. The curves after the step shown are drawn faintly.",
      }),
    );
    p.start();
    window.addEventListener("resize", () => p.redraw());
    document.body.dataset.ready = "1";
  }

  // -------------------------------------------------------------------------------------- Watch it learn
  const WATCH_DOING = {
    init: "No step yet: \u03b8 and \u03c6 are random, and the map is a blob at the origin.",
    e_step:
      "Last phase: E-step. \u03b8 is frozen, so log p(x) cannot move and whatever the ELBO gains the true gap " +
      "loses; \u03c6 moves q(z|x). The IWAE bound, a lower bound on log p(x), can move too: its proposal is q(z|x).",
    m_step:
      "Last phase: M-step. \u03c6 is frozen and \u03b8 is trained on the ELBO, so log p(x) moves, and with it the " +
      "IWAE bound (a lower bound on log p(x), not log p(x) itself); the true posterior moves against the fixed " +
      "q(z|x), so the gap can narrow or widen: the gap estimate's curve shows which.",
    joint:
      "Last phase: joint AEVB. \u03c6 and \u03b8 are trained on the ELBO at once: q(z|x), p(z|x) and log p(x) all move.",
  };

  function watchPage(d, entry, ui) {
    const { el, writeHash, main, paint, pixelCanvas, DIGIT_COLOURS } = ui;
    const F = d.frames;
    const steps = typed(d.step, Int32Array);
    const curves = {};
    for (const k of ["elbo", "iwae", "gap", "reconstruction", "kl"]) curves[k] = typed(d[k], Float64Array);
    const klDims = typed(d.kl_per_dim, Float64Array);
    const L = d.latent_dim;
    const nMap = d.map.n;
    const labels = typed(d.map.labels, Uint8Array);
    const coords = typed(d.map.coords, Int16Array);
    const scale = typed(d.map.scale, Float32Array);
    const half = typed(d.map.half, Float32Array);
    const key = d.keyframes;
    const G = key.grid;
    const manifold = typed(key.manifold, Uint8Array);
    const recon = typed(key.recon, Uint8Array);
    const reconImages = typed(d.recon_images, Uint8Array);
    const nRecon = reconImages.length / 784;
    const s = d.settings;
    main.append(
      el("h1", { text: "Watch it learn: a VAE trained, a recorded run" }),
      recordingNote(
        ui,
        "This page replays a run recorded with the app's own code: training needs torch, which a browser does " +
          `not have, so nothing is trained here. Scrub through its ${F} evaluations (${d.steps.toLocaleString("en")} ` +
          "steps) or press Play.",
      ),
      about(
        ui,
        `A VAE with L = ${L} (hidden ${s.hidden.join("-")}, Bernoulli pixels) trained on the first ` +
          `${s.n_train.toLocaleString("en")} MNIST training images, phase by phase: AEVB is approximate EM. An E-step ` +
          "trains only \u03c6 (the encoder), an M-step only \u03b8 (the decoder), a joint step both. log p(x) is not " +
          `tractable for a deep model, so the curves show in its place the IWAE bound with k = ${d.k}, and IWAE \u2212 ` +
          "ELBO as an estimate of the gap KL(q(z|x) \u2016 p(z|x)).",
      ),
    );
    const mapCanvas = el("canvas", { class: "chart map-replay", role: "img", "aria-label": "the latent map at this step" });
    const bounds = el("canvas", { class: "chart curves", role: "img", "aria-label": "the ELBO and the IWAE bound, phases shaded" });
    const terms = el("canvas", { class: "chart terms", role: "img", "aria-label": "the reconstruction term and the KL" });
    const manifoldCanvas = pixelCanvas("strip", "the manifold at the nearest recorded step");
    const reconCanvas = pixelCanvas("strip", "validation images and their reconstructions");
    const manifoldCaption = el("p", { class: "caption" });
    const reconCaption = el("p", { class: "caption" });
    const mapCaption = el("p", { class: "caption" });
    const reading = el("div", { class: "reading" });
    let keyShown = -1;

    function drawMap(i) {
      const w = Math.max(220, widthOf(mapCanvas, 480));
      const side = Math.min(w, 480);
      const ctx = fitCanvas(mapCanvas, side, side);
      const hv = half[i];
      const pad = 26;
      const size = side - pad - 6;
      const toPx = (u, v) => [pad + ((u + hv) / (2 * hv)) * size, 6 + (1 - (v + hv) / (2 * hv)) * size];
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, side, side);
      ctx.strokeStyle = "rgba(0,0,0,0.25)";
      ctx.strokeRect(pad, 6, size, size);
      ctx.font = "11px sans-serif";
      ctx.fillStyle = "rgba(49,51,63,0.85)";
      ctx.strokeStyle = "rgba(0,0,0,0.07)";
      ctx.beginPath();
      const ticks = niceTicks(-hv, hv, 4);
      for (const t of ticks) {
        const [x] = toPx(t, 0);
        const [, y] = toPx(0, t);
        ctx.moveTo(x, 6);
        ctx.lineTo(x, 6 + size);
        ctx.moveTo(pad, y);
        ctx.lineTo(pad + size, y);
      }
      ctx.stroke();
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      for (const t of ticks) ctx.fillText(tickText(t), toPx(t, 0)[0], 6 + size + 2);
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      for (const t of ticks) ctx.fillText(tickText(t), pad - 3, toPx(0, t)[1]);
      ctx.save();
      ctx.beginPath();
      ctx.rect(pad, 6, size, size);
      ctx.clip();
      const c = coords.subarray(i * nMap * 2, (i + 1) * nMap * 2);
      const k = scale[i];
      ctx.globalAlpha = 0.6;
      for (let j = 0; j < nMap; j++) {
        const [x, y] = toPx(c[2 * j] * k, c[2 * j + 1] * k);
        ctx.fillStyle = DIGIT_COLOURS[labels[j]] || "#888";
        ctx.fillRect(x - 1.5, y - 1.5, 3, 3);
      }
      ctx.globalAlpha = 1;
      ctx.restore();
      ctx.textBaseline = "middle";
      ctx.textAlign = "left";
      ctx.font = "12px sans-serif";
      DIGIT_COLOURS.forEach((col, dgt) => {
        ctx.fillStyle = col;
        ctx.fillRect(pad + 6 + dgt * 24, 12, 9, 9);
        ctx.fillStyle = "#555a66";
        ctx.fillText(String(dgt), pad + 17 + dgt * 24, 17);
      });
      ctx.textAlign = "right";
      ctx.textBaseline = "bottom";
      ctx.fillText("z\u2081", pad + size - 4, 6 + size - 3);
      ctx.textAlign = "left";
      ctx.textBaseline = "top";
      ctx.fillText("z\u2082", pad + 4, 28);
      mapCanvas.dataset.step = String(steps[i]);
    }

    function keyframeAt(i) {
      let best = 0;
      key.frame.forEach((f, j) => {
        if (f <= i) best = j;
      });
      return best;
    }

    function show(i) {
      drawMap(i);
      drawChart(bounds, d.charts.bounds, steps[i], ui.narrow() ? 360 : 420);
      drawChart(terms, d.charts.terms, steps[i], 300);
      const kf = keyframeAt(i);
      if (kf !== keyShown) {
        keyShown = kf;
        const images = [];
        for (let j = 0; j < G * G; j++) images.push(manifold.subarray((kf * G * G + j) * 784, (kf * G * G + j + 1) * 784));
        paint(manifoldCanvas, images, G, { pad: 0, bytes: true });
        const pics = [];
        for (let j = 0; j < nRecon; j++) pics.push(reconImages.subarray(j * 784, (j + 1) * 784));
        for (let j = 0; j < nRecon; j++) pics.push(recon.subarray((kf * nRecon + j) * 784, (kf * nRecon + j + 1) * 784));
        paint(reconCanvas, pics, nRecon, { pad: 2, bytes: true });
        const at = steps[key.frame[kf]];
        const hv = half[key.frame[kf]];
        manifoldCaption.textContent =
          `Decodings E[x|z] on a ${G} \u00d7 ${G} grid of the map region (\u2212${fixed(hv, 1)} to ${fixed(hv, 1)} on both axes) at step ` +
          `${at.toLocaleString("en")}: the latest recorded picture at or before the step shown (recorded at steps ${key.step.join(", ")}).`;
        reconCaption.textContent = `Validation images (top) and their reconstructions E[x|z = \u03bc(x)] (bottom) at step ${at.toLocaleString("en")}.`;
        manifoldCanvas.dataset.step = String(at);
      }
      const phase = d.phase[i];
      const kl = Array.from(klDims.subarray(i * L, (i + 1) * L));
      mapCaption.textContent =
        `Posterior means of ${nMap.toLocaleString("en")} validation images, coloured by digit, on the latent space itself, at step ` +
        `${steps[i].toLocaleString("en")}. The axes follow the map's spread (the app's rule: they grow at once and shrink slowly).`;
      reading.replaceChildren(
        el("p", { text: WATCH_DOING[phase] || "" }),
        el(
          "ul",
          {},
          el("li", {
            text:
              `ELBO = reconstruction \u2212 KL = ${fixed(curves.reconstruction[i], 1)} \u2212 ${fixed(curves.kl[i], 2)} = ` +
              `${fixed(curves.elbo[i], 1)} nats per image; IWAE bound (k = ${d.k}) ${fixed(curves.iwae[i], 1)}; gap estimate ` +
              `${fixed(curves.gap[i], 2)} nats.`,
          }),
          el("li", {
            text:
              `${d.active_units[i]} of ${L} latent dimensions are active (KL per dimension ${kl.map((v) => fixed(v, 2)).join(", ")} nats): ` +
              "their posterior mean varies across the validation images (variance above 0.01).",
          }),
          el("li", { text: "Shaded grey: E-phases; amber: M-phases; joint steps are not shaded." }),
        ),
      );
      writeHash({ step: steps[i] });
      ui.pictureDrawn();
    }
    const atStep = (step) => {
      let best = 0;
      for (let i = 0; i < F; i++) if (steps[i] <= step) best = i;
      return best;
    };
    const p = player(ui, {
      last: F - 1,
      initial: atStep(ui.int("step", steps[F - 1], 0, steps[F - 1])),
      speed: ui.num("speed", 1),
      rate: 8,
      stepOf: (i) => steps[i],
      at: atStep,
      label: (i) => {
        const ph = d.phase[i];
        return `of ${d.steps.toLocaleString("en")} \u00b7 ${ph === "init" ? "the initial model" : PHASE_NAMES[ph]} \u00b7 evaluation ${i + 1} of ${F}`;
      },
      show,
    });
    main.append(
      p.bar,
      el(
        "div",
        { class: "row" },
        el("div", { class: "col" }, mapCanvas, mapCaption),
        el("div", { class: "col" }, bounds),
      ),
      el(
        "div",
        { class: "row" },
        el("div", { class: "col" }, el("div", { class: "pictures" }, manifoldCanvas), manifoldCaption),
        el("div", { class: "col" }, el("div", { class: "pictures" }, reconCanvas), reconCaption, terms),
      ),
      el("h2", { text: "What the numbers say" }),
      reading,
      el("p", {
        class: "caption",
        text:
          `Recorded: batch ${s.batch_size}, Adam ${s.lr_inference} for \u03c6 and ${s.lr_generative} for \u03b8, seed ${s.seed}; ` +
          `${s.schedule.map(([ph, n]) => `${PHASE_NAMES[ph]} \u00d7 ${n}`).join(", ")}; evaluated on ${s.n_eval} fixed validation ` +
          "images with fixed noise (the curves move only when the parameters do). The curves after the step shown are drawn faintly.",
      }),
    );
    p.start();
    window.addEventListener("resize", () => p.redraw());
    document.body.dataset.ready = "1";
  }

  root.AEVBReplay = { pages: { fa_replay: faPage, watch_replay: watchPage }, drawChart, ellipse };
})(typeof window !== "undefined" ? window : globalThis);
