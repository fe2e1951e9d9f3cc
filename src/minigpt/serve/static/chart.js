// A small line chart on a <canvas>: axes with round ticks, one line per series, a legend.
// series: [{label, color, dashed, points: [[x, y], ...]}]. No dependencies, no network.
"use strict";

function niceTicks(lo, hi, count) {
  if (!(hi > lo)) { hi = lo + 1; }
  const raw = (hi - lo) / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(t);
  return ticks;
}

function formatTick(v) {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
  if (a >= 1e3) return (v / 1e3).toFixed(a >= 1e4 ? 0 : 1) + "k";
  return a >= 10 ? v.toFixed(0) : a >= 1 ? v.toFixed(1) : v.toPrecision(2);
}

function drawChart(canvas, series, opts) {
  opts = opts || {};
  const ratio = window.devicePixelRatio || 1;
  const cssWidth = canvas.clientWidth || canvas.width;
  const cssHeight = Math.round(cssWidth * 0.4);
  canvas.width = cssWidth * ratio;
  canvas.height = cssHeight * ratio;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, cssWidth, cssHeight);
  const pad = { left: 56, right: 16, top: 16, bottom: 40 };
  const w = cssWidth - pad.left - pad.right;
  const h = cssHeight - pad.top - pad.bottom;
  const all = series.flatMap((s) => s.points).filter((p) => isFinite(p[0]) && isFinite(p[1]));
  canvas.dataset.points = String(all.length);
  ctx.font = "12px system-ui, sans-serif";
  ctx.fillStyle = "#6b6b70";
  if (!all.length) {
    ctx.fillText(opts.empty || "no data yet", pad.left, pad.top + 20);
    return;
  }
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (x1 === x0) x1 = x0 + 1;
  const margin = (y1 - y0) * 0.05 || 0.1;
  y0 -= margin; y1 += margin;
  const X = (x) => pad.left + ((x - x0) / (x1 - x0)) * w;
  const Y = (y) => pad.top + (1 - (y - y0) / (y1 - y0)) * h;

  ctx.strokeStyle = "#e6e6e6";
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const t of niceTicks(y0, y1, 5)) {
    ctx.beginPath(); ctx.moveTo(pad.left, Y(t)); ctx.lineTo(pad.left + w, Y(t)); ctx.stroke();
    ctx.fillText(formatTick(t), pad.left - 6, Y(t));
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const t of niceTicks(x0, x1, 6)) {
    ctx.beginPath(); ctx.moveTo(X(t), pad.top); ctx.lineTo(X(t), pad.top + h); ctx.stroke();
    ctx.fillText(formatTick(t), X(t), pad.top + h + 6);
  }
  ctx.fillText(opts.xLabel || "", pad.left + w / 2, pad.top + h + 22);
  ctx.strokeStyle = "#9a9a9a";
  ctx.strokeRect(pad.left, pad.top, w, h);

  for (const s of series) {
    if (!s.points.length) continue;
    ctx.strokeStyle = s.color;
    ctx.fillStyle = s.color;
    ctx.lineWidth = s.dashed ? 2 : 1.5;
    ctx.setLineDash(s.dashed ? [6, 4] : []);
    ctx.beginPath();
    s.points.forEach((p, i) => (i ? ctx.lineTo(X(p[0]), Y(p[1])) : ctx.moveTo(X(p[0]), Y(p[1]))));
    ctx.stroke();
    if (s.points.length < 40) {
      for (const p of s.points) { ctx.beginPath(); ctx.arc(X(p[0]), Y(p[1]), 2.5, 0, 7); ctx.fill(); }
    }
  }
  ctx.setLineDash([]);
  // legend, top right
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  let ly = pad.top + 10;
  const lx = pad.left + w - 10 - Math.max(...series.map((s) => ctx.measureText(s.label).width)) - 28;
  for (const s of series) {
    ctx.strokeStyle = s.color;
    ctx.setLineDash(s.dashed ? [6, 4] : []);
    ctx.beginPath(); ctx.moveTo(lx, ly); ctx.lineTo(lx + 20, ly); ctx.stroke();
    ctx.fillStyle = "#1d1d1f";
    ctx.fillText(s.label, lx + 26, ly);
    ly += 16;
  }
  ctx.setLineDash([]);
}

window.drawChart = drawChart;
