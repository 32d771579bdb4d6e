// The patient's reminders in the alert pane: schedules with their adherence,
// and the recent doses. The summary is pure (unit-tested in Node); render
// writes it into the page.

import { dateOnly, dateTime } from "./format.js";

const KIND_NAMES = {
  blood_pressure: "Blood pressure",
  body_weight: "Weight",
  spo2: "SpO₂",
  heart_rate: "Heart rate",
  blood_glucose: "Blood glucose",
  body_temperature: "Temperature",
  respiratory_rate: "Respiratory rate",
  peak_flow: "Peak flow",
};

const STATUS_NAMES = { pending: "Pending", taken: "Taken", skipped: "Skipped", missed: "Missed", cancelled: "Cancelled" };

// scheduleLabel names a schedule: the medication and its dose, or the
// measurement asked for.
export function scheduleLabel(s) {
  if (!s) return "Unknown schedule";
  if (s.type === "medication") return [s.medication, s.dose].filter(Boolean).join(" ") || "Medication";
  const kind = KIND_NAMES[s.kind] || (s.kind ? s.kind.replaceAll("_", " ") : "");
  return kind ? `Measure ${kind.toLowerCase()}` : "Measurement";
}

function percent(p) {
  return p === null || p === undefined ? "no dose decided yet" : `${p} %`;
}

// summarise joins the three answers: one row per schedule (what, when,
// adherence), and the recent doses, newest first, that are already due
// (at most limit).
export function summarise(schedules, doses, adherence, now = new Date(), limit = 10) {
  const byID = new Map((schedules || []).map((s) => [s.id, s]));
  const adh = new Map((adherence?.schedules || []).map((a) => [a.schedule_id, a]));
  const rows = (schedules || []).map((s) => {
    const a = adh.get(s.id) || { due: 0, taken: 0, skipped: 0, missed: 0, pending: 0, percentage: null };
    const days = Array.isArray(s.days_of_week) && s.days_of_week.length ? ` (${s.days_of_week.join(", ")})` : "";
    return {
      id: s.id,
      label: scheduleLabel(s),
      type: s.type,
      times: `${(s.times || []).join(", ")}${days}`,
      paused: !!s.paused,
      adherence: `${a.taken} of ${a.taken + a.skipped + a.missed} taken (${percent(a.percentage)})` +
        (a.missed ? `, ${a.missed} missed` : "") + (a.skipped ? `, ${a.skipped} skipped` : ""),
      percentage: a.percentage ?? null,
    };
  });
  const recent = (doses || [])
    .filter((d) => new Date(d.due_at) <= now)
    .sort((x, y) => new Date(y.due_at) - new Date(x.due_at))
    .slice(0, limit)
    .map((d) => ({
      id: d.id,
      due_at: d.due_at,
      label: scheduleLabel(byID.get(d.schedule_id)),
      status: d.status,
      statusText: STATUS_NAMES[d.status] || d.status,
    }));
  const t = adherence?.total;
  const total = t ? `${t.taken} of ${t.taken + t.skipped + t.missed} decided doses taken (${percent(t.percentage)}) since ${dateOnly(adherence.since)}` : "";
  return { rows, recent, total };
}

function cell(tag, text, cls) {
  const e = document.createElement(tag);
  e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

// render writes a summary into the reminders block's elements.
export function render({ table, doses, total, empty }, summary) {
  const body = table.tBodies[0];
  body.replaceChildren(...summary.rows.map((r) => {
    const tr = document.createElement("tr");
    tr.dataset.scheduleId = r.id;
    tr.append(cell("th", r.label), cell("td", r.times), cell("td", r.paused ? "Paused" : "Active"), cell("td", r.adherence));
    tr.firstChild.scope = "row";
    return tr;
  }));
  table.hidden = summary.rows.length === 0;
  empty.hidden = summary.rows.length > 0;
  doses.replaceChildren(...summary.recent.map((d) => {
    const li = cell("li", `${dateTime(d.due_at)} — ${d.label}: `);
    li.dataset.status = d.status;
    li.append(cell("span", d.statusText, `dose dose-${d.status}`));
    return li;
  }));
  if (!summary.recent.length) doses.replaceChildren(cell("li", "No dose due yet."));
  total.textContent = summary.total;
}

// missedDoses names the missed doses behind a missed-dose (or missed-
// measurement) alert: those decided missed within the rule's window up to
// the alert's latest event, newest first, each with its medication and
// dose and the scheduled local time. Pure.
export function missedDoses(alert, def, schedules, doses) {
  const ev = def?.event;
  if (!ev || !["missed_dose", "missed_measurement"].includes(ev.type)) return [];
  const type = ev.type === "missed_dose" ? "medication" : "measurement";
  const hours = /^(\d+(?:\.\d+)?)h$/.exec(ev.window || "")?.[1];
  const windowMs = (hours ? Number(hours) : 72) * 3600000;
  const end = Date.parse(alert.last_observed_at) + 1000;
  const byID = new Map((schedules || []).map((s) => [s.id, s]));
  return (doses || [])
    .filter((d) => d.status === "missed" && d.type === type)
    .filter((d) => {
      const at = Date.parse(d.decided_at || d.due_at);
      return at <= end && at >= end - windowMs - 1000;
    })
    .sort((x, y) => Date.parse(y.due_at) - Date.parse(x.due_at))
    .map((d) => ({ id: d.id, label: scheduleLabel(byID.get(d.schedule_id)), date: d.date, time: d.time, due_at: d.due_at }));
}
