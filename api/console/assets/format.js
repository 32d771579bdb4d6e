// Clinical display: values in the units clinicians write, at clinical
// precision, and dates in one format from the browser's locale. Pure (no
// DOM): unit-tested in Node.
//
// The API stores readings in canonical units (mm[Hg], %, /min, kg, Cel,
// mg/dL). Glucose and temperature are shown in the user's preferred unit.

export const MGDL_PER_MMOLL = 18.0156;

// KINDS: how each kind is named, written and rounded. step is the precision
// in the shown unit.
const KINDS = {
  blood_pressure: { name: "Blood pressure", unit: "mmHg", step: 1 },
  heart_rate: { name: "Pulse", unit: "/min", step: 1 },
  spo2: { name: "SpO₂", unit: "%", step: 1 },
  respiratory_rate: { name: "Respiratory rate", unit: "/min", step: 1 },
  body_weight: { name: "Weight", unit: "kg", step: 0.1 },
  body_temperature: { name: "Temperature", unit: "°C", step: 0.1 },
  blood_glucose: { name: "Glucose", unit: "mmol/L", step: 0.1 },
};

// defaultPrefs picks units from the locale: mg/dL and °F in the United
// States, mmol/L and °C elsewhere.
export function defaultPrefs(locale = globalThis.navigator?.language || "en-GB") {
  const us = /-US$/i.test(locale) || locale === "en";
  return { glucose: us ? "mg/dL" : "mmol/L", temperature: us ? "°F" : "°C" };
}

// kindName names a kind of reading.
export function kindName(kind) {
  return KINDS[kind]?.name || String(kind || "reading").replaceAll("_", " ");
}

// unitFor is the unit a kind is shown in.
export function unitFor(kind, prefs = defaultPrefs()) {
  if (kind === "blood_glucose") return prefs.glucose === "mg/dL" ? "mg/dL" : "mmol/L";
  if (kind === "body_temperature") return prefs.temperature === "°F" ? "°F" : "°C";
  return KINDS[kind]?.unit || "";
}

// stepFor is the precision a kind is shown at.
export function stepFor(kind, prefs = defaultPrefs()) {
  if (kind === "blood_glucose" && unitFor(kind, prefs) === "mg/dL") return 1;
  return KINDS[kind]?.step ?? 0.1;
}

// convert turns a canonical value of a kind into the shown unit.
export function convert(kind, value, prefs = defaultPrefs()) {
  if (value === null || value === undefined || !Number.isFinite(Number(value))) return null;
  const v = Number(value);
  if (kind === "blood_glucose" && unitFor(kind, prefs) === "mmol/L") return v / MGDL_PER_MMOLL;
  if (kind === "body_temperature" && unitFor(kind, prefs) === "°F") return v * 9 / 5 + 32;
  return v;
}

// round rounds to a kind's precision (a number, for plotting).
export function round(kind, value, prefs = defaultPrefs()) {
  if (value === null) return null;
  const step = stepFor(kind, prefs);
  return step >= 1 ? Math.round(value) : Math.round(value * 10) / 10;
}

// number writes a converted value at a kind's precision.
export function number(kind, value, prefs = defaultPrefs()) {
  const v = round(kind, value, prefs);
  if (v === null) return "—";
  return stepFor(kind, prefs) >= 1 ? String(v) : v.toFixed(1);
}

// valueText writes a reading's value with its unit: "84 %", "184/121 mmHg",
// "3.2 mmol/L". r: {kind, value, systolic?, diastolic?} in canonical units.
export function valueText(r, prefs = defaultPrefs()) {
  if (!r) return "";
  const unit = unitFor(r.kind, prefs);
  const n = (v) => number(r.kind, convert(r.kind, v, prefs), prefs);
  return r.kind === "blood_pressure" ? `${n(r.systolic)}/${n(r.diastolic)} ${unit}` : `${n(r.value)} ${unit}`;
}

// readingText names the kind and states the value: "SpO₂ 84 %".
export function readingText(r, prefs = defaultPrefs()) {
  return r ? `${kindName(r.kind)} ${valueText(r, prefs)}` : "";
}

// thresholdText writes a rule parameter that limits a kind's value. A
// parameter of a glucose or temperature rule is in the canonical unit.
export function thresholdText(kind, value, prefs = defaultPrefs()) {
  return `${number(kind, convert(kind, value, prefs), prefs)} ${unitFor(kind, prefs)}`;
}

// paramLabel names a threshold parameter for people: "systolic_max" →
// "systolic above", "min_now" → "below (now)".
export function paramLabel(name) {
  const m = /^(?:(.*)_)?(min|max)(_now)?$/.exec(name);
  if (!m) return name.replaceAll("_", " ");
  const what = m[1] ? `${m[1].replaceAll("_", " ")} ` : "";
  return `${what}${m[2] === "min" ? "below" : "above"}${m[3] ? " (now)" : ""}`;
}

// Dates: one format, the browser's locale, through Intl.DateTimeFormat.
const formats = new Map();
function formatter(opts, timeZone) {
  const key = JSON.stringify([opts, timeZone || ""]);
  if (!formats.has(key)) formats.set(key, new Intl.DateTimeFormat(undefined, timeZone ? { ...opts, timeZone } : opts));
  return formats.get(key);
}

// dateTime writes an instant as a date and time ("7 Dec 2026, 08:12").
export function dateTime(iso, timeZone) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "—" : formatter({ dateStyle: "medium", timeStyle: "short" }, timeZone).format(d);
}

// dateOnly writes an instant's date ("7 Dec 2026").
export function dateOnly(iso, timeZone) {
  if (!iso) return "—";
  return formatter({ dateStyle: "medium" }, timeZone).format(new Date(iso));
}

// timeOnly writes an instant's time of day ("08:12").
export function timeOnly(iso, timeZone) {
  if (!iso) return "—";
  return formatter({ timeStyle: "short" }, timeZone).format(new Date(iso));
}

// zoneOffsetMs is how far the wall clock of timeZone is ahead of UTC at
// instant ms.
function zoneOffsetMs(ms, timeZone) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-US", {
    timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  const wall = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
  return wall - Math.floor(ms / 1000) * 1000;
}

// zonedMidnight returns the instant (ISO) at which a calendar date
// ("2026-03-29") begins in timeZone: what "since that date" means to a team
// in that zone.
export function zonedMidnight(date, timeZone = "UTC") {
  const [y, m, d] = date.split("-").map(Number);
  const guess = Date.UTC(y, m - 1, d);
  let t = guess - zoneOffsetMs(guess, timeZone);
  t = guess - zoneOffsetMs(t, timeZone); // once more across a DST change
  return new Date(t).toISOString();
}

// zonedDate is the calendar date ("2026-03-29") of an instant in timeZone.
export function zonedDate(ms, timeZone = "UTC") {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-US", {
    timeZone, year: "numeric", month: "2-digit", day: "2-digit",
  }).formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day}`;
}

// axisLabels writes a time axis's ticks (seconds) in the locale's format:
// times of day, with the date under the first tick of each day, for a span
// of up to two days; dates beyond that.
export function axisLabels(ticks, spanS, timeZone) {
  const day = (t) => formatter({ day: "numeric", month: "short" }, timeZone).format(new Date(t * 1000));
  if (spanS > 2 * 86400) return ticks.map(day);
  const time = (t) => formatter({ hour: "2-digit", minute: "2-digit" }, timeZone).format(new Date(t * 1000));
  return ticks.map((t, i) => (i === 0 || day(t) !== day(ticks[i - 1]) ? `${time(t)}\n${day(t)}` : time(t)));
}
