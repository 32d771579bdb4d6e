// Today's medicines and measurements, with Taken / Skip for each medicine
// dose that is due, and how many doses were taken over the last 7 and 30
// days.

import { kind, adherenceText } from "./units.js";
import { h, heading, errorText, when } from "./dom.js";

const STATUS = { pending: "To do", taken: "Taken", skipped: "Skipped", missed: "Missed", cancelled: "Cancelled" };

function dayBounds(now = new Date()) {
  const start = new Date(now.getFullYear(), now.getMonth(), now.getDate());
  const end = new Date(start);
  end.setDate(end.getDate() + 1);
  return [start, end];
}

// whatLabel names a dose: the medicine and amount, or the measurement.
export function whatLabel(dose, schedule) {
  if (dose.type === "measurement") return `Measure your ${(kind(dose.kind || schedule?.kind)?.label || "reading").toLowerCase()}`;
  if (!schedule) return "Medicine";
  return [schedule.medication, schedule.dose].filter(Boolean).join(", ");
}

export async function render(ctx, main) {
  const base = `/v1/patients/${encodeURIComponent(ctx.patientID)}`;
  const [start, end] = dayBounds();
  const week = new Date(Date.now() - 7 * 86400000);
  const q = new URLSearchParams({ since: start.toISOString(), until: end.toISOString(), limit: "100" });
  const adh7 = h("dd", { id: "adh-7" }), adh30 = h("dd", { id: "adh-30" });
  // The counts change as doses are confirmed.
  const adherence = async () => {
    const [a7, a30] = await Promise.all([ctx.api.get(`${base}/adherence?since=${encodeURIComponent(week.toISOString())}`),
      ctx.api.get(`${base}/adherence`)]);
    adh7.textContent = adherenceText(a7.total);
    adh30.textContent = adherenceText(a30.total);
  };
  const [doses, schedules] = await Promise.all([ctx.api.get(`${base}/doses?${q}`), ctx.api.get(`${base}/schedules`), adherence()]);
  const byID = new Map((schedules.items || []).map((s) => [s.id, s]));
  const list = h("ul", { class: "doses" });
  const items = (doses.items || []).filter((d) => d.status !== "cancelled");
  for (const d of items) list.append(doseItem(ctx, d, byID.get(d.schedule_id), adherence));
  main.append(heading("Medicines and reminders"),
    h("section", { class: "card", "aria-labelledby": "today-h" }, h("h2", { id: "today-h", text: "Today" }),
      items.length ? list : h("p", { text: "Nothing is planned for today." })),
    h("section", { class: "card", "aria-labelledby": "adh-h" }, h("h2", { id: "adh-h", text: "How it went" }),
      h("dl", { class: "adherence" },
        h("dt", { text: "Last 7 days" }), adh7, h("dt", { text: "Last 30 days" }), adh30)));
  return null;
}

function doseItem(ctx, d, schedule, refresh) {
  const what = whatLabel(d, schedule);
  const state = h("p", { class: "dose-status", text: STATUS[d.status] || d.status });
  const msg = h("p", { class: "result", role: "status" });
  const li = h("li", { class: `dose ${d.status}`, "data-id": d.id },
    h("p", { class: "dose-what" }, h("strong", { text: what }), ` · ${d.time || when(d.due_at)}`), state, msg);
  if (d.type === "medication" && d.status === "pending") {
    const buttons = h("div", { class: "row" });
    const act = async (status) => {
      msg.textContent = "Saving…";
      try {
        const done = await ctx.api.post(`/v1/doses/${encodeURIComponent(d.id)}/confirm`, { status });
        state.textContent = STATUS[done.status] || done.status;
        li.className = `dose ${done.status}`;
        buttons.remove();
        msg.textContent = status === "taken" ? "Saved: taken." : "Saved: skipped.";
        await refresh().catch(() => {});
      } catch (err) {
        msg.textContent = errorText(err);
      }
    };
    buttons.append(
      h("button", { type: "button", class: "primary", onclick: () => act("taken") }, "Taken", h("span", { class: "sr-only", text: `: ${what} at ${d.time}` })),
      h("button", { type: "button", onclick: () => act("skipped") }, "Skip", h("span", { class: "sr-only", text: `: ${what} at ${d.time}` })));
    li.append(buttons);
  } else if (d.type === "measurement" && d.status === "pending") {
    li.append(h("a", { class: "button", href: "#/log", onclick: () => { ctx.lastKind = d.kind; } }, "Log it now"));
  }
  return li;
}
