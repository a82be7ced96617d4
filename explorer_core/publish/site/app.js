// AEVB Explorer, published page: the views of each kind of model, computed here with nets.js.
//
// window.AEVB_SITE (models.js) lists the models; a model's data file (models/<name>.js) is added as a
// <script> when it is shown. The state of a view lives in the address's hash (#model=...&u=...), so a link
// reopens it. Text is only ever set with textContent: nothing read from the hash becomes HTML.
(function () {
  "use strict";
  const NETS = window.AEVBNets;
  const SITE = window.AEVB_SITE || { models: [] };
  const DIGIT_COLOURS = [
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
  ];
  const Q_COLOUR = "#d62728";
  const SIDE = 28;
  const MAP_PX = 480;
  const main = document.getElementById("main");
  // counters for tests and benchmarks (document.body.dataset)
  const stats = { pictures: 0 };

  // ------------------------------------------------------------------------------------------ helpers
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k === "style") node.style.cssText = v; // CSSOM: the page's CSP allows no style attribute
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) if (c) node.append(c);
    return node;
  }
  function clamp(x, lo, hi) {
    return Math.min(Math.max(x, lo), hi);
  }
  function fmt(x, d = 2) {
    const s = Number(x).toFixed(d);
    return s.startsWith("-") ? `\u2212${s.slice(1)}` : s;
  }

  // the hash: #model=NAME&key=value...
  function readHash() {
    const out = {};
    const text = location.hash.replace(/^#/, "");
    for (const part of text.split("&")) {
      if (!part) continue;
      const i = part.indexOf("=");
      const k = decodeURIComponent(i < 0 ? part : part.slice(0, i));
      out[k] = i < 0 ? "" : decodeURIComponent(part.slice(i + 1));
    }
    return out;
  }
  let hashTimer = null;
  let state = readHash();
  // at most one write per 150 ms, of the latest state (a drag or Play changes it at every frame)
  function writeHash(changes) {
    Object.assign(state, changes);
    if (hashTimer) return;
    hashTimer = setTimeout(() => {
      hashTimer = null;
      const text = Object.entries(state)
        .filter(([, v]) => v !== undefined && v !== null && v !== "")
        .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
        .join("&");
      history.replaceState(null, "", `#${text}`);
    }, 150);
  }
  function num(key, fallback, lo = -Infinity, hi = Infinity) {
    const v = Number(state[key]);
    return Number.isFinite(v) && state[key] !== "" && state[key] !== undefined ? clamp(v, lo, hi) : fallback;
  }
  function int(key, fallback, lo, hi) {
    return Math.round(num(key, fallback, lo, hi));
  }

  // images: values in [0, 1] (or 0..255 with `bytes`) drawn as grey pixels
  function paint(canvas, images, cols, opts = {}) {
    const n = images.length;
    const pad = opts.pad ?? 1;
    const rows = Math.ceil(n / cols);
    const w = cols * (SIDE + pad) - pad;
    const h = rows * (SIDE + pad) - pad;
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(w, h);
    img.data.fill(opts.bytes ? 128 : 128);
    images.forEach((px, k) => {
      const x0 = (k % cols) * (SIDE + pad);
      const y0 = Math.floor(k / cols) * (SIDE + pad);
      for (let y = 0; y < SIDE; y++) {
        for (let x = 0; x < SIDE; x++) {
          const v = px[y * SIDE + x];
          const g = opts.bytes ? v : Math.round(clamp(v, 0, 1) * 255);
          const o = 4 * ((y0 + y) * w + x0 + x);
          img.data[o] = img.data[o + 1] = img.data[o + 2] = g;
        }
      }
    });
    for (let i = 3; i < img.data.length; i += 4) img.data[i] = 255;
    ctx.putImageData(img, 0, 0);
    stats.pictures += 1;
    document.body.dataset.pictures = String(stats.pictures);
    // since the navigation began: the benchmark's "first picture"
    if (stats.pictures === 1) document.body.dataset.firstPictureMs = performance.now().toFixed(1);
  }
  function pixelCanvas(cls, label) {
    return el("canvas", { class: `pixels ${cls || ""}`, role: "img", "aria-label": label || "an image" });
  }

  const MNIST = window.AEVB_MNIST
    ? { n: window.AEVB_MNIST.n, images: NETS.u8(window.AEVB_MNIST.images), labels: NETS.u8(window.AEVB_MNIST.labels) }
    : null;
  function testImage(i) {
    return MNIST.images.subarray(i * 784, (i + 1) * 784);
  }
  // uint8 pixels as the model's input: "dequantized" takes the middle of each pixel's interval ((x + 1/2)
  // / 256: the app draws the offset at random), "binarized" x >= 128
  function preprocess(bytes, kind) {
    const x = new Float64Array(784);
    for (let i = 0; i < 784; i++) {
      x[i] = kind === "dequantized" ? (bytes[i] + 0.5) / 256 : bytes[i] >= 128 ? 1 : 0;
    }
    return x;
  }

  // ------------------------------------------------------------------------------------- a drawing
  // A black canvas to draw a white digit on (mouse, pen or finger); `onDone(pixels)` after each stroke gets
  // the drawing as MNIST was made (explorer_core/explore/latent.canvas_to_mnist): the digit's box scaled to
  // 20 x 20, centred by its centre of mass in 28 x 28; uint8 [784], or null when the canvas is empty.
  function drawingPad(onDone) {
    const side = 240;
    const canvas = el("canvas", { class: "draw", width: side, height: side, "aria-label": "drawing canvas" });
    const ctx = canvas.getContext("2d");
    const clear = () => {
      ctx.fillStyle = "#000";
      ctx.fillRect(0, 0, side, side);
    };
    clear();
    let last = null;
    const at = (e) => {
      const r = canvas.getBoundingClientRect();
      return [((e.clientX - r.left) / r.width) * side, ((e.clientY - r.top) / r.height) * side];
    };
    canvas.addEventListener("pointerdown", (e) => {
      canvas.setPointerCapture(e.pointerId);
      last = at(e);
      e.preventDefault();
      stroke(last, last);
    });
    canvas.addEventListener("pointermove", (e) => {
      if (!last) return;
      const p = at(e);
      stroke(last, p);
      last = p;
    });
    const end = () => {
      if (!last) return;
      last = null;
      onDone(toMnist(canvas));
    };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    function stroke(a, b) {
      ctx.strokeStyle = "#fff";
      ctx.lineWidth = 18;
      ctx.lineCap = "round";
      ctx.lineJoin = "round";
      ctx.beginPath();
      ctx.moveTo(a[0], a[1]);
      ctx.lineTo(b[0], b[1]);
      ctx.stroke();
    }
    const button = el("button", {
      text: "Clear",
      onclick: () => {
        clear();
        onDone(null);
      },
    });
    return { canvas, button };
  }

  function toMnist(canvas) {
    const W = canvas.width;
    const H = canvas.height;
    const data = canvas.getContext("2d").getImageData(0, 0, W, H).data;
    let x0 = W;
    let y0 = H;
    let x1 = -1;
    let y1 = -1;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const o = 4 * (y * W + x);
        if ((data[o] + data[o + 1] + data[o + 2]) / 3 / 255 > 0.05) {
          x0 = Math.min(x0, x);
          x1 = Math.max(x1, x);
          y0 = Math.min(y0, y);
          y1 = Math.max(y1, y);
        }
      }
    }
    if (x1 < 0) return null;
    const w = x1 - x0 + 1;
    const h = y1 - y0 + 1;
    const scale = 20 / Math.max(w, h);
    const nw = Math.max(1, Math.round(w * scale));
    const nh = Math.max(1, Math.round(h * scale));
    const small = document.createElement("canvas");
    small.width = nw;
    small.height = nh;
    const sctx = small.getContext("2d");
    sctx.imageSmoothingEnabled = true;
    sctx.imageSmoothingQuality = "high";
    sctx.drawImage(canvas, x0, y0, w, h, 0, 0, nw, nh);
    const sd = sctx.getImageData(0, 0, nw, nh).data;
    const frame = new Float64Array(784);
    const top = (SIDE - nh) >> 1;
    const left = (SIDE - nw) >> 1;
    for (let y = 0; y < nh; y++) {
      for (let x = 0; x < nw; x++) {
        const o = 4 * (y * nw + x);
        frame[(top + y) * SIDE + left + x] = (sd[o] + sd[o + 1] + sd[o + 2]) / 3;
      }
    }
    let total = 0;
    let sy = 0;
    let sx = 0;
    for (let y = 0; y < SIDE; y++) {
      for (let x = 0; x < SIDE; x++) {
        const v = frame[y * SIDE + x];
        total += v;
        sy += y * v;
        sx += x * v;
      }
    }
    const out = new Uint8Array(784);
    const dy = total > 0 ? clamp(Math.round(SIDE / 2 - 0.5 - sy / total), -4, 4) : 0;
    const dx = total > 0 ? clamp(Math.round(SIDE / 2 - 0.5 - sx / total), -4, 4) : 0;
    for (let y = 0; y < SIDE; y++) {
      for (let x = 0; x < SIDE; x++) {
        const ty = (y + dy + SIDE) % SIDE;
        const tx = (x + dx + SIDE) % SIDE;
        out[ty * SIDE + tx] = clamp(Math.round(frame[y * SIDE + x]), 0, 255);
      }
    }
    return out;
  }

  // ------------------------------------------------------------------------------------- the map
  // The test set's posterior means on the plane, coloured by digit; a cursor (the pad's z) that follows a
  // drag, a tap or the arrow keys; overlays (the drawing's q(z|x) ellipse and samples, the interpolation).
  function latentMap(m, onMove) {
    const canvas = el("canvas", {
      class: "map",
      width: MAP_PX,
      height: MAP_PX,
      tabindex: "0",
      role: "application",
      "aria-label": "latent pad: drag, tap or use the arrow keys to move z",
    });
    const ctx = canvas.getContext("2d");
    const b = m.map.bounds;
    const toPx = (u, v) => [
      ((u - b[0][0]) / (b[0][1] - b[0][0])) * MAP_PX,
      (1 - (v - b[1][0]) / (b[1][1] - b[1][0])) * MAP_PX,
    ];
    const toPlane = (x, y) => [
      b[0][0] + (x / MAP_PX) * (b[0][1] - b[0][0]),
      b[1][0] + (1 - y / MAP_PX) * (b[1][1] - b[1][0]),
    ];
    // the points, drawn once
    const layer = document.createElement("canvas");
    layer.width = MAP_PX;
    layer.height = MAP_PX;
    {
      const g = layer.getContext("2d");
      g.fillStyle = "#fff";
      g.fillRect(0, 0, MAP_PX, MAP_PX);
      g.strokeStyle = "#e3e5ea";
      g.lineWidth = 1;
      const [ox, oy] = toPx(0, 0);
      g.beginPath();
      g.moveTo(ox, 0);
      g.lineTo(ox, MAP_PX);
      g.moveTo(0, oy);
      g.lineTo(MAP_PX, oy);
      g.stroke();
      g.globalAlpha = 0.6;
      for (let i = 0; i < m.map.n; i++) {
        const [x, y] = toPx(m.map.u[i], m.map.v[i]);
        g.fillStyle = DIGIT_COLOURS[m.map.labels[i]] || "#888";
        g.fillRect(x - 1.5, y - 1.5, 3, 3);
      }
      g.globalAlpha = 1;
      g.font = "12px sans-serif";
      g.textBaseline = "middle";
      DIGIT_COLOURS.forEach((c, i) => {
        g.fillStyle = c;
        g.fillRect(8 + i * 24, 10, 9, 9);
        g.fillStyle = "#555a66";
        g.fillText(String(i), 19 + i * 24, 15);
      });
      const pc = m.L > 2;
      const ex = m.map.explained;
      g.fillStyle = "#555a66";
      g.textAlign = "right";
      g.textBaseline = "bottom";
      g.fillText(pc ? `PC 1 (${Math.round(100 * ex[0])} %)` : "z\u2081", MAP_PX - 6, MAP_PX - 4);
      g.textAlign = "left";
      g.textBaseline = "top";
      g.fillText(pc ? `PC 2 (${Math.round(100 * ex[1])} %)` : "z\u2082", 8, 26);
    }
    const api = { canvas, cursor: [0, 0], overlays: { ellipse: null, samples: [], line: null } };
    let pending = null;
    let frame = 0;
    const draw = () => {
      ctx.drawImage(layer, 0, 0);
      const ov = api.overlays;
      if (ov.line) {
        ctx.save();
        ctx.setLineDash([5, 4]);
        ctx.strokeStyle = "#111";
        ctx.lineWidth = 2;
        ctx.beginPath();
        const [ax, ay] = toPx(...ov.line[0]);
        const [bx, by] = toPx(...ov.line[1]);
        ctx.moveTo(ax, ay);
        ctx.lineTo(bx, by);
        ctx.stroke();
        ctx.restore();
        for (const [p, t] of [
          [ov.line[0], "A"],
          [ov.line[1], "B"],
        ]) {
          const [x, y] = toPx(...p);
          ctx.fillStyle = "#111";
          ctx.beginPath();
          ctx.arc(x, y, 8, 0, 2 * Math.PI);
          ctx.fill();
          ctx.fillStyle = "#fff";
          ctx.font = "bold 10px sans-serif";
          ctx.textAlign = "center";
          ctx.textBaseline = "middle";
          ctx.fillText(t, x, y);
        }
      }
      if (ov.ellipse) {
        // the 2-sigma ellipse of q(z|x) on the plane (eigen-decomposition of its 2 x 2 covariance)
        const [mu, cov] = ov.ellipse;
        const [[a, bb], [, c]] = cov;
        const tr = (a + c) / 2;
        const det = Math.sqrt(((a - c) / 2) ** 2 + bb * bb);
        const l1 = tr + det;
        const l2 = Math.max(tr - det, 0);
        const th = 0.5 * Math.atan2(2 * bb, a - c);
        ctx.strokeStyle = Q_COLOUR;
        ctx.lineWidth = 2;
        ctx.beginPath();
        for (let k = 0; k <= 64; k++) {
          const t = (2 * Math.PI * k) / 64;
          const ex = 2 * Math.sqrt(l1) * Math.cos(t);
          const ey = 2 * Math.sqrt(l2) * Math.sin(t);
          const u = mu[0] + ex * Math.cos(th) - ey * Math.sin(th);
          const v = mu[1] + ex * Math.sin(th) + ey * Math.cos(th);
          const [x, y] = toPx(u, v);
          if (k === 0) ctx.moveTo(x, y);
          else ctx.lineTo(x, y);
        }
        ctx.stroke();
        for (const s of ov.samples) {
          const [x, y] = toPx(s[0], s[1]);
          ctx.beginPath();
          ctx.moveTo(x - 4, y - 4);
          ctx.lineTo(x + 4, y + 4);
          ctx.moveTo(x + 4, y - 4);
          ctx.lineTo(x - 4, y + 4);
          ctx.stroke();
        }
        const [mx, my] = toPx(mu[0], mu[1]);
        ctx.fillStyle = Q_COLOUR;
        ctx.beginPath();
        ctx.arc(mx, my, 4, 0, 2 * Math.PI);
        ctx.fill();
      }
      const [cx, cy] = toPx(...api.cursor);
      for (const [w, col, r] of [
        [5, "#fff", 12],
        [2.5, "#111", 11],
      ]) {
        ctx.strokeStyle = col;
        ctx.lineWidth = w;
        ctx.beginPath();
        ctx.moveTo(cx - r, cy);
        ctx.lineTo(cx + r, cy);
        ctx.moveTo(cx, cy - r);
        ctx.lineTo(cx, cy + r);
        ctx.stroke();
      }
      canvas.dataset.z = `${api.cursor[0].toFixed(4)},${api.cursor[1].toFixed(4)}`;
    };
    api.draw = draw;
    // latest wins: a move is drawn at the next frame; moves in between only replace the target
    api.moveTo = (uv) => {
      pending = [clamp(uv[0], b[0][0], b[0][1]), clamp(uv[1], b[1][0], b[1][1])];
      if (!frame) {
        frame = requestAnimationFrame(() => {
          frame = 0;
          if (!pending) return;
          const t0 = performance.now();
          api.cursor = pending;
          pending = null;
          onMove(api.cursor);
          draw();
          // for the benchmark: frames drawn and the time they took here (decoding and drawing)
          stats.padFrames = (stats.padFrames || 0) + 1;
          stats.padMs = (stats.padMs || 0) + performance.now() - t0;
          canvas.dataset.frames = String(stats.padFrames);
          canvas.dataset.frameMsTotal = stats.padMs.toFixed(2);
        });
      }
    };
    api.toPx = toPx;
    const at = (e) => {
      const r = canvas.getBoundingClientRect();
      return toPlane(((e.clientX - r.left) / r.width) * MAP_PX, ((e.clientY - r.top) / r.height) * MAP_PX);
    };
    let down = false;
    canvas.addEventListener("pointerdown", (e) => {
      down = true;
      canvas.focus();
      canvas.setPointerCapture(e.pointerId);
      api.moveTo(at(e));
      e.preventDefault();
    });
    canvas.addEventListener("pointermove", (e) => {
      if (down) api.moveTo(at(e));
    });
    const up = () => {
      down = false;
    };
    canvas.addEventListener("pointerup", up);
    canvas.addEventListener("pointercancel", up);
    canvas.addEventListener("keydown", (e) => {
      const step = ((b[0][1] - b[0][0]) / 60) * (e.shiftKey ? 5 : 1);
      const d = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] }[e.key];
      if (!d) return;
      e.preventDefault();
      const base = pending || api.cursor;
      api.moveTo([base[0] + d[0], base[1] + d[1]]);
    });
    return api;
  }

  // ---------------------------------------------------------------------------------- VAE and CVAE
  function latentPage(m, entry) {
    const d = m.data;
    const cond = m.conditional;
    const bounds = m.map.bounds;
    const cb = d.likelihood === "continuous_bernoulli";
    let view = cb && state.view === "mean" ? "mean" : "lambda";
    let label = int("label", 0, 0, 9);
    const viewName = () => (view === "mean" ? "E[x|z]" : "\u03bb(z)");

    main.append(
      el("h1", { text: `${cond ? "Conditional VAE" : "VAE"}: ${d.name}` }),
      el("p", {
        class: "lead",
        text:
          `Latent dimension L = ${m.L}; ${cb ? "Continuous Bernoulli" : "Bernoulli"} pixels; test ELBO ` +
          `${d.test_elbo === null ? "\u2013" : d.test_elbo.toFixed(1)} nats per image. ` +
          (m.L > 2
            ? "The map is the plane of the first two principal components of the test set's posterior means (the app's plane): z = centre + u e\u2081 + v e\u2082."
            : "The map is the latent space itself."),
      }),
    );

    // the pad and its picture
    const decoded = pixelCanvas("big", "the decoding of the z under the cross");
    const caption = el("p", { class: "caption numbers" });
    const rowCanvas = pixelCanvas("strip", "the same z under the ten labels");
    const map = latentMap(m, () => showPad());
    const viewButtons = el("div", { class: "controls" });
    if (cb) {
      viewButtons.append(el("span", { class: "hint", text: "Show:" }));
      for (const [v, text] of [
        ["lambda", "\u03bb(z), the parameter"],
        ["mean", "E[x|z], the mean"],
      ]) {
        const bt = el("button", {
          text,
          class: v === view ? "on" : "",
          onclick: () => {
            view = v;
            [...viewButtons.querySelectorAll("button")].forEach((x) => x.classList.toggle("on", x === bt));
            writeHash({ view });
            refreshAll();
          },
        });
        viewButtons.append(bt);
      }
    }
    const labelRow = el("div", { class: "controls labels" });
    if (cond) {
      labelRow.append(el("span", { class: "hint", text: "Label y:" }));
      for (let k = 0; k < 10; k++) {
        labelRow.append(
          el("button", {
            text: String(k),
            class: k === label ? "on" : "",
            "data-label": String(k),
            onclick: () => {
              label = k;
              labelRow.querySelectorAll("button").forEach((x) => x.classList.toggle("on", x.dataset.label === String(k)));
              writeHash({ label });
              refreshAll();
            },
          }),
        );
      }
    }
    main.append(
      el("h2", { text: "The latent pad" }),
      el(
        "div",
        { class: "row" },
        el(
          "div",
          { class: "col" },
          map.canvas,
          el("p", {
            class: "hint",
            text: "Drag (or touch) on the map, or focus it and use the arrow keys (Shift: bigger steps). Points: the posterior means of 2,000 test images, coloured by digit.",
          }),
        ),
        el(
          "div",
          { class: "col narrow" },
          el("div", { class: "caption", text: "Decoded here, in your browser" }),
          decoded,
          caption,
          viewButtons,
          labelRow,
          cond ? el("div", { class: "caption", text: "The same z under each label 0\u20139 (style kept, class changed)" }) : null,
          cond ? rowCanvas : null,
        ),
      ),
    );

    function showPad() {
      const [u, v] = map.cursor;
      const z = m.planeToZ(u, v);
      paint(decoded, [m.decode(z, label, view)], 1);
      caption.textContent = `(u, v) = (${fmt(u)}, ${fmt(v)})${cond ? `, y = ${label}` : ""}; ${viewName()}`;
      if (cond) {
        // the row of ten decodings costs ten pictures: while z moves it follows at most every ROW_MS, so
        // the main picture keeps the hand's pace; it always ends on the last z
        const since = performance.now() - rowAt;
        clearTimeout(rowTimer);
        if (since >= ROW_MS) drawRow(z);
        else rowTimer = setTimeout(() => drawRow(z), ROW_MS - since);
      }
      writeHash({ u: u.toFixed(3), v: v.toFixed(3) });
    }
    const ROW_MS = 150;
    let rowAt = -Infinity;
    let rowTimer = null;
    function drawRow(z) {
      rowAt = performance.now();
      const row = [];
      for (let k = 0; k < 10; k++) row.push(m.decode(z, k, view));
      paint(rowCanvas, row, 10, { pad: 2 });
    }

    // the manifold
    const manifoldCanvas = pixelCanvas("strip", "the manifold: decodings over a grid of the map");
    const gridInput = el("input", { type: "number", min: "5", max: "25", value: String(int("grid", 15, 5, 25)) });
    gridInput.addEventListener("change", () => {
      writeHash({ grid: clamp(Math.round(Number(gridInput.value) || 15), 5, 25) });
      drawManifold();
    });
    main.append(
      el("h2", { text: "The manifold" }),
      el("div", { class: "controls" }, el("label", { text: "Grid " }, gridInput)),
      el("div", { style: "max-width: 560px" }, manifoldCanvas),
      el("p", {
        class: "caption",
        text: "Decodings over an even grid of the map's region (u left to right, v bottom to top).",
      }),
    );
    function drawManifold() {
      const n = clamp(Math.round(Number(gridInput.value) || 15), 5, 25);
      const images = [];
      for (let r = 0; r < n; r++) {
        const v = bounds[1][1] - ((bounds[1][1] - bounds[1][0]) * r) / (n - 1);
        for (let c = 0; c < n; c++) {
          const u = bounds[0][0] + ((bounds[0][1] - bounds[0][0]) * c) / (n - 1);
          images.push(m.decode(m.planeToZ(u, v), label, view));
        }
      }
      paint(manifoldCanvas, images, n, { pad: 0 });
    }

    // interpolation between two test images
    const nTest = MNIST ? MNIST.n : 0;
    const fromInput = el("input", { type: "number", min: "0", max: String(nTest - 1), value: String(int("from", 0, 0, nTest - 1)) });
    const toInput = el("input", { type: "number", min: "0", max: String(nTest - 1), value: String(int("to", 1, 0, nTest - 1)) });
    const stepsInput = el("input", { type: "range", min: "3", max: "20", value: String(int("steps", 10, 3, 20)) });
    const stripCanvas = pixelCanvas("strip", "interpolation between two test images");
    const interpCaption = el("p", { class: "caption" });
    const nearest = (target) => {
      const [u, v] = map.cursor;
      let best = 0;
      let bestD = Infinity;
      for (let i = 0; i < m.map.n; i++) {
        const dd = (m.map.u[i] - u) ** 2 + (m.map.v[i] - v) ** 2;
        if (dd < bestD) {
          bestD = dd;
          best = i;
        }
      }
      target.value = String(best);
      drawInterpolation();
    };
    for (const input of [fromInput, toInput, stepsInput]) input.addEventListener("input", () => drawInterpolation());
    main.append(
      el("h2", { text: "Interpolation along the latent line" }),
      el(
        "div",
        { class: "controls" },
        el("label", { text: "From test image " }, fromInput),
        el("button", { text: "From: the image nearest the cross", onclick: () => nearest(fromInput) }),
        el("label", { text: "To " }, toInput),
        el("button", { text: "To: the image nearest the cross", onclick: () => nearest(toInput) }),
        el("label", { text: "Steps " }, stepsInput),
      ),
      stripCanvas,
      interpCaption,
    );
    function encodeTest(i) {
      return m.encode(preprocess(testImage(i), d.preprocessing), MNIST.labels[i]);
    }
    function drawInterpolation() {
      if (!MNIST) return;
      const a = clamp(Math.round(Number(fromInput.value) || 0), 0, nTest - 1);
      const bIdx = clamp(Math.round(Number(toInput.value) || 0), 0, nTest - 1);
      const steps = clamp(Math.round(Number(stepsInput.value) || 10), 3, 20);
      const za = encodeTest(a).mu;
      const zb = encodeTest(bIdx).mu;
      const images = [Array.from(testImage(a), (x) => x / 255)];
      for (let s = 0; s < steps; s++) {
        const t = s / (steps - 1);
        const z = za.map((x, i) => (1 - t) * x + t * zb[i]);
        images.push(m.decode(z, label, view));
      }
      images.push(Array.from(testImage(bIdx), (x) => x / 255));
      paint(stripCanvas, images, images.length, { pad: 2 });
      interpCaption.textContent =
        `First and last: test images ${a} (a ${MNIST.labels[a]}) and ${bIdx} (a ${MNIST.labels[bIdx]}); between them, ` +
        `${steps} decodings (${viewName()}${cond ? `, y = ${label}` : ""}) of z = (1 \u2212 t)\u00b7\u03bc_A + t\u00b7\u03bc_B, the dotted line on the map.`;
      map.overlays.line = [m.zToPlane(za), m.zToPlane(zb)];
      map.draw();
      writeHash({ from: a, to: bIdx, steps });
    }

    // the drawing, encoded here
    const drawnCanvas = pixelCanvas("big", "your drawing as the model sees it");
    const reconCanvas = pixelCanvas("big", "the decoding of the posterior mean");
    const drawInfo = el("p", { class: "caption numbers", text: "Draw a digit on the black square." });
    let drawing = null;
    let drawLabel = int("dlabel", 0, 0, 9);
    const drawLabelRow = el("div", { class: "controls labels" });
    if (cond) {
      drawLabelRow.append(el("span", { class: "hint", text: "The drawing's label:" }));
      for (let k = 0; k < 10; k++) {
        drawLabelRow.append(
          el("button", {
            text: String(k),
            class: k === drawLabel ? "on" : "",
            "data-label": String(k),
            onclick: () => {
              drawLabel = k;
              drawLabelRow.querySelectorAll("button").forEach((x) => x.classList.toggle("on", x.dataset.label === String(k)));
              writeHash({ dlabel: k });
              encodeDrawing();
            },
          }),
        );
      }
    }
    const pad = drawingPad((pixels) => {
      drawing = pixels;
      encodeDrawing();
    });
    const goButton = el("button", {
      text: "Move the cross to \u03bc",
      onclick: () => {
        if (map.overlays.ellipse) map.moveTo(map.overlays.ellipse[0]);
      },
    });
    main.append(
      el("h2", { text: "Draw a digit: q(z|x), computed in your browser" }),
      el(
        "div",
        { class: "row" },
        el("div", { class: "col narrow" }, pad.canvas, el("div", { class: "controls" }, pad.button, goButton), drawLabelRow),
        el(
          "div",
          { class: "col" },
          el("div", { class: "row" },
            el("div", {}, el("div", { class: "caption", text: "Input (28 \u00d7 28)" }), drawnCanvas),
            el("div", {}, el("div", { class: "caption", text: "Decoding of \u03bc" }), reconCanvas)),
          drawInfo,
        ),
      ),
    );
    function encodeDrawing() {
      if (!drawing) {
        map.overlays.ellipse = null;
        map.overlays.samples = [];
        map.draw();
        drawInfo.textContent = "Draw a digit on the black square.";
        return;
      }
      const x = preprocess(drawing, d.preprocessing);
      const q = m.encode(x, drawLabel);
      paint(drawnCanvas, [drawing], 1, { bytes: true });
      paint(reconCanvas, [m.decode(q.mu, drawLabel, view)], 1);
      const gen = NETS.rng(12345);
      const samples = [];
      for (let k = 0; k < 8; k++) {
        const z = q.mu.map((mu, i) => mu + q.sigma[i] * gen.normal());
        samples.push(m.zToPlane(z));
      }
      map.overlays.ellipse = [m.zToPlane(q.mu), m.planeCov(q.sigma)];
      map.overlays.samples = samples;
      map.draw();
      const shown = Math.min(m.L, 4);
      const mus = Array.from(q.mu.slice(0, shown), (v) => fmt(v)).join(", ");
      const sigmas = Array.from(q.sigma.slice(0, shown), (v) => fmt(v, 3)).join(", ");
      const more = m.L > shown ? ", \u2026" : "";
      drawInfo.textContent =
        `q(z|x${cond ? `, y = ${drawLabel}` : ""}): \u03bc = (${mus}${more}), \u03c3 = (${sigmas}${more}). ` +
        "On the map: \u03bc (dot), its 2\u03c3 ellipse on the plane and 8 samples z = \u03bc + \u03c3\u00b7\u03b5 (crosses).";
    }

    function refreshAll() {
      showPad();
      drawManifold();
      drawInterpolation();
      encodeDrawing();
    }
    map.cursor = [num("u", (bounds[0][0] + bounds[0][1]) / 2, bounds[0][0], bounds[0][1]), num("v", (bounds[1][0] + bounds[1][1]) / 2, bounds[1][0], bounds[1][1])];
    map.draw();
    showPad();
    // the rest after the first picture is on the screen
    setTimeout(() => {
      drawInterpolation();
      drawManifold();
      document.body.dataset.ready = "1";
    }, 0);
  }

  // ---------------------------------------------------------------------------------------- GMVAE
  function mixturePage(m) {
    const d = m.data;
    const C = m.C;
    let cluster = int("cluster", 0, 0, C - 1);
    const matched = (c) => (d.matched_label[c] >= 0 ? `digit ${d.matched_label[c]}` : "no digit");
    main.append(
      el("h1", { text: `Gaussian mixture VAE: ${d.name}` }),
      el("p", {
        class: "lead",
        text:
          `${C} clusters, L = ${m.L}; p(z|y) = N(\u03bc(y), \u03c3(y)\u00b2), x depends on z only. Test ELBO ` +
          `${d.test_elbo === null ? "\u2013" : d.test_elbo.toFixed(1)} nats per image. Each cluster is named by ` +
          "the digit most of its test images show (Hungarian matching, stored with the model).",
      }),
    );
    const row = el("div", { class: "clusters" });
    const buttons = [];
    for (let c = 0; c < C; c++) {
      const cv = pixelCanvas("", `cluster ${c}: decoding of its mean`);
      paint(cv, [m.decode(m.prior(c).mu)], 1);
      const usage = d.usage[c] !== undefined ? ` \u00b7 ${Math.round(100 * d.usage[c])} %` : "";
      const bt = el(
        "button",
        {
          class: "cluster",
          "data-cluster": String(c),
          onclick: () => {
            cluster = c;
            buttons.forEach((x, k) => x.classList.toggle("on", k === c));
            writeHash({ cluster });
            drawSamples();
          },
        },
        cv,
        el("span", { text: `y = ${c}` }),
        el("span", { text: `${matched(c)}${usage}` }),
      );
      buttons.push(bt);
      row.append(bt);
    }
    buttons[cluster].classList.add("on");
    main.append(
      el("h2", { text: "Pick a cluster" }),
      row,
      el("p", { class: "caption", text: "Each picture: the decoding of \u03bc(y), the mean of p(z|y). Below the cluster: its matched digit and its share of the test images." }),
    );

    const spread = el("input", { type: "range", min: "0", max: "2", step: "0.05", value: String(num("spread", 1, 0, 2)) });
    const spreadText = el("span", { class: "numbers" });
    const seed = el("input", { type: "number", min: "0", max: "999999", value: String(int("seed", 0, 0, 999999)) });
    const samples = pixelCanvas("strip", "samples from the cluster");
    const sampleCaption = el("p", { class: "caption" });
    spread.addEventListener("input", () => drawSamples());
    seed.addEventListener("change", () => drawSamples());
    main.append(
      el("h2", { text: "Samples from p(z|y)" }),
      el(
        "div",
        { class: "controls" },
        el("label", { text: "Spread " }, spread),
        spreadText,
        el("label", { text: "Seed " }, seed),
        el("button", {
          text: "New samples",
          onclick: () => {
            seed.value = String((Math.round(Number(seed.value) || 0) + 1) % 1000000);
            drawSamples();
          },
        }),
      ),
      el("div", { style: "max-width: 560px" }, samples),
      sampleCaption,
    );
    function drawSamples() {
      const s = clamp(Number(spread.value), 0, 2);
      const sd = clamp(Math.round(Number(seed.value) || 0), 0, 999999);
      spreadText.textContent = `\u00d7 ${s.toFixed(2)}`;
      const gen = NETS.rng(sd * 1000 + cluster);
      const images = [];
      for (let k = 0; k < 32; k++) images.push(m.decode(m.sampleZ(cluster, s, gen)));
      paint(samples, images, 8);
      sampleCaption.textContent =
        `32 Bernoulli means \u03bb(z) of z = \u03bc(y) + ${s.toFixed(2)}\u00b7\u03c3(y)\u00b7\u03b5, y = ${cluster} (${matched(cluster)}); ` +
        "the seed fixes \u03b5 (the browser's own generator: the same seed gives the same pictures on every device, not the app's).";
      writeHash({ spread: s.toFixed(2), seed: sd });
    }

    // a drawing: q(y|x) and the drawing carried to every cluster
    const bars = el("div", { class: "bars" });
    const carried = pixelCanvas("strip", "the drawing carried to every cluster");
    carried.hidden = true;
    const drawnCanvas = pixelCanvas("big", "your drawing, binarized");
    const info = el("p", { class: "caption", text: "Draw a digit on the black square." });
    const pad = drawingPad((pixels) => encode(pixels));
    main.append(
      el("h2", { text: "Draw a digit: q(y|x) and its carry to every cluster" }),
      el(
        "div",
        { class: "row" },
        el("div", { class: "col narrow" }, pad.canvas, el("div", { class: "controls" }, pad.button)),
        el("div", { class: "col narrow" }, el("div", { class: "caption", text: "Input (binarized)" }), drawnCanvas),
        el("div", { class: "col" }, el("div", { class: "caption", text: "q(y|x)" }), bars),
      ),
      el("div", { class: "caption", text: "The drawing carried to each cluster: \u03bb at the mean of q(z|x, y) for y = 0, 1, \u2026" }),
      el("div", { style: "max-width: 720px" }, carried),
      info,
    );
    function encode(pixels) {
      bars.replaceChildren();
      if (!pixels) {
        info.textContent = "Draw a digit on the black square.";
        carried.hidden = true;
        return;
      }
      const x = preprocess(pixels, "binarized");
      paint(drawnCanvas, [x], 1);
      const p = m.qy(x);
      let top = 0;
      for (let c = 0; c < C; c++) {
        if (p[c] > p[top]) top = c;
        bars.append(
          el("span", { text: `y = ${c} (${matched(c)})` }),
          el("div", { class: "bar", style: `width: ${(100 * p[c]).toFixed(1)}%` }),
          el("span", { class: "numbers", text: p[c].toFixed(3) }),
        );
      }
      const images = [];
      for (let c = 0; c < C; c++) images.push(m.decode(m.qz(x, c).mu));
      paint(carried, images, C, { pad: 2 });
      carried.hidden = false;
      info.textContent = `The most probable cluster is y = ${top} (${matched(top)}), q(y|x) = ${p[top].toFixed(3)}.`;
    }
    drawSamples();
    document.body.dataset.ready = "1";
  }

  // ----------------------------------------------------------------------------------------- VRNN
  function sequencePage(m) {
    const d = m.data;
    const T = m.T;
    main.append(
      el("h1", { text: `Variational RNN: ${d.name}` }),
      el("p", {
        class: "lead",
        text:
          `An image is ${T} rows of ${m.W} pixels; per row a latent z_t in R^${m.L}, z_t ~ p(z_t|h_t), the row ` +
          "x_t ~ p(x_t|h_t, z_t), and the LSTM reads [x_t, z_t] for the next row. The recurrent cell runs here, " +
          `in your browser. Test ELBO ${d.test_elbo === null ? "\u2013" : d.test_elbo.toFixed(1)} nats per image.`,
      }),
    );
    const seed = el("input", { type: "number", min: "0", max: "999999", value: String(int("seed", 0, 0, 999999)) });
    const sampled = pixelCanvas("big", "the sampled rows, fed back");
    const means = pixelCanvas("big", "each row's Bernoulli means");
    const status = el("p", { class: "caption numbers" });
    const playButton = el("button", { class: "primary", text: "Play" });
    let gen = null;
    let st = null;
    let timer = null;
    let lastMs = 0;
    const reset = () => {
      stop();
      gen = NETS.rng(clamp(Math.round(Number(seed.value) || 0), 0, 999999));
      st = m.start();
      show();
    };
    const next = () => {
      if (st.rows.length >= T) return false;
      const t0 = performance.now();
      st = m.step(st, gen);
      lastMs = performance.now() - t0;
      show();
      return st.rows.length < T;
    };
    function stop() {
      clearInterval(timer);
      timer = null;
      playButton.textContent = "Play";
    }
    playButton.addEventListener("click", () => {
      if (timer) return stop();
      if (st.rows.length >= T) reset();
      playButton.textContent = "Pause";
      timer = setInterval(() => {
        if (!next()) stop();
      }, 60);
    });
    seed.addEventListener("change", reset);
    function rowsImage(rows) {
      const img = new Float64Array(784).fill(0.5);
      rows.forEach((r, t) => img.set(r, t * m.W));
      return img;
    }
    function show() {
      paint(sampled, [rowsImage(st.rows)], 1);
      paint(means, [rowsImage(st.means)], 1);
      status.textContent =
        `Row ${st.rows.length} of ${T}` + (st.rows.length ? `; the last row took ${lastMs.toFixed(1)} ms here.` : ".") +
        " Grey: rows not generated yet.";
      document.body.dataset.rows = String(st.rows.length);
      document.body.dataset.rowMs = lastMs.toFixed(2);
      writeHash({ seed: clamp(Math.round(Number(seed.value) || 0), 0, 999999), rows: st.rows.length });
    }
    main.append(
      el("h2", { text: "Generate row by row" }),
      el(
        "div",
        { class: "controls" },
        el("label", { text: "Seed " }, seed),
        el("button", { text: "Next row", onclick: () => { stop(); next(); } }),
        playButton,
        el("button", { text: "Reset", onclick: reset }),
      ),
      el(
        "div",
        { class: "row" },
        el("div", {}, el("div", { class: "caption", text: "Sampled rows (fed back)" }), sampled),
        el("div", {}, el("div", { class: "caption", text: "Bernoulli means of each row" }), means),
      ),
      status,
    );

    // completion
    const nTest = MNIST ? MNIST.n : 0;
    const source = el("select", {}, el("option", { value: "test", text: "a test image" }), el("option", { value: "drawing", text: "my drawing" }));
    source.value = state.src === "drawing" ? "drawing" : "test";
    const index = el("input", { type: "number", min: "0", max: String(nTest - 1), value: String(int("img", 0, 0, nTest - 1)) });
    const keep = el("input", { type: "range", min: "0", max: String(T), value: String(int("keep", 14, 0, T)) });
    const keepText = el("span", { class: "numbers" });
    const completions = pixelCanvas("strip", "completions");
    const compCaption = el("p", { class: "caption" });
    let drawing = null;
    const pad = drawingPad((pixels) => {
      drawing = pixels;
      if (pixels) source.value = "drawing";
      complete();
    });
    for (const input of [source, index, keep]) input.addEventListener("input", () => complete());
    main.append(
      el("h2", { text: "Complete the top rows" }),
      el(
        "div",
        { class: "controls" },
        el("label", { text: "From " }, source),
        el("label", { text: "Test image " }, index),
        el("label", { text: "Keep rows " }, keep),
        keepText,
      ),
      el(
        "div",
        { class: "row" },
        el("div", { class: "col narrow" }, pad.canvas, el("div", { class: "controls" }, pad.button)),
        el("div", { class: "col" }, el("div", { style: "max-width: 620px" }, completions), compCaption),
      ),
    );
    function complete() {
      const k = clamp(Math.round(Number(keep.value) || 0), 0, T);
      keepText.textContent = String(k);
      let x;
      let what;
      if (source.value === "drawing" && drawing) {
        x = preprocess(drawing, "binarized");
        what = "your drawing";
      } else {
        const i = clamp(Math.round(Number(index.value) || 0), 0, nTest - 1);
        x = preprocess(testImage(i), "binarized");
        what = `test image ${i}`;
      }
      const images = [x];
      const sd = clamp(Math.round(Number(seed.value) || 0), 0, 999999);
      for (let s = 0; s < 5; s++) {
        const g = NETS.rng(sd * 100 + s + 1);
        let cst = m.startCompletion(x, k, g);
        while (cst.rows.length < T) cst = m.step(cst, g);
        const img = rowsImage(cst.rows);
        images.push(img);
      }
      paint(completions, images, images.length, { pad: 2 });
      compCaption.textContent =
        `First: ${what} (binarized). Then five completions: its top ${k} rows kept (z_t ~ q(z_t|h_t, x_t) along them), ` +
        "the rest generated row by row from the seed.";
      writeHash({ src: source.value, img: index.value, keep: k });
    }
    reset();
    const rows = int("rows", 0, 0, T);
    for (let t = 0; t < rows; t++) next();
    setTimeout(() => {
      complete();
      document.body.dataset.ready = "1";
    }, 0);
  }

  // ------------------------------------------------------------------------------------- start
  const PAGES = { latent: latentPage, mixture: mixturePage, sequence: sequencePage };
  // what the pages of the recorded runs (replay.js) use of this file
  const UI = {
    el,
    paint,
    pixelCanvas,
    writeHash,
    num,
    int,
    main,
    DIGIT_COLOURS,
    narrow: () => window.innerWidth < 640,
    // a picture drawn without paint() (a canvas chart): counted as paint() counts them
    pictureDrawn: () => {
      stats.pictures += 1;
      document.body.dataset.pictures = String(stats.pictures);
      if (stats.pictures === 1) document.body.dataset.firstPictureMs = performance.now().toFixed(1);
    },
  };

  function fail(text) {
    main.replaceChildren(el("p", { class: "error", text }));
    document.body.dataset.ready = "error";
  }

  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = src;
      s.onload = resolve;
      s.onerror = reject;
      document.body.append(s);
    });
  }

  function setScale(value) {
    const v = ["100", "125", "150"].includes(String(value)) ? String(value) : "100";
    document.body.classList.remove("scale-125", "scale-150");
    if (v !== "100") document.body.classList.add(`scale-${v}`);
    document.getElementById("scale").value = v;
    return v;
  }

  async function start() {
    const models = SITE.models || [];
    if (!models.length) return fail("This site holds no model.");
    const entry = models.find((e) => e.name === state.model) || models[0];
    state.model = entry.name;
    const nav = document.getElementById("models");
    if (models.length > 1) {
      for (const e of models) {
        const a = el("a", { href: `#model=${encodeURIComponent(e.name)}`, text: e.label || e.name, class: e === entry ? "on" : "" });
        nav.append(a);
      }
    }
    const scaleSelect = document.getElementById("scale");
    setScale(state.scale);
    scaleSelect.addEventListener("change", () => writeHash({ scale: setScale(scaleSelect.value) }));
    document.title = `${entry.label || entry.name} \u00b7 AEVB Explorer`;
    try {
      await loadScript(entry.file);
    } catch (err) {
      return fail(`The data of model ${entry.name} is missing from this site: publish it again.`);
    }
    const data = (window.AEVB_MODEL_DATA || {})[entry.name];
    if (!data) return fail(`The data of model ${entry.name} is missing from this site: publish it again.`);
    main.replaceChildren();
    const replay = (window.AEVBReplay && window.AEVBReplay.pages) || {};
    if (replay[data.kind]) return replay[data.kind](data, entry, UI);
    const page = PAGES[data.kind];
    if (!page) return fail(`This site cannot show a model of kind ${data.kind}.`);
    page(NETS.build(data), entry);
  }

  // another model (a link in the bar, or a pasted link): start again with the new hash
  window.addEventListener("hashchange", () => {
    const next = readHash();
    if (next.model && next.model !== state.model) location.reload();
  });
  start();
})();
