// The clinical vocabulary the app needs, in plain words: the seven kinds of
// reading with the units a patient may choose, their plausible ranges (the
// API's, converted), the symptoms a patient can report, and the words for
// the API's field names. No DOM: api/app/test/units.test.mjs tests it in
// Node.

// Units a patient may choose, per kind that has a choice. "api" is the
// unit sent to the API; "factor" converts the canonical value (what the API
// stores and returns) to this unit.
export const UNITS = {
  blood_glucose: [
    { id: "mg/dL", api: "mg/dL", label: "mg/dL", factor: 1, step: 1 },
    { id: "mmol/L", api: "mmol/L", label: "mmol/L", factor: 1 / 18.0156, step: 0.1 },
  ],
  body_weight: [
    { id: "kg", api: "kg", label: "kg", factor: 1, step: 0.1 },
    { id: "lb", api: "[lb_av]", label: "lb", factor: 1 / 0.45359237, step: 0.1 },
  ],
  body_temperature: [
    { id: "C", api: "Cel", label: "°C", step: 0.1 },
    { id: "F", api: "[degF]", label: "°F", step: 0.1 },
  ],
};

// KINDS lists the kinds in the order the app offers them. min and max are
// the API's plausible range in the canonical unit.
export const KINDS = [
  { id: "blood_pressure", label: "Blood pressure", unit: "mmHg", api: "mm[Hg]", step: 1,
    fields: [
      { name: "systolic", label: "Top number (systolic)", min: 40, max: 300 },
      { name: "diastolic", label: "Bottom number (diastolic)", min: 20, max: 200 },
    ] },
  { id: "heart_rate", label: "Pulse", unit: "beats per minute", api: "/min", step: 1,
    fields: [{ name: "value", label: "Pulse", min: 20, max: 300 }] },
  { id: "spo2", label: "Oxygen level (SpO₂)", unit: "%", api: "%", step: 1,
    fields: [{ name: "value", label: "Oxygen level", min: 50, max: 100 }] },
  { id: "body_weight", label: "Weight", units: "body_weight",
    fields: [{ name: "value", label: "Weight", min: 0.5, max: 500 }] },
  { id: "body_temperature", label: "Temperature", units: "body_temperature",
    fields: [{ name: "value", label: "Temperature", min: 25, max: 45 }] },
  { id: "respiratory_rate", label: "Breathing rate", unit: "breaths per minute", api: "/min", step: 1,
    fields: [{ name: "value", label: "Breaths per minute", min: 2, max: 80 }] },
  { id: "blood_glucose", label: "Blood sugar (glucose)", units: "blood_glucose",
    fields: [{ name: "value", label: "Blood sugar", min: 10, max: 1000 }] },
];

export function kind(id) {
  return KINDS.find((k) => k.id === id);
}

// unitFor returns the unit the patient uses for a kind: {label, api,
// step, toUser(canonical), fromUser(value)}. prefs maps a units group to a
// unit id ("lb", "mmol/L", "F").
export function unitFor(kindID, prefs = {}) {
  const k = kind(kindID);
  if (!k.units) {
    return { label: k.unit, api: k.api, step: k.step, toUser: (v) => v, fromUser: (v) => v };
  }
  const choices = UNITS[k.units];
  const u = choices.find((c) => c.id === prefs[k.units]) || choices[0];
  if (k.units === "body_temperature") {
    const f = u.id === "F";
    return { label: u.label, api: u.api, step: u.step, toUser: (c) => (f ? c * 9 / 5 + 32 : c),
      fromUser: (v) => (f ? (v - 32) * 5 / 9 : v) };
  }
  return { label: u.label, api: u.api, step: u.step, toUser: (c) => c * u.factor, fromUser: (v) => v / u.factor };
}

// round keeps the precision a patient reads: whole numbers for large
// values, one decimal otherwise.
export function round(v, step = 1) {
  const digits = step < 1 ? 1 : 0;
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

// range is a field's plausible range in the patient's unit, rounded
// inwards so that both ends are accepted by the API.
export function range(kindID, field, prefs) {
  const f = kind(kindID).fields.find((x) => x.name === field);
  const u = unitFor(kindID, prefs);
  const a = u.toUser(f.min), b = u.toUser(f.max);
  const step = u.step < 1 ? 0.1 : 1;
  const lo = Math.ceil(Math.min(a, b) / step - 1e-9) * step;
  const hi = Math.floor(Math.max(a, b) / step + 1e-9) * step;
  return { min: round(lo, u.step), max: round(hi, u.step), unit: u.label };
}

// checkValue returns a plain reason when text is not a plausible value of
// the field, or "" when it is.
export function checkValue(kindID, field, text, prefs) {
  const r = range(kindID, field, prefs);
  if (String(text).trim() === "") return "Please enter a number.";
  const v = Number(String(text).replace(",", "."));
  if (!Number.isFinite(v)) return "Please enter a number, such as " + r.min + ".";
  if (v < r.min || v > r.max) return `This is outside the possible range (${r.min} to ${r.max} ${r.unit}). Please check it.`;
  return "";
}

// toReading builds the API body of one reading from the form's values
// (text, in the patient's unit).
export function toReading(kindID, values, prefs, observedAt, sourceID) {
  const u = unitFor(kindID, prefs);
  const num = (t) => Number(String(t).replace(",", "."));
  const r = { kind: kindID, unit: u.api, observed_at: observedAt, source_id: sourceID };
  for (const f of kind(kindID).fields) r[f.name] = num(values[f.name]);
  return r;
}

// describe says a stored reading (canonical values) in the patient's unit:
// "142/91 mmHg", "71.2 kg".
export function describe(reading, prefs) {
  const u = unitFor(reading.kind, prefs);
  if (reading.kind === "blood_pressure") return `${round(reading.systolic)}/${round(reading.diastolic)} ${u.label}`;
  return `${round(u.toUser(reading.value), u.step)} ${u.label}`;
}

// entered says a reading as it was sent (in the unit the patient used).
export function entered(r) {
  if (r.kind === "blood_pressure") return `${r.systolic}/${r.diastolic} mmHg`;
  const k = kind(r.kind);
  const u = k.units ? UNITS[k.units].find((x) => x.api === r.unit) : null;
  return `${r.value} ${u ? u.label : k.unit}`;
}

// SYMPTOMS are the codes the API accepts, in plain words.
export const SYMPTOMS = [
  ["chest_pain", "Chest pain"], ["shortness_of_breath", "Shortness of breath"], ["dizziness", "Dizziness"],
  ["fainting", "Fainting"], ["swelling", "Swelling"], ["palpitations", "Racing or pounding heart"],
  ["headache", "Headache"], ["confusion", "Confusion"], ["nausea", "Feeling sick (nausea)"], ["fatigue", "Tiredness"],
  ["fever", "Fever"], ["cough", "Cough"], ["bleeding", "Bleeding"], ["vision_change", "Changes in vision"],
  ["weakness_one_side", "Weakness on one side"], ["other", "Something else"],
].map(([code, label]) => ({ code, label }));

export function symptomLabel(code) {
  const s = SYMPTOMS.find((x) => x.code === code);
  return s ? s.label : code;
}

// FIELD_WORDS name the API's fields for people.
const FIELD_WORDS = {
  value: "Reading", systolic: "Top number (systolic)", diastolic: "Bottom number (diastolic)", unit: "Unit",
  observed_at: "Time", kind: "Kind of reading", source_id: "Reading", body: "Message", note: "Note",
  symptoms: "Symptoms", severity: "How bad", text: "Description", code: "Symptom", status: "Answer", at: "Time",
};

// fieldName strips the position from a field path ("readings[0].systolic"
// → "systolic", "symptoms[1].severity" → "severity") and returns it with
// its words.
export function fieldName(path) {
  const last = String(path).split(".").pop().replace(/\[\d+\]$/, "");
  return { name: last, words: FIELD_WORDS[last] || last.replaceAll("_", " ") };
}

// sentence turns one API field error into a sentence for people: the
// API's reason, after the field's name in words.
export function sentence(err) {
  const f = fieldName(err.field);
  const reason = String(err.reason || "").replace(/^./, (c) => c.toLowerCase());
  return `${f.words}: ${reason}.`.replace(/\.\.$/, ".");
}

// readingIndex returns i for a path "readings[i].…", or -1.
export function readingIndex(path) {
  const m = /^readings\[(\d+)\]/.exec(String(path));
  return m ? Number(m[1]) : -1;
}

// usualRange is the middle 80 % (10th to 90th percentile) of values, or
// null with fewer than 5 values: the band the charts shade.
export function usualRange(values) {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length < 5) return null;
  const q = (p) => {
    const i = (v.length - 1) * p;
    const lo = Math.floor(i), hi = Math.ceil(i);
    return v[lo] + (v[hi] - v[lo]) * (i - lo);
  };
  return { low: q(0.1), high: q(0.9) };
}

// countdown says the time left until deadline (ms since epoch) as "9:05".
export function countdown(deadline, now) {
  const s = Math.max(0, Math.ceil((deadline - now) / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

// adherenceText says an adherence summary in words.
export function adherenceText(sum) {
  const decided = sum ? sum.taken + sum.skipped + sum.missed : 0;
  if (!decided) return "Nothing to count yet.";
  const pct = sum.percentage ?? Math.round((100 * sum.taken) / decided);
  let t = `${sum.taken} of ${decided} taken (${pct} %)`;
  if (sum.missed) t += `, ${sum.missed} missed`;
  if (sum.skipped) t += `, ${sum.skipped} skipped`;
  return t + ".";
}
