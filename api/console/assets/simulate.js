// The rule page's simulation panel: before a change is saved, an admin or a
// care-team lead compares it with the active pack over the same synthetic
// patients (POST /v1/rules/simulate): needless pages per patient-week, and
// for each kind of deterioration the share caught and the median delay
// from the first reading that shows it to the page. The server runs one
// simulation at a time; a busy server is said plainly, with when to try
// again. Problems the server names a field for are shown next to it.

import { ApiError } from "./api.js";
import { el, errText } from "./dom.js";

const $ = (id) => document.getElementById(id);

// SIZES are the grids offered, smallest first: the first answers in a few
// seconds and is the default. Each stays within the server's 12,000
// patient-weeks per pack.
export const SIZES = {
  quick: { label: "Quick: 200 patients for 8 weeks, usual artefacts (a few seconds)", patients: 200, weeks: 8, profiles: ["normal"] },
  more: { label: "More patients: 1,000 for 8 weeks, usual artefacts (several seconds)", patients: 1000, weeks: 8, profiles: ["normal"] },
  artefacts: { label: "Every artefact profile: 400 patients for 8 weeks, usual, doubled and device artefacts (several seconds)",
    patients: 400, weeks: 8, profiles: ["normal", "double", "device"] },
};

const EVENTS = {
  copd_desaturation: "COPD desaturation",
  hf_decompensation: "Heart-failure decompensation",
  hypertensive_crisis: "Hypertensive crisis",
  hypoglycaemia: "Hypoglycaemia",
  hyperglycaemia: "Hyperglycaemia",
  fever_38_0_to_38_4: "Fever (38.0–38.4 °C)",
  tachycardia_120_130: "Tachycardia (120–130 /min)",
};
const PROFILES = { normal: "usual artefacts", double: "doubled artefacts", device: "device artefacts" };
const SIZE_FIELDS = ["patients", "weeks", "seeds", "profiles", "answer_rates"];

// simulateBody builds the request for a proposed change: the parameters
// edited in the rule's editor (edits: {rule, def, params: [{name, value,
// where}], values: {name: number}}, or null) and rules given as JSON text.
// It returns {body, sources}, sources[i] saying where rules[i] came from
// ("params" or "text"), or {problem: {target, text}} when there is nothing
// to propose or the text is not a rule. Pure.
export function simulateBody(edits, ruleText, size) {
  const grid = SIZES[size] || SIZES.quick;
  const body = { patients: grid.patients, weeks: grid.weeks, profiles: grid.profiles };
  const sources = [];
  if (edits) {
    const blank = edits.params.find((p) => p.name in edits.values && !Number.isFinite(edits.values[p.name]));
    if (blank) return { problem: { target: `param:${blank.name}`, text: "Give a number." } };
    const changed = edits.params.filter((p) => p.name in edits.values && edits.values[p.name] !== p.value);
    const inParams = changed.filter((p) => p.where === "params");
    if (inParams.length) body.params = { [edits.rule]: Object.fromEntries(inParams.map((p) => [p.name, edits.values[p.name]])) };
    const elsewhere = changed.filter((p) => p.where !== "params");
    if (elsewhere.length) {
      const def = structuredClone(edits.def);
      delete def.version;
      for (const p of elsewhere) {
        if (p.where) def[p.where] = { ...def[p.where], [p.name]: edits.values[p.name] };
        else def[p.name] = edits.values[p.name];
      }
      body.rules = [def];
      sources.push("params");
    }
  }
  if (ruleText.trim()) {
    let parsed;
    try {
      parsed = JSON.parse(ruleText);
    } catch (e) {
      return { problem: { target: "rule", text: `Not JSON: ${e.message}` } };
    }
    const list = Array.isArray(parsed) ? parsed : [parsed];
    if (!list.length || list.some((r) => !r || typeof r !== "object" || Array.isArray(r))) {
      return { problem: { target: "rule", text: "Give a rule object (or a list of them) in the rule language, as JSON." } };
    }
    body.rules = [...(body.rules || []), ...list];
    sources.push(...list.map(() => "text"));
  }
  if (!body.params && !body.rules) {
    return { problem: { target: "form", text: "Nothing to compare yet: change a rule's parameters (its Parameters button) or give a rule." } };
  }
  return { body, sources };
}

// fieldTarget says where a problem the server names a field for belongs:
// "param:<name>" (an input of the rule's editor), "rule" (the rule text),
// "size", or "form". Pure.
export function fieldTarget(field, paramNames, sources = []) {
  const last = field.split(".").pop();
  if (SIZE_FIELDS.some((f) => field === f || field.startsWith(`${f}[`))) return "size";
  if (field.startsWith("params.")) return paramNames.includes(last) ? `param:${last}` : "form";
  const m = /^rules\[(\d+)\]/.exec(field);
  if (m) {
    if (sources[Number(m[1])] === "text") return "rule";
    return paramNames.includes(last) ? `param:${last}` : "form";
  }
  return "form";
}

// busyText says plainly that the server is busy (503) and when to try
// again (its Retry-After). Pure.
export function busyText(err) {
  const wait = Number(err.retryAfter);
  const when = wait > 0 ? `Try again in ${wait} second${wait === 1 ? "" : "s"}.` : "Try again shortly.";
  return `The server is busy (${err.detail || err.title}). ${when}`;
}

const pct = (v) => `${(100 * v).toFixed(1)} %`;
const num = (n) => n.toLocaleString("en-GB");

// delayText is a median delay: minutes under an hour, else hours. Pure.
export function delayText(hours) {
  if (hours === null || hours === undefined) return "none caught";
  return hours < 1 ? `${Math.round(hours * 60)} min` : `${hours.toFixed(1)} h`;
}

// caughtText is the share of a kind of deterioration caught. Pure.
export function caughtText(e) {
  if (!e || !e.measurable) return "none in the cohort";
  return `${pct(e.sensitivity)} (${num(e.caught)} of ${num(e.measurable)})`;
}

// simulateRows turns an answer into what the result tables show, cell by
// cell: the needless pages (every patient, then COPD) and each kind of
// deterioration over every routine, current and proposed side by side.
// Pure.
export function simulateRows(res) {
  return (res.current || []).map((cur, i) => {
    const pro = res.proposed?.[i] || {};
    const copd = (c) => (c.programs || []).find((p) => p.program === "copd")?.per_patient_week ?? null;
    const events = (c) => new Map((c.events || []).filter((e) => e.routine === "all").map((e) => [e.type, e]));
    const ce = events(cur);
    const pe = events(pro);
    const cell = `${PROFILES[cur.profile] || cur.profile}, ${Math.round(cur.answer_rate * 100)} % of retakes answered`;
    return {
      cell,
      needless: [
        { label: `Every patient (${cell})`, current: cur.needless?.per_patient_week ?? null, proposed: pro.needless?.per_patient_week ?? null },
        { label: `COPD (${cell})`, current: copd(cur), proposed: copd(pro) },
      ],
      events: [...new Set([...ce.keys(), ...pe.keys()])].map((type) => ({
        type, label: EVENTS[type] || type, current: ce.get(type), proposed: pe.get(type),
      })),
    };
  });
}

function td(text, label, data) {
  return el("td", text, { dataset: { label, ...data } });
}

// Simulation drives the panel. getApi(): the signed-in Api; getEdits():
// the rule editor's proposed parameters, or null when it is closed.
export class Simulation {
  constructor(getApi, getEdits) {
    this.getApi = getApi;
    this.getEdits = getEdits;
    $("simulate-size").replaceChildren(...Object.entries(SIZES).map(([v, s]) => el("option", s.label, { value: v })));
    $("simulate-size").value = "quick";
    $("simulate-form").addEventListener("submit", (ev) => { ev.preventDefault(); this.run(); });
  }

  reset() {
    $("simulate-result").hidden = true;
    this.clearProblems();
    $("simulate-status").textContent = "";
  }

  clearProblems() {
    $("simulate-error").textContent = "";
    for (const e of document.querySelectorAll("[data-sim-error]")) e.textContent = "";
    for (const e of document.querySelectorAll("#section-rules [aria-invalid=true]")) e.removeAttribute("aria-invalid");
  }

  // problem shows a message next to its field (marked invalid) and
  // returns the field, or in the form's own error line.
  problem(target, text) {
    const [ids, control] = target.startsWith("param:") ? [`param-${target.slice(6)}-error`, `param-${target.slice(6)}`]
      : target === "rule" ? ["simulate-rule-error", "simulate-rule"]
        : target === "size" ? ["simulate-size-error", "simulate-size"] : ["simulate-error", null];
    const box = $(ids) || $("simulate-error");
    box.textContent = box.textContent ? `${box.textContent}; ${text}` : text;
    if (control && $(control)) $(control).setAttribute("aria-invalid", "true");
    return control && $(control);
  }

  async run() {
    this.clearProblems();
    const edits = this.getEdits();
    const { body, sources, problem } = simulateBody(edits, $("simulate-rule").value, $("simulate-size").value);
    const form = $("simulate-form");
    if (problem) {
      this.problem(problem.target, problem.text)?.focus();
      form.dataset.state = "refused";
      return;
    }
    const buttons = document.querySelectorAll("#simulate-run, #params-simulate");
    for (const b of buttons) b.disabled = true;
    const size = SIZES[$("simulate-size").value] || SIZES.quick;
    $("simulate-status").classList.add("loading");
    $("simulate-status").textContent = `Simulating ${num(size.patients * size.weeks * size.profiles.length)} patient-weeks with each pack…`;
    $("simulate-result").setAttribute("aria-busy", "true");
    form.dataset.state = "running";
    try {
      const res = await this.getApi().post("/v1/rules/simulate", body);
      this.render(res, body);
      form.dataset.state = "done";
    } catch (err) {
      this.refused(err, edits, sources);
    } finally {
      $("simulate-status").classList.remove("loading");
      $("simulate-result").removeAttribute("aria-busy");
      for (const b of buttons) b.disabled = false;
    }
  }

  // refused shows why the server did not simulate: busy, or the fields it
  // names, each next to its field.
  refused(err, edits, sources) {
    const form = $("simulate-form");
    if (err instanceof ApiError && err.status === 503) {
      $("simulate-status").textContent = busyText(err);
      form.dataset.state = "busy";
      return;
    }
    $("simulate-status").textContent = "";
    form.dataset.state = "refused";
    if (!(err instanceof ApiError) || !err.fields.length) {
      $("simulate-error").textContent = errText(err);
      return;
    }
    const names = (edits?.params || []).map((p) => p.name);
    let first = null;
    for (const f of err.fields) {
      const c = this.problem(fieldTarget(f.field, names, sources), `${f.field}: ${f.reason}`);
      first ||= c;
    }
    if (!$("simulate-error").textContent) $("simulate-error").textContent = `${err.title}: see the marked fields.`;
    first?.focus();
  }

  render(res, body) {
    const rows = simulateRows(res);
    const first = rows[0]?.needless[0];
    const pw = num(res.patients * res.weeks * res.seeds.length * res.profiles.length * res.answer_rates.length);
    $("simulate-status").textContent = `Simulated ${pw} patient-weeks with each pack in ${res.elapsed}` +
      (first?.current !== null && first?.proposed !== null
        ? `: needless pages per patient-week ${first.current.toFixed(3)} now, ${first.proposed.toFixed(3)} with the change.` : ".");
    $("simulate-summary").textContent = `Change: ${(res.changed || []).join(", ")}. ${num(res.patients)} synthetic patients per seed ` +
      `for ${res.weeks} weeks, every measurement routine; both packs see the same patients. Nothing was saved.`;
    $("simulate-needless").tBodies[0].replaceChildren(...rows.flatMap((r) => r.needless.map((n) => {
      const tr = el("tr");
      tr.append(el("th", n.label, { scope: "row" }),
        td(n.current === null ? "—" : n.current.toFixed(3), "Current pack", { pack: "current", value: String(n.current) }),
        td(n.proposed === null ? "—" : n.proposed.toFixed(3), "Proposed", { pack: "proposed", value: String(n.proposed) }));
      return tr;
    })));
    $("simulate-events").replaceChildren(...rows.map((r, i) => this.eventsTable(r, i)));
    const result = $("simulate-result");
    result.dataset.changed = (res.changed || []).join(" ");
    result.dataset.request = JSON.stringify(body);
    result.hidden = false;
  }

  eventsTable(r, i) {
    const t = el("table", null, { className: "grid", id: `simulate-events-${i}` });
    const head = el("tr");
    head.append(...["Deterioration", "Caught, current pack", "Caught, proposed", "Median delay, current pack", "Median delay, proposed"]
      .map((h) => el("th", h, { scope: "col" })));
    const thead = el("thead");
    thead.append(head);
    const body = el("tbody");
    body.append(...r.events.map((e) => {
      const tr = el("tr", null, { dataset: { event: e.type } });
      const d = (x) => ({ value: String(x?.sensitivity ?? ""), median: String(x?.median_hours ?? "") });
      tr.append(el("th", e.label, { scope: "row" }),
        td(caughtText(e.current), "Caught, current pack", { pack: "current", ...d(e.current) }),
        td(caughtText(e.proposed), "Caught, proposed", { pack: "proposed", ...d(e.proposed) }),
        td(delayText(e.current?.median_hours), "Median delay, current pack"),
        td(delayText(e.proposed?.median_hours), "Median delay, proposed"));
      return tr;
    }));
    t.append(el("caption", `Deteriorations caught, and the median delay from the first reading that shows one to the page (${r.cell})`), thead, body);
    return t;
  }
}
