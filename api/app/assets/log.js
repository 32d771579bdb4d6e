// Logging a reading: one of the seven kinds, in the patient's units, with
// the plausible range as a hint. The reading goes through the outbox (kept
// on the phone until the server accepts it); the API's field errors are
// shown next to their fields, in words. A reading that asks for a retake
// shows the request at once, with its countdown.

import { KINDS, kind, range, unitFor, checkValue, toReading } from "./units.js";
import { h, heading, errorText } from "./dom.js";
import { waiting, cards } from "./retake.js";
import { outbox } from "./store.js";

export async function render(ctx, main, { retake } = {}) {
  const p = ctx.prefs();
  const pending = await waiting(ctx);
  const retakeArea = h("div", { class: "stack" });
  const result = h("div", { class: "result", role: "status", "aria-live": "polite" });
  const form = h("form", { class: "card reading", novalidate: true });
  let stopCards = () => {};
  let chosen = (retake && pending[0]?.kind) || ctx.lastKind || "blood_pressure";

  const showRetakes = async (list) => {
    stopCards();
    stopCards = cards(retakeArea, list, (k) => { chosen = k; build(); form.querySelector("input")?.focus(); });
  };

  const picker = h("fieldset", { class: "kinds" }, h("legend", { text: "What did you measure?" }),
    ...KINDS.map((k) => h("label", { class: "tile" },
      h("input", { type: "radio", name: "kind", value: k.id, checked: k.id === chosen,
        onchange: () => { chosen = k.id; ctx.lastKind = k.id; build(); } }),
      h("span", { text: k.label }))));

  const build = () => {
    for (const r of picker.querySelectorAll("input")) r.checked = r.value === chosen;
    form.replaceChildren(...fields(chosen, p), whenField(), h("button", { type: "submit", class: "primary" }, "Save reading"));
  };

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    await submit(ctx, form, chosen, p, result, showRetakes);
  });

  main.append(heading(retake ? "Measure again" : "Log a reading"), retakeArea, picker, form, result);
  build();
  await showRetakes(pending);
  if (retake && pending.length === 0) {
    result.textContent = "If you were asked to measure again, please take the measurement now and log it here.";
  }
  return () => stopCards();
}

function fields(kindID, prefs) {
  const u = unitFor(kindID, prefs);
  return kind(kindID).fields.map((f) => {
    const r = range(kindID, f.name, prefs);
    const id = `f-${f.name}`;
    return h("div", { class: "field" },
      h("label", { for: id, text: `${f.label} (${u.label})` }),
      h("p", { id: `${id}-hint`, class: "hint", text: `Usually between ${r.min} and ${r.max} ${r.unit}.` }),
      h("input", { id, name: f.name, type: "text", inputmode: "decimal", autocomplete: "off", required: true,
        "aria-describedby": `${id}-hint ${id}-error` }),
      h("p", { id: `${id}-error`, class: "field-error" }));
  });
}

function whenField() {
  const earlier = h("input", { id: "f-observed_at", name: "observed_at", type: "datetime-local", hidden: true,
    "aria-describedby": "f-observed_at-error" });
  const toggle = (on) => { earlier.hidden = !on; if (on) earlier.focus(); };
  return h("fieldset", { class: "when" }, h("legend", { text: "When did you measure?" }),
    h("label", { class: "choice" }, h("input", { type: "radio", name: "when", value: "now", checked: true, onchange: () => toggle(false) }), " Just now"),
    h("label", { class: "choice" }, h("input", { type: "radio", name: "when", value: "earlier", onchange: () => toggle(true) }), " Earlier"),
    h("label", { for: "f-observed_at", class: "sr-only", text: "Date and time of the reading" }), earlier,
    h("p", { id: "f-observed_at-error", class: "field-error" }));
}

// showErrors puts each problem under its field and returns the list.
function showErrors(form, errors) {
  for (const e of form.querySelectorAll(".field-error")) e.textContent = "";
  for (const i of form.querySelectorAll("[aria-invalid]")) i.removeAttribute("aria-invalid");
  for (const e of errors) {
    const input = form.querySelector(`[name="${e.name}"]`) || form.querySelector("input");
    input.setAttribute("aria-invalid", "true");
    const slot = form.querySelector(`#${input.id}-error`);
    if (slot) slot.textContent = slot.textContent ? `${slot.textContent} ${e.text}` : e.text;
  }
  form.querySelector("[aria-invalid]")?.focus();
}

async function submit(ctx, form, kindID, prefs, result, showRetakes) {
  const values = Object.fromEntries(new FormData(form));
  const local = kind(kindID).fields.map((f) => ({ name: f.name, text: checkValue(kindID, f.name, values[f.name] ?? "", prefs) }))
    .filter((e) => e.text);
  const at = values.when === "earlier" && values.observed_at ? new Date(values.observed_at) : new Date();
  if (values.when === "earlier" && (!values.observed_at || Number.isNaN(at.getTime()))) {
    local.push({ name: "observed_at", text: "Please choose the date and time of the reading." });
  }
  showErrors(form, local);
  if (local.length) {
    result.textContent = "Please check the highlighted answers.";
    return;
  }
  const reading = toReading(kindID, values, prefs, at.toISOString(), `app:${crypto.randomUUID()}`);
  result.textContent = "Saving…";
  const out = await ctx.sender.queue(reading);
  const refused = out.rejected.get(reading.source_id);
  if (refused) {
    // The server said why: the patient corrects the form, so the refused
    // copy leaves the outbox.
    await outbox.remove([reading.source_id]);
    showErrors(form, refused.map((e) => ({ name: e.field.split(".").pop(), text: e.text })));
    result.textContent = "The reading was not saved. Please check the highlighted answers.";
    return;
  }
  if (!out.accepted.includes(reading.source_id)) {
    result.textContent = out.error?.status && out.error.status !== 503 && out.error.status !== 429
      ? `Saved on this phone; it will be sent again later (${errorText(out.error)}).`
      : "Saved on this phone. It will be sent when you are back online.";
    form.reset();
    return;
  }
  form.reset();
  await explain(ctx, out.result, reading, result, showRetakes);
}

// explain says what the server made of the reading.
async function explain(ctx, res, reading, result, showRetakes) {
  const mine = res.retakes.filter((r) => r.kind === reading.kind);
  const critical = res.alerts.some((a) => a.urgency === "critical");
  const lines = [];
  if (mine.length) lines.push("Saved. This reading needs checking: please measure again (see above).");
  else if (res.answered.length) lines.push("Saved. Thank you for measuring again: your care team will look at both readings.");
  else lines.push("Saved. Thank you.");
  if (critical) lines.push("Your care team has been alerted. If you have chest pain or trouble breathing, call emergency services.");
  result.replaceChildren(...lines.map((t, i) => h("p", { class: i && critical ? "urgent" : "", text: t })));
  await showRetakes(await waiting(ctx));
  if (mine.length) document.querySelector(".retake h2")?.setAttribute("tabindex", "-1");
  if (mine.length) document.querySelector(".retake h2")?.focus();
  ctx.announce(lines.join(" "));
}
