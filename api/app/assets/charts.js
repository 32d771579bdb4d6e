// My readings: one chart per kind over the last 7, 30 or 90 days, with the
// patient's usual range shaded (the middle 80 % of their readings of the
// last 90 days), in the patient's units. Each chart has a sentence that
// says what it shows and a table of the readings, for screen readers and
// for anyone who prefers numbers.

import { KINDS, kind, unitFor, round, usualRange, describe } from "./units.js";
import { h, heading, errorText, when } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
const W = 640, H = 280, PAD = { l: 48, r: 12, t: 12, b: 28 };
const PERIODS = [7, 30, 90];

function s(tag, attrs = {}, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

// series splits readings (newest first, canonical) into the lines to draw,
// in the patient's unit, oldest first.
export function series(kindID, readings, prefs) {
  const u = unitFor(kindID, prefs);
  const pts = [...readings].reverse();
  const t = (r) => Date.parse(r.observed_at);
  if (kindID === "blood_pressure") {
    return [
      { name: "Top number", points: pts.map((r) => [t(r), r.systolic]) },
      { name: "Bottom number", points: pts.map((r) => [t(r), r.diastolic]) },
    ];
  }
  return [{ name: kind(kindID).label, points: pts.map((r) => [t(r), round(u.toUser(r.value), u.step)]) }];
}

async function fetchReadings(ctx, kindID, since) {
  const out = [];
  let cursor = "";
  for (let i = 0; i < 5; i++) {
    const q = new URLSearchParams({ kind: kindID, since: since.toISOString(), limit: "500" });
    if (cursor) q.set("cursor", cursor);
    const page = await ctx.api.get(`/v1/patients/${encodeURIComponent(ctx.patientID)}/readings?${q}`);
    out.push(...(page.items || []));
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  return out;
}

export async function render(ctx, main) {
  const p = ctx.prefs();
  let chosen = ctx.chartKind || "blood_pressure";
  let days = ctx.chartDays || 30;
  const area = h("div", { class: "chart-area", "aria-live": "polite" });
  const kindSel = h("select", { id: "chart-kind", onchange: () => { chosen = kindSel.value; ctx.chartKind = chosen; draw(); } },
    ...KINDS.map((k) => h("option", { value: k.id, selected: k.id === chosen, text: k.label })));
  const period = h("fieldset", { class: "period" }, h("legend", { text: "Show" }),
    ...PERIODS.map((d) => h("label", { class: "choice" },
      h("input", { type: "radio", name: "days", value: String(d), checked: d === days,
        onchange: () => { days = d; ctx.chartDays = d; draw(); } }), ` Last ${d} days`)));
  const cache = new Map();
  const draw = async () => {
    area.replaceChildren(h("p", { text: "Loading…" }));
    try {
      if (!cache.has(chosen)) cache.set(chosen, await fetchReadings(ctx, chosen, new Date(Date.now() - 90 * 86400000)));
      const all = cache.get(chosen);
      const since = Date.now() - days * 86400000;
      area.replaceChildren(chart(chosen, all, all.filter((r) => Date.parse(r.observed_at) >= since), days, p));
    } catch (err) {
      area.replaceChildren(h("p", { class: "error", text: errorText(err) }));
    }
  };
  main.append(heading("My readings"),
    h("div", { class: "card controls" }, h("div", { class: "field" }, h("label", { for: "chart-kind", text: "Reading" }), kindSel), period),
    area);
  await draw();
  return null;
}

// chart draws the readings of the period with the usual range of all
// (90 days) shaded.
function chart(kindID, all, shown, days, prefs) {
  const u = unitFor(kindID, prefs);
  const lines = series(kindID, shown, prefs);
  const bands = series(kindID, all, prefs).map((l) => usualRange(l.points.map((x) => x[1])));
  const label = `${kind(kindID).label}, last ${days} days`;
  if (shown.length === 0) {
    return h("section", { class: "card chart" }, h("h2", { text: label }), h("p", { text: "No readings in this time." }));
  }
  const values = lines.flatMap((l) => l.points.map((x) => x[1])).concat(bands.filter(Boolean).flatMap((b) => [b.low, b.high]));
  let lo = Math.min(...values), hi = Math.max(...values);
  if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
  const t1 = Date.now(), t0 = t1 - days * 86400000;
  const x = (t) => PAD.l + ((t - t0) / (t1 - t0)) * (W - PAD.l - PAD.r);
  const y = (v) => PAD.t + (1 - (v - lo) / (hi - lo)) * (H - PAD.t - PAD.b);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": `chart-title chart-desc`, class: "plot" });
  bands.forEach((b) => {
    if (b) svg.append(s("rect", { x: PAD.l, width: W - PAD.l - PAD.r, y: y(b.high), height: Math.max(1, y(b.low) - y(b.high)), class: "band" }));
  });
  for (const v of [lo, (lo + hi) / 2, hi]) {
    svg.append(s("text", { x: PAD.l - 6, y: y(v) + 4, "text-anchor": "end", class: "tick" }, String(round(v, u.step))));
  }
  svg.append(s("text", { x: PAD.l, y: H - 8, class: "tick" }, new Date(t0).toLocaleDateString()),
    s("text", { x: W - PAD.r, y: H - 8, "text-anchor": "end", class: "tick" }, "Today"));
  lines.forEach((l, i) => {
    svg.append(s("polyline", { points: l.points.map(([t, v]) => `${x(t)},${y(v)}`).join(" "), class: `line line-${i}` }));
    for (const [t, v] of l.points) svg.append(s("circle", { cx: x(t), cy: y(v), r: 4, class: `dot line-${i}` }));
  });
  const latest = shown[0];
  const band = bands.map((b) => (b ? `${round(b.low, u.step)} to ${round(b.high, u.step)}` : null));
  const usual = band.some(Boolean) ? `Your usual range (shaded): ${band.filter(Boolean).join(" over ")} ${u.label}.`
    : "Not enough readings yet to show your usual range.";
  const desc = `${shown.length} reading${shown.length === 1 ? "" : "s"}. Latest: ${describe(latest, prefs)}, ${when(latest.observed_at)}. ${usual}`;
  return h("section", { class: "card chart" }, h("h2", { id: "chart-title", text: label }), svg,
    h("p", { id: "chart-desc", text: desc }),
    h("details", {}, h("summary", { text: "Show the readings as a table" }),
      h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "When" }), h("th", { scope: "col", text: "Reading" }))),
        h("tbody", {}, ...shown.map((r) => h("tr", {}, h("td", { text: when(r.observed_at) }), h("td", { text: describe(r, prefs) })))))));
}
