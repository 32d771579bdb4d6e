// Retake requests ("please measure again"): kept in IndexedDB from the
// answer to the reading that asked for one, and brought up to date from
// GET /v1/patients/{id}/retakes whenever there is a connection (a request
// may come from a cuff's reading, or be answered from another phone);
// shown with a countdown to the deadline, and answered by the next reading
// of the same kind (outbox.js).

import { retakes } from "./store.js";
import { kind, countdown } from "./units.js";
import { h } from "./dom.js";

// sync replaces the kept requests with the server's list; offline, the
// kept ones stand.
async function sync(ctx) {
  let server;
  try {
    server = (await ctx.api.get(`/v1/patients/${encodeURIComponent(ctx.patientID)}/retakes`)).items || [];
  } catch {
    return;
  }
  const kept = await retakes.all();
  const ids = new Set(server.map((r) => r.reading_id));
  await retakes.remove(kept.filter((r) => !ids.has(r.reading_id)).map((r) => r.reading_id));
  await retakes.add(server);
}

// waiting lists the retake requests whose deadline has not passed, soonest
// first, dropping the others.
export async function waiting(ctx, now = Date.now()) {
  if (ctx) await sync(ctx);
  const all = await retakes.all();
  const late = all.filter((r) => Date.parse(r.retake_by) <= now);
  if (late.length) await retakes.remove(late.map((r) => r.reading_id));
  return all.filter((r) => Date.parse(r.retake_by) > now).sort((a, b) => Date.parse(a.retake_by) - Date.parse(b.retake_by));
}

// cards renders the requests into root, each with a countdown (updated
// every second) and a button to measure again; it returns a stop function.
export function cards(root, list, onMeasure) {
  const timers = [];
  root.replaceChildren();
  for (const r of list) {
    const name = kind(r.kind)?.label.toLowerCase() || "measurement";
    const left = h("span", { class: "countdown" });
    const sr = h("span", { class: "sr-only", "aria-live": "polite" });
    const card = h("section", { class: "card retake", "aria-labelledby": `retake-${r.reading_id}` },
      h("h2", { id: `retake-${r.reading_id}`, text: "Please measure again" }),
      h("p", { text: `Your last ${name} reading needs checking. Sit quietly for a few minutes, then measure again.` }),
      h("p", { class: "deadline" }, "Time left: ", left, sr),
      h("button", { type: "button", class: "primary", onclick: () => onMeasure(r.kind) }, `Measure ${name} again`));
    root.append(card);
    const deadline = Date.parse(r.retake_by);
    let lastMinute = -1;
    const tick = () => {
      const now = Date.now();
      left.textContent = countdown(deadline, now);
      const minutes = Math.ceil((deadline - now) / 60000);
      // Screen readers hear the time left once a minute, not every second.
      if (minutes !== lastMinute) {
        lastMinute = minutes;
        sr.textContent = minutes > 0 ? ` (about ${minutes} minute${minutes === 1 ? "" : "s"})` : "";
      }
      if (now >= deadline) {
        left.textContent = "0:00";
        card.querySelector("button").remove();
        card.append(h("p", { text: "The time to measure again has passed. Your care team has been told about your first reading." }));
        clearInterval(t);
      }
    };
    const t = setInterval(tick, 1000);
    timers.push(t);
    tick();
  }
  return () => timers.forEach(clearInterval);
}
