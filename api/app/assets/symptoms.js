// Reporting how one feels: the symptoms the API knows, each with how bad it
// is (0 to 10), and a note. The report goes to the care team and appears
// in the thread with them.

import { SYMPTOMS, sentence } from "./units.js";
import { h, heading, errorText } from "./dom.js";

export async function render(ctx, main) {
  const result = h("div", { class: "result", role: "status", "aria-live": "polite" });
  const errors = h("div", { class: "error", role: "alert" });
  const rows = SYMPTOMS.map((s) => row(s));
  const note = h("textarea", { id: "sym-note", name: "note", rows: "3", maxlength: "2000" });
  const form = h("form", { class: "card", novalidate: true },
    h("fieldset", { class: "symptoms" }, h("legend", { text: "What are you feeling? Choose all that apply." }), ...rows.map((r) => r.el)),
    h("div", { class: "field" }, h("label", { for: "sym-note", text: "Anything else you want to tell your care team (optional)" }), note),
    h("button", { type: "submit", class: "primary" }, "Send to my care team"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    errors.textContent = "";
    const chosen = rows.filter((r) => r.box.checked);
    if (chosen.length === 0) {
      errors.textContent = "Please choose at least one symptom.";
      return;
    }
    const body = { symptoms: chosen.map((r) => r.value()) };
    if (note.value.trim()) body.note = note.value.trim();
    result.textContent = "Sending…";
    try {
      const res = await ctx.api.post(`/v1/patients/${encodeURIComponent(ctx.patientID)}/symptom-reports`, body);
      form.reset();
      rows.forEach((r) => r.sync());
      const critical = (res.alerts || []).some((a) => a.urgency === "critical");
      result.replaceChildren(h("p", { text: "Sent. Your care team can see it, and it is in your messages." }),
        critical ? h("p", { class: "urgent", text: "Your care team has been alerted. If you have chest pain or trouble breathing, call emergency services." }) : "",
        h("p", {}, h("a", { href: "#/messages" }, "Go to messages")));
    } catch (err) {
      result.textContent = "";
      errors.replaceChildren(h("p", { text: "Not sent." }),
        ...(err.fields?.length ? err.fields.map((f) => h("p", { text: sentence(f) })) : [h("p", { text: errorText(err) })]));
    }
  });
  main.append(heading("How I feel"),
    h("p", { text: "If you have chest pain or trouble breathing, call emergency services now." }), form, errors, result);
  return null;
}

// row is one symptom: a checkbox, and once checked, how bad it is (and
// for "Something else", what it is).
function row(s) {
  const id = `sym-${s.code}`;
  const box = h("input", { type: "checkbox", id, name: "symptom", value: s.code });
  const sev = h("select", { id: `${id}-sev` },
    ...Array.from({ length: 11 }, (_, i) => h("option", { value: String(i), selected: i === 5,
      text: i === 0 ? "0 – not at all" : i === 10 ? "10 – the worst" : String(i) })));
  const text = s.code === "other" ? h("input", { type: "text", id: `${id}-text`, maxlength: "500" }) : null;
  const more = h("div", { class: "more", hidden: true },
    h("label", { for: `${id}-sev`, text: `How bad is it? (${s.label})` }), sev,
    text ? h("label", { for: `${id}-text`, text: "What is it?" }) : null, text);
  const sync = () => { more.hidden = !box.checked; };
  box.addEventListener("change", sync);
  return {
    box, sync,
    el: h("div", { class: "symptom" }, h("label", { class: "choice", for: id }, box, ` ${s.label}`), more),
    value: () => {
      const v = { code: s.code, severity: Number(sev.value) };
      if (text && text.value.trim()) v.text = text.value.trim();
      return v;
    },
  };
}
