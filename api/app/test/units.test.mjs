// Unit tests of the patient app's DOM-free logic, run by `go test ./api/`
// (TestAppModules) with Node's own test runner.
import test from "node:test";
import assert from "node:assert/strict";
import { range, checkValue, toReading, describe, sentence, readingIndex, usualRange, countdown, adherenceText, unitFor, entered }
  from "../assets/units.js";
import { idleLimit, isIdle } from "../assets/lock.js";
import { fileType, receiptText } from "../assets/thread.js";
import { whatLabel } from "../assets/reminders.js";
import { series } from "../assets/charts.js";

test("plausible ranges in the patient's units, rounded inwards", () => {
  assert.deepEqual(range("spo2", "value", {}), { min: 50, max: 100, unit: "%" });
  assert.deepEqual(range("blood_glucose", "value", { blood_glucose: "mmol/L" }), { min: 0.6, max: 55.5, unit: "mmol/L" });
  assert.deepEqual(range("body_weight", "value", { body_weight: "lb" }), { min: 1.2, max: 1102.3, unit: "lb" });
  assert.deepEqual(range("body_temperature", "value", { body_temperature: "F" }), { min: 77, max: 113, unit: "°F" });
  assert.deepEqual(range("blood_pressure", "systolic", {}), { min: 40, max: 300, unit: "mmHg" });
});

test("values are checked against the range, in words", () => {
  assert.equal(checkValue("spo2", "value", "97", {}), "");
  assert.match(checkValue("spo2", "value", "", {}), /enter a number/);
  assert.match(checkValue("spo2", "value", "abc", {}), /enter a number/);
  assert.match(checkValue("spo2", "value", "101", {}), /outside the possible range \(50 to 100 %\)/);
  assert.equal(checkValue("body_temperature", "value", "37,5", {}), "");
});

test("a reading is sent in the unit the patient used", () => {
  const r = toReading("body_weight", { value: "180.5" }, { body_weight: "lb" }, "2026-12-07T08:00:00Z", "app:1");
  assert.deepEqual(r, { kind: "body_weight", unit: "[lb_av]", value: 180.5, observed_at: "2026-12-07T08:00:00Z", source_id: "app:1" });
  const bp = toReading("blood_pressure", { systolic: "184", diastolic: "121" }, {}, "t", "s");
  assert.equal(bp.unit, "mm[Hg]");
  assert.equal(bp.systolic, 184);
  assert.equal(entered(r), "180.5 lb");
});

test("stored readings are shown in the patient's unit", () => {
  assert.equal(describe({ kind: "body_weight", value: 81.6466266 }, { body_weight: "lb" }), "180 lb");
  assert.equal(describe({ kind: "blood_glucose", value: 90.078 }, { blood_glucose: "mmol/L" }), "5 mmol/L");
  assert.equal(describe({ kind: "body_temperature", value: 37 }, { body_temperature: "F" }), "98.6 °F");
  assert.equal(describe({ kind: "blood_pressure", systolic: 142, diastolic: 91 }, {}), "142/91 mmHg");
  assert.ok(Math.abs(unitFor("body_temperature", { body_temperature: "F" }).fromUser(98.6) - 37) < 1e-9);
});

test("the API's field errors in words", () => {
  assert.equal(sentence({ field: "readings[0].systolic", reason: "must be greater than diastolic" }),
    "Top number (systolic): must be greater than diastolic.");
  assert.equal(sentence({ field: "symptoms[1].severity", reason: "Must be between 0 and 10" }), "How bad: must be between 0 and 10.");
  assert.equal(readingIndex("readings[12].value"), 12);
  assert.equal(readingIndex("observed_at"), -1);
});

test("usual range is the middle 80 % and needs five readings", () => {
  assert.equal(usualRange([1, 2, 3, 4]), null);
  assert.deepEqual(usualRange([10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110]), { low: 20, high: 100 });
});

test("countdown, adherence, lock", () => {
  assert.equal(countdown(600000, 1000), "9:59");
  assert.equal(countdown(0, 1000), "0:00");
  assert.equal(adherenceText({ due: 6, taken: 4, skipped: 1, missed: 1, pending: 0, percentage: 67 }), "4 of 6 taken (67 %), 1 missed, 1 skipped.");
  assert.equal(adherenceText({ due: 0, taken: 0, skipped: 0, missed: 0 }), "Nothing to count yet.");
  assert.equal(idleLimit({ idle_lock_seconds: 300 }, {}), 300000);
  assert.equal(idleLimit({ idle_lock_seconds: 300 }, { lock_minutes: 2 }), 120000);
  assert.equal(idleLimit({ idle_lock_seconds: 300 }, { lock_minutes: 30 }), 300000, "the patient may shorten the lock, never lengthen it");
  assert.ok(isIdle(0, 300000, 300000));
  assert.ok(!isIdle(1, 300000, 300000));
  assert.ok(!isIdle(NaN, 300000, 300000));
});

test("attachments, receipts, reminders, chart series", () => {
  assert.equal(fileType("IMG_0001.HEIC", ""), "image/heic");
  assert.equal(fileType("scan.pdf", "application/pdf"), "application/pdf");
  assert.equal(fileType("notes.txt", "text/plain"), "");
  assert.equal(receiptText([{ status: "delivered" }, { status: "read" }]), "Read");
  assert.equal(receiptText([{ status: "sent" }]), "Sent");
  assert.equal(receiptText(undefined), "Sent");
  assert.equal(whatLabel({ type: "medication" }, { medication: "Furosemide", dose: "40 mg" }), "Furosemide, 40 mg");
  assert.equal(whatLabel({ type: "measurement", kind: "body_weight" }, null), "Measure your weight");
  const s = series("blood_pressure", [{ observed_at: "2026-12-02T00:00:00Z", systolic: 130, diastolic: 85 },
    { observed_at: "2026-12-01T00:00:00Z", systolic: 120, diastolic: 80 }], {});
  assert.deepEqual(s.map((l) => l.points.map((p) => p[1])), [[120, 130], [80, 85]]);
});
