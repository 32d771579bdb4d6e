// The alert's plot: the patient's recent readings of the alert's kind over
// 24 hours, 7 days or 30 days (the range chosen from the data, and
// switchable), the reading that fired marked, and the rule's thresholds (the
// patient's effective parameter values when known, else the rule's
// defaults) drawn as dashed lines across the whole axis. Values are in the
// user's units at clinical precision. The legend names every line without
// hovering, and the caption says the same in words. Drawn by uPlot
// (vendor/uPlot.iife.min.js, global uPlot).

import { axisLabels, convert, dateTime, kindName, paramLabel, readingText, round, thresholdText, unitFor, valueText } from "./format.js";

export function kindLabel(kind) {
  return kindName(kind);
}

// thresholds picks the parameters that are limits on the plotted value:
// min, max, systolic_max, min_now and the like.
export function thresholds(params) {
  return Object.entries(params || {})
    .filter(([name, v]) => Number.isFinite(v) && /(^|_)(min|max)(_now)?$/.test(name))
    .sort(([a], [b]) => (a < b ? -1 : 1));
}

// RANGES are the plot's time ranges: [key, seconds, label].
export const RANGES = [["24h", 86400, "24 hours"], ["7d", 7 * 86400, "7 days"], ["30d", 30 * 86400, "30 days"]];
const MIN_POINTS = 5;

// Dash patterns tell thresholds apart without relying on colour.
const DASHES = [[6, 4], [2, 3], [10, 3, 2, 3], [1, 5]];
const COLOURS = { a: "#1d4ed8", b: "#0f766e", limit: "#b42318", axis: "#3d444d", grid: "#d8dee4" };

function points(readings) {
  return readings
    .filter((r) => r.observed_at)
    .map((r) => ({ ...r, t: Date.parse(r.observed_at) / 1000 }))
    .sort((a, b) => a.t - b.t);
}

// defaultRange chooses the range from the data: the shortest that shows at
// least MIN_POINTS readings (or every reading there is), ending at the
// latest.
export function defaultRange(readings) {
  const pts = points(readings);
  if (!pts.length) return RANGES[0][0];
  const end = pts[pts.length - 1].t;
  const want = Math.min(MIN_POINTS, pts.length);
  for (const [key, span] of RANGES) {
    if (pts.filter((p) => p.t >= end - span).length >= want) return key;
  }
  return RANGES[RANGES.length - 1][0];
}

// buildPlot returns uPlot's options and data, or null when there is nothing
// to draw. readings: the API's items (any order, canonical units); fired:
// ids of the readings that raised the alert; limits: [[name, value]].
export function buildPlot(kind, readings, fired, limits, { width = 600, prefs, range, colours = COLOURS } = {}) {
  const all = points(readings);
  if (all.length === 0) return null;
  const key = range || defaultRange(readings);
  const span = (RANGES.find(([k]) => k === key) || RANGES[0])[1];
  const end = all[all.length - 1].t + span * 0.02;
  const start = end - span;
  const pts = all.filter((p) => p.t >= start);
  const unit = unitFor(kind, prefs);
  const xs = [start, ...pts.map((p) => p.t), end];
  const bp = kind === "blood_pressure";
  const fields = bp ? ["systolic", "diastolic"] : ["value"];
  const value = (p, f) => round(kind, convert(kind, p[f], prefs), prefs);
  const series = [{}];
  const data = [xs];
  fields.forEach((f, i) => {
    series.push({
      label: bp ? `${f === "systolic" ? "Systolic" : "Diastolic"} (${unit})` : `${kindName(kind)} (${unit})`,
      stroke: i ? colours.b : colours.a, width: 2, points: { show: true, size: 6 },
    });
    data.push([null, ...pts.map((p) => value(p, f)), null]);
  });
  limits.forEach(([name, v], i) => {
    series.push({ label: `Threshold: ${paramLabel(name)} ${thresholdText(kind, v, prefs)}`, stroke: colours.limit, width: 1.5,
      dash: DASHES[i % DASHES.length], points: { show: false } });
    data.push(xs.map(() => convert(kind, v, prefs)));
  });
  const firedSet = new Set(fired);
  if (pts.some((p) => firedSet.has(p.id))) {
    series.push({ label: "Reading that fired (ringed)", stroke: colours.limit, width: 0, paths: () => null,
      points: { show: true, size: 13, width: 3, fill: "transparent" } });
    data.push([null, ...pts.map((p) => (firedSet.has(p.id) ? value(p, fields[0]) : null)), null]);
  }
  const axis = { stroke: colours.axis, grid: { stroke: colours.grid }, ticks: { stroke: colours.grid } };
  const opts = {
    width, height: 260,
    scales: { x: { time: true, range: () => [start, end] } },
    series,
    axes: [{ ...axis, values: (u, ticks) => axisLabels(ticks, span) }, { ...axis, label: unit, size: 60 }],
    legend: { live: false },
    cursor: { drag: { x: true, y: false } },
  };
  return { opts, data, pts, unit, range: key, start, end };
}

// caption says in words what the plot shows: the readings in range, the
// value that fired and when, the latest, and the thresholds.
export function caption(kind, built, limits, { prefs, firing } = {}) {
  if (!built) return `No ${kindName(kind)} readings to plot.`;
  const { pts } = built;
  const label = (RANGES.find(([k]) => k === built.range) || RANGES[0])[2];
  const parts = [`${kindName(kind)} over the last ${label} shown: ${pts.length} reading${pts.length === 1 ? "" : "s"}.`];
  if (firing) parts.push(`Fired on ${readingText(firing, prefs)} at ${dateTime(firing.observed_at)}.`);
  const last = pts[pts.length - 1];
  if (last && (!firing || last.id !== firing.id)) parts.push(`Latest ${valueText(last, prefs)} at ${dateTime(last.observed_at)}.`);
  parts.push(limits.length ? `Thresholds: ${limits.map(([n, v]) => `${paramLabel(n)} ${thresholdText(kind, v, prefs)}`).join(", ")}.`
    : "The rule has no fixed threshold.");
  return parts.join(" ");
}

// Plot owns one uPlot chart in a container.
export class Plot {
  constructor(container) {
    this.container = container;
    this.chart = null;
    this.onResize = () => this.chart?.setSize({ width: this.width(), height: 260 });
    window.addEventListener("resize", this.onResize);
  }

  width() {
    return Math.max(240, (this.container.clientWidth || 600) - 4);
  }

  // colours reads the page's plot colours (light or dark scheme).
  static colours() {
    const css = getComputedStyle(document.documentElement);
    const v = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
    return { a: v("--plot-a", COLOURS.a), b: v("--plot-b", COLOURS.b), limit: v("--plot-limit", COLOURS.limit),
      axis: v("--plot-axis", COLOURS.axis), grid: v("--plot-grid", COLOURS.grid) };
  }

  show(built) {
    this.clear();
    if (!built || typeof globalThis.uPlot !== "function") return;
    built.opts.width = this.width();
    this.chart = new globalThis.uPlot(built.opts, built.data, this.container);
  }

  clear() {
    this.chart?.destroy();
    this.chart = null;
    this.container.replaceChildren();
  }
}
