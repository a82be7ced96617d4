// A light 2-D chart on a canvas, redrawn in place for every frame of data (no remount, no layout pass).
//
// Data in (from views/components/live_chart.py; plain numbers and short plain text only):
//   title, height, frame (a counter), legend [{name, color, dash, width}], panels: [{
//     top, bottom (fractions of the plot area), title, equal (same scale on x and y),
//     x {range [lo, hi], title, tickvals (optional: the ticks)}, y {range [lo, hi], title, log},
//     bands [{x0, x1, color, label}] (vertical shading), hlines [{y, color, dash, width}],
//     vlines [{x, color, dash, width}], lines [{x, y, color, width, dash, opacity}] (null in y breaks a line),
//     markers [{x, y, color, size, symbol}] }]
// Nothing is sent back. Text is only drawn with fillText: nothing becomes HTML.

// num(), fitToData() and mountState() come from ../canvas.js, which views/components/canvas_assets.py puts first.

const CHARTS = new WeakMap();
const COLOUR = /^(#[0-9a-fA-F]{6}|rgba?\([0-9., ]+\))$/;
const MARGIN = { l: 58, r: 12, t: 28, b: 40 };

function colour(c, fallback) {
  return typeof c === "string" && COLOUR.test(c) ? c : fallback;
}

function text(t) {
  return typeof t === "string" ? t : "";
}

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

function fmt(t) {
  const a = Math.abs(t);
  if (a === 0) return "0";
  if (a >= 1e4 || a < 1e-3) return t.toExponential(0);
  return String(Math.round(t * 1000) / 1000);
}

// One panel in box [x0, y0, w, h] (CSS pixels) of a canvas cw CSS pixels wide.
function drawPanel(ctx, p, box, cw) {
  const [x0, y0, w, h] = box;
  const xr = (p.x && p.x.range) || [0, 1];
  const yr = (p.y && p.y.range) || [0, 1];
  const log = !!(p.y && p.y.log);
  let xlo = num(xr[0], 0), xhi = num(xr[1], 1);
  let ylo = num(yr[0], 0), yhi = num(yr[1], 1);
  if (log) {
    ylo = Math.log10(Math.max(ylo, 1e-300));
    yhi = Math.log10(Math.max(yhi, 1e-300));
  }
  if (!(xhi > xlo)) xhi = xlo + 1;
  if (!(yhi > ylo)) yhi = ylo + 1;
  if (p.equal) {
    // the same units per pixel on both axes: widen the range that is too narrow
    const ux = (xhi - xlo) / w, uy = (yhi - ylo) / h;
    if (ux > uy) {
      const c = (ylo + yhi) / 2, half = (ux * h) / 2;
      ylo = c - half;
      yhi = c + half;
    } else {
      const c = (xlo + xhi) / 2, half = (uy * w) / 2;
      xlo = c - half;
      xhi = c + half;
    }
  }
  const X = (x) => x0 + ((x - xlo) / (xhi - xlo)) * w;
  const Y = (y) => y0 + h - (((log ? Math.log10(Math.max(y, 1e-300)) : y) - ylo) / (yhi - ylo)) * h;

  ctx.save();
  ctx.beginPath();
  ctx.rect(x0, y0, w, h);
  ctx.clip();
  for (const b of p.bands || []) {
    const a = X(num(b.x0, 0)), z = X(num(b.x1, 0));
    ctx.fillStyle = colour(b.color, "rgba(128,128,128,0.2)");
    ctx.fillRect(a, y0, z - a, h);
    if (b.label) {
      ctx.fillStyle = "rgba(49,51,63,0.75)";
      ctx.font = "11px sans-serif";
      ctx.textAlign = "left";
      ctx.textBaseline = "top";
      ctx.fillText(text(b.label), a + 3, y0 + 2);
    }
  }
  // grid
  ctx.strokeStyle = "rgba(0,0,0,0.07)";
  ctx.lineWidth = 1;
  const xt =
    p.x && Array.isArray(p.x.tickvals)
      ? p.x.tickvals.filter((t) => typeof t === "number" && t >= xlo && t <= xhi)
      : niceTicks(xlo, xhi, Math.max(2, Math.floor(w / 90)));
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
  for (const l of p.lines || []) {
    const xs = l.x || [], ys = l.y || [];
    ctx.strokeStyle = colour(l.color, "#1f77b4");
    ctx.lineWidth = num(l.width, 1.5);
    ctx.globalAlpha = num(l.opacity, 1);
    ctx.setLineDash(Array.isArray(l.dash) ? l.dash : []);
    ctx.beginPath();
    let pen = false;
    for (let i = 0; i < Math.min(xs.length, ys.length); i++) {
      const x = xs[i], y = ys[i];
      if (typeof x !== "number" || typeof y !== "number" || (log && y <= 0)) {
        pen = false;
        continue;
      }
      if (pen) ctx.lineTo(X(x), Y(y));
      else ctx.moveTo(X(x), Y(y));
      pen = true;
    }
    ctx.stroke();
    ctx.globalAlpha = 1;
  }
  ctx.setLineDash([]);
  for (const m of p.markers || []) {
    const xs = m.x || [], ys = m.y || [];
    const r = num(m.size, 4);
    const cs = Array.isArray(m.color) ? m.color : null;
    for (let i = 0; i < Math.min(xs.length, ys.length); i++) {
      if (typeof xs[i] !== "number" || typeof ys[i] !== "number") continue;
      const x = X(xs[i]), y = Y(ys[i]);
      const c = colour(cs ? cs[i % cs.length] : m.color, "#000000");
      ctx.beginPath();
      ctx.arc(x, y, r, 0, 2 * Math.PI);
      if (m.symbol === "ring") {
        ctx.strokeStyle = c;
        ctx.lineWidth = 1.5;
        ctx.stroke();
      } else {
        ctx.fillStyle = c;
        ctx.fill();
      }
    }
  }
  ctx.restore();

  // frame, ticks and titles
  ctx.strokeStyle = "rgba(0,0,0,0.25)";
  ctx.lineWidth = 1;
  ctx.strokeRect(x0, y0, w, h);
  ctx.fillStyle = "rgba(49,51,63,0.85)";
  ctx.font = "11px sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  // a tick label stays whole inside the canvas (the last x tick, "4000", sat half past its right edge) and
  // inside its panel's height (the lowest y tick, "0.001", sat on the x tick labels under the panel)
  if (p.x && p.x.ticks !== false) {
    for (const t of xt) {
      const label = fmt(t), half = ctx.measureText(label).width / 2;
      ctx.fillText(label, Math.min(Math.max(X(t), half + 1), num(cw, x0 + w + MARGIN.r) - half - 1), y0 + h + 3);
    }
  }
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const t of yt) ctx.fillText(fmt(t), x0 - 4, Math.min(Math.max(Y(t), y0 + 6), y0 + h - 6));
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
    ctx.font = "12px sans-serif";
    ctx.textAlign = "left";
    ctx.textBaseline = "bottom";
    ctx.fillText(text(p.title), x0, y0 - 3);
  }
}

function draw(s) {
  const d = s.data;
  if (!d) return;
  const canvas = s.canvas;
  const [w, h] = fitToData(s, 200, 600, 120, 400);
  const ctx = s.ctx;
  const legend = Array.isArray(d.legend) ? d.legend : [];
  // the legend under the plot, wrapped into as many lines as it needs
  ctx.font = "12px sans-serif";
  const placed = [];
  let lx = MARGIN.l, line = 0;
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
  const top = MARGIN.t + (d.title ? 18 : 0);
  const bottom = MARGIN.b + 20 * legendLines;
  const area = [MARGIN.l, top, w - MARGIN.l - MARGIN.r, h - top - bottom];
  if (d.title) {
    ctx.fillStyle = "rgba(49,51,63,1)";
    ctx.font = "bold 14px sans-serif";
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
    ctx.fillText(text(d.title), 4, 4);
  }
  for (const p of d.panels || []) {
    const t = num(p.top, 0), b = num(p.bottom, 1);
    drawPanel(ctx, p, [area[0], area[1] + t * area[3], area[2], (b - t) * area[3]], w);
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
  canvas.dataset.frame = String(d.frame);
}

function setup(parent) {
  const canvas = parent.querySelector(".canvas");
  return { canvas, ctx: canvas.getContext("2d"), data: null, frames: 0 };
}

function render(s, data) {
  s.data = data;
  s.frames += 1;
  s.canvas.dataset.frames = String(s.frames);
  draw(s);
}

export default function (component) {
  mountState(CHARTS, component, setup, render, draw);
  return undefined;
}
