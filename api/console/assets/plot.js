// The alert's plot: the patient's recent readings of the alert's kind, the
// readings that fired highlighted, and the rule's thresholds (the patient's
// effective parameter values when known, else the rule's defaults) drawn as
// dashed lines. Drawn by uPlot (vendor/uPlot.iife.min.js, global uPlot).

const KIND_LABELS = {
  blood_pressure: "Blood pressure",
  heart_rate: "Heart rate",
  spo2: "Oxygen saturation",
  blood_glucose: "Blood glucose",
  body_weight: "Body weight",
  body_temperature: "Body temperature",
  respiratory_rate: "Respiratory rate",
};

export function kindLabel(kind) {
  return KIND_LABELS[kind] || (kind || "").replaceAll("_", " ");
}

// thresholds picks the parameters that are limits on the plotted value:
// min, max, systolic_max, min_now and the like.
export function thresholds(params) {
  return Object.entries(params || {})
    .filter(([name, v]) => Number.isFinite(v) && /(^|_)(min|max)(_now)?$/.test(name))
    .sort(([a], [b]) => (a < b ? -1 : 1));
}

// Dash patterns tell thresholds apart without relying on colour.
const DASHES = [[6, 4], [2, 3], [10, 3, 2, 3], [1, 5]];
const MIN_SPAN_S = 3600; // a single reading still gets an hour of axis

const COLOURS = { value: "#1d4ed8", systolic: "#1d4ed8", diastolic: "#0f766e", limit: "#b42318", fired: "#b42318" };

// buildPlot returns uPlot's options and data, or null when there is nothing
// to draw. readings: the API's items (any order); fired: ids of the readings
// that raised the alert; limits: [[name, value]].
export function buildPlot(kind, readings, fired, limits, width) {
  const pts = readings
    .filter((r) => r.observed_at)
    .map((r) => ({ ...r, t: Date.parse(r.observed_at) / 1000 }))
    .sort((a, b) => a.t - b.t);
  if (pts.length === 0) return null;
  const unit = pts[pts.length - 1].unit || "";
  const xs = pts.map((p) => p.t);
  const bp = kind === "blood_pressure";
  const fields = bp ? ["systolic", "diastolic"] : ["value"];
  const series = [{}];
  const data = [xs];
  for (const f of fields) {
    series.push({
      label: bp ? `${f[0].toUpperCase()}${f.slice(1)} (${unit})` : `${kindLabel(kind)} (${unit})`,
      stroke: COLOURS[f], width: 2, points: { show: true, size: 6 },
    });
    data.push(pts.map((p) => p[f] ?? null));
  }
  limits.forEach(([name, v], i) => {
    series.push({ label: `Threshold ${name.replaceAll("_", " ")} ${v}`, stroke: COLOURS.limit, width: 1.5,
      dash: DASHES[i % DASHES.length], points: { show: false } });
    data.push(xs.map(() => v));
  });
  const firedSet = new Set(fired);
  if (pts.some((p) => firedSet.has(p.id))) {
    series.push({ label: "Readings that fired", stroke: COLOURS.fired, width: 0, paths: () => null,
      points: { show: true, size: 11, width: 2, fill: "#fff" } });
    data.push(pts.map((p) => (firedSet.has(p.id) ? p[fields[0]] ?? null : null)));
  }
  const opts = {
    width, height: 260,
    scales: {
      x: {
        time: true,
        range: (u, min, max) => {
          const pad = Math.max(0, MIN_SPAN_S - (max - min)) / 2;
          return [min - pad, max + pad];
        },
      },
    },
    series,
    axes: [{}, { label: unit, size: 56 }],
    legend: { live: true },
    cursor: { drag: { x: true, y: false } },
  };
  return { opts, data, pts, unit };
}

// caption says in words what the plot shows, for screen readers and as a
// summary.
export function caption(kind, built, limits) {
  if (!built) return `No ${kindLabel(kind).toLowerCase()} readings to plot.`;
  const { pts, unit } = built;
  const last = pts[pts.length - 1];
  const value = kind === "blood_pressure" ? `${last.systolic}/${last.diastolic}` : `${last.value}`;
  const from = new Date(pts[0].t * 1000).toLocaleString();
  const lim = limits.length ? ` Thresholds: ${limits.map(([n, v]) => `${n.replaceAll("_", " ")} ${v}`).join(", ")}.`
    : " The rule has no fixed threshold.";
  return `${kindLabel(kind)}: ${pts.length} readings since ${from}; latest ${value} ${unit}.${lim}`;
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
    return Math.max(280, this.container.clientWidth || 600);
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
