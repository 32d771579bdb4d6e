// Home: requests to measure again (with their countdown), readings still
// on the phone (and any the server refused, with its reasons), unread
// messages, and the ways in.

import { h, heading } from "./dom.js";
import { waiting, cards } from "./retake.js";
import { outbox } from "./store.js";
import { kind, entered } from "./units.js";

export async function render(ctx, main) {
  const retakeArea = h("div", { class: "stack" });
  const queued = h("section", { class: "card", "aria-labelledby": "queue-h", id: "queue", hidden: true });
  const unread = h("span", { id: "unread" });
  const go = (href, text, extra) => h("li", {}, h("a", { class: "big", href }, text, extra || ""));
  main.append(heading("Hello"), retakeArea, queued,
    h("nav", { "aria-label": "What would you like to do?" }, h("ul", { class: "menu" },
      go("#/log", "Log a reading"), go("#/messages", "Messages", unread), go("#/symptoms", "Tell us how you feel"),
      go("#/reminders", "Medicines and reminders"), go("#/readings", "My readings"))));
  let stopCards = cards(retakeArea, await waiting(ctx), (k) => { ctx.lastKind = k; ctx.nav("retake"); });
  const drawQueue = async () => {
    const items = await ctx.sender.pending();
    queued.hidden = items.length === 0;
    const bad = items.filter((it) => it.errors);
    const ok = items.length - bad.length;
    queued.replaceChildren(h("h2", { id: "queue-h", text: "Readings on this phone" }),
      ok ? h("p", { text: `${ok} reading${ok === 1 ? " is" : "s are"} waiting to be sent. They are sent as soon as there is a connection.` }) : "",
      ...bad.map((it) => h("div", { class: "refused" },
        h("p", { text: `Not accepted: ${kind(it.reading.kind).label}, ${entered(it.reading)}` }),
        ...it.errors.map((e) => h("p", { class: "error", text: e.text })),
        h("button", { type: "button", onclick: async () => { await outbox.remove([it.reading.source_id]); drawQueue(); } }, "Remove it"))));
  };
  const onSent = async () => {
    stopCards();
    stopCards = cards(retakeArea, await waiting(ctx), (k) => { ctx.lastKind = k; ctx.nav("retake"); });
    drawQueue();
  };
  ctx.events.addEventListener("outbox", drawQueue);
  ctx.events.addEventListener("sent", onSent);
  await drawQueue();
  try {
    const threads = (await ctx.api.get("/v1/threads?limit=100")).items || [];
    const n = threads.reduce((a, t) => a + (t.unread_count || 0), 0);
    unread.textContent = n ? ` (${n} new)` : "";
  } catch {
    // offline: no count
  }
  return () => {
    stopCards();
    ctx.events.removeEventListener("outbox", drawQueue);
    ctx.events.removeEventListener("sent", onSent);
  };
}
