// Unit tests of the console's DOM-free logic, run by `node --test` from
// api/console_test.go (TestConsoleModules).
import assert from "node:assert/strict";
import { test } from "node:test";
import { SSEParser } from "../assets/live.js";
import { buildPlot, thresholds } from "../assets/plot.js";
import { age, counts, order } from "../assets/queue.js";

test("SSE events split across chunks and line endings", () => {
  const p = new SSEParser();
  assert.deepEqual(p.push(": heartbeat\n\nid: 7\nevent: alert.cre"), []);
  assert.deepEqual(p.push("ated\r\ndata: {\"id\":\"a\"}\r\n\r\nevent: reset\ndata:\n"), [
    { type: "alert.created", data: "{\"id\":\"a\"}", id: "7" },
  ]);
  assert.deepEqual(p.push("\ndata: x\ndata: y\n\n"), [
    { type: "reset", data: "", id: null },
    { type: "message", data: "x\ny", id: null },
  ]);
});

test("queue order is urgency, then age, then id", () => {
  const items = [
    { id: "c", urgency: "high", created_at: "2026-01-01T10:00:00Z" },
    { id: "b", urgency: "critical", created_at: "2026-01-01T11:00:00Z" },
    { id: "a", urgency: "critical", created_at: "2026-01-01T11:00:00Z" },
    { id: "d", urgency: "critical", created_at: "2026-01-01T09:00:00Z" },
    { id: "e", urgency: "low", created_at: "2026-01-01T08:00:00Z" },
  ];
  assert.deepEqual(order(items).map((a) => a.id), ["d", "a", "b", "c", "e"]);
});

test("counts come from the server when it sends them, else from the items", () => {
  const items = [{ urgency: "critical" }, { urgency: "critical" }, { urgency: "low" }];
  assert.deepEqual(counts({ items }), { critical: 2, high: 0, medium: 0, low: 1 });
  assert.deepEqual(counts({ items, counts: { urgency: { critical: 9, high: 1 } } }),
    { critical: 9, high: 1, medium: 0, low: 0 });
  assert.deepEqual(counts({ items, counts: { critical: 4, medium: 2 } }), { critical: 4, high: 0, medium: 2, low: 0 });
});

test("ages read as a person would say them", () => {
  const now = Date.parse("2026-01-02T12:00:00Z");
  assert.equal(age("2026-01-02T11:59:30Z", now), "30 s");
  assert.equal(age("2026-01-02T11:15:00Z", now), "45 min");
  assert.equal(age("2026-01-02T09:30:00Z", now), "2 h 30 min");
  assert.equal(age("2025-12-30T12:00:00Z", now), "3 d");
});

test("thresholds are the limit parameters only", () => {
  assert.deepEqual(thresholds({ min: 88, min_now: 85, drop: 3, window: 4, systolic_max: 180 }),
    [["min", 88], ["min_now", 85], ["systolic_max", 180]]);
  assert.deepEqual(thresholds(undefined), []);
});

test("the plot has one series per field, per threshold, and the fired readings", () => {
  const r = (id, t, sys, dia) => ({ id, kind: "blood_pressure", systolic: sys, diastolic: dia, unit: "mm[Hg]", observed_at: t });
  const built = buildPlot("blood_pressure",
    [r("2", "2026-01-01T12:00:00Z", 190, 100), r("1", "2026-01-01T10:00:00Z", 130, 80)], ["2"], [["systolic_max", 180]], 600);
  assert.deepEqual(built.data[0], [Date.parse("2026-01-01T10:00:00Z") / 1000, Date.parse("2026-01-01T12:00:00Z") / 1000]);
  assert.deepEqual(built.data.slice(1), [[130, 190], [80, 100], [180, 180], [null, 190]]);
  assert.equal(built.opts.series.length, 5);
  const [lo, hi] = built.opts.scales.x.range(null, 100, 100);
  assert.equal(hi - lo, 3600);
  assert.equal(buildPlot("spo2", [], [], [], 600), null);
});

test("reminders: schedules with their adherence, recent due doses newest first", async () => {
  const { summarise, scheduleLabel } = await import("../assets/reminders.js");
  const schedules = [
    { id: "s1", type: "medication", medication: "Furosemide", dose: "40 mg", times: ["08:00", "20:00"], paused: false },
    { id: "s2", type: "measurement", kind: "body_weight", times: ["07:30"], days_of_week: ["mon", "wed"], paused: true },
  ];
  const now = new Date("2026-12-01T12:00:00Z");
  const doses = [
    { id: "d1", schedule_id: "s1", due_at: "2026-12-01T08:00:00Z", status: "missed" },
    { id: "d2", schedule_id: "s1", due_at: "2026-11-30T20:00:00Z", status: "taken" },
    { id: "d3", schedule_id: "s1", due_at: "2026-12-01T20:00:00Z", status: "pending" }, // not due yet
    { id: "d4", schedule_id: "s2", due_at: "2026-12-01T07:30:00Z", status: "taken" },
  ];
  const adherence = {
    since: "2026-11-01T12:00:00Z",
    schedules: [{ schedule_id: "s1", due: 2, taken: 1, skipped: 0, missed: 1, pending: 0, percentage: 50 }],
    total: { due: 3, taken: 2, skipped: 0, missed: 1, pending: 0, percentage: 66.7 },
  };
  const out = summarise(schedules, doses, adherence, now);
  assert.equal(scheduleLabel(schedules[0]), "Furosemide 40 mg");
  assert.equal(scheduleLabel(schedules[1]), "Measure weight");
  assert.deepEqual(out.rows.map((r) => [r.label, r.times, r.paused, r.adherence]), [
    ["Furosemide 40 mg", "08:00, 20:00", false, "1 of 2 taken (50 %), 1 missed"],
    ["Measure weight", "07:30 (mon, wed)", true, "0 of 0 taken (no dose decided yet)"],
  ]);
  assert.deepEqual(out.recent.map((d) => [d.id, d.label, d.statusText]), [
    ["d1", "Furosemide 40 mg", "Missed"],
    ["d4", "Measure weight", "Taken"],
    ["d2", "Furosemide 40 mg", "Taken"],
  ]);
  assert.match(out.total, /^2 of 3 decided doses taken \(66\.7 %\)/);
});

test("team editor: the PUT body, with empty deadlines left out", async () => {
  const { teamBody, policyText } = await import("../assets/admin.js");
  const body = teamBody({
    name: "Cardiology", timezone: "Europe/London", members: [{ user_id: "u1", role: "lead" }],
    deadlines: { critical: " 5m ", high: "30m", medium: "", low: "" }, levels: "on_call, leads,, all",
    repeats: { critical: "", high: "", medium: "", low: "" }, onCall: [],
  });
  assert.deepEqual(body, {
    name: "Cardiology", timezone: "Europe/London", members: [{ user_id: "u1", role: "lead" }], on_call: [],
    escalation: { ack_deadlines: { critical: "5m", high: "30m" }, levels: ["on_call", "leads", "all"] },
  });
  assert.equal(teamBody({ name: "x", timezone: "", members: [], deadlines: {}, levels: "", repeats: {}, onCall: [] }).escalation, undefined);
  assert.equal(policyText(body.escalation), "critical 5m, high 30m; levels on_call → leads → all");
  assert.equal(policyText(undefined), "None");
});

test("rule parameters: found in params, delta, event or the rule itself, and written back there", async () => {
  const { ruleParams, withParams } = await import("../assets/admin.js");
  const delta = { id: "w", version: 3, delta: { window: "1d6h", rise: 1.4 }, bounds: { rise: [0.5, 3] } };
  assert.deepEqual(ruleParams(delta), [{ name: "rise", value: 1.4, where: "delta", bounds: [0.5, 3] }]);
  assert.deepEqual(withParams(delta, { rise: 2 }), { id: "w", delta: { window: "1d6h", rise: 2 }, bounds: { rise: [0.5, 3] } });
  const symptom = { id: "c", min_severity: 1, bounds: { min_severity: [1, 10] } };
  assert.equal(withParams(symptom, { min_severity: 4 }).min_severity, 4);
  const event = { id: "m", event: { type: "missed_dose", count: 2, window: "3d" }, bounds: { count: [1, 10] } };
  assert.deepEqual(withParams(event, { count: 1 }).event, { type: "missed_dose", count: 1, window: "3d" });
  const plain = { id: "s", params: { min: 88, min_now: 85 }, bounds: { min: [75, 94], min_now: [70, 90] } };
  assert.deepEqual(ruleParams(plain).map((p) => [p.name, p.value, p.where]), [["min", 88, "params"], ["min_now", 85, "params"]]);
  assert.deepEqual(withParams(plain, { min: 90 }).params, { min: 90, min_now: 85 });
  assert.equal(plain.params.min, 88, "the original is left alone");
});

test("thread view logic: merge by id in sequence order, labels, symptom lines, throttle", async () => {
  const { attachmentLabel, merge, roleLabel, sizeLabel, symptomLines, Throttle } = await import("../assets/thread.js");
  const shown = [{ id: "a", seq: 1 }, { id: "b", seq: 2 }];
  assert.deepEqual(merge(shown, [{ id: "d", seq: 4 }, { id: "b", seq: 2, body: "again" }, { id: "c", seq: 3 }]).map((m) => m.id),
    ["a", "b", "c", "d"]);
  assert.equal(roleLabel("patient"), "Patient");
  assert.equal(roleLabel("clinician"), "Clinician");
  assert.equal(sizeLabel(820), "820 bytes");
  assert.equal(sizeLabel(1536), "1.5 KB");
  assert.equal(sizeLabel(3 * 1024 * 1024), "3.0 MB");
  assert.equal(attachmentLabel({ content_type: "image/png", size: 68 }), "PNG image, 68 bytes");
  assert.deepEqual(symptomLines({ symptoms: [{ code: "shortness_of_breath", severity: 7 }, { code: "other", severity: 2, text: "itch" }] }),
    ["Shortness of breath: severity 7 of 10", "Other (itch): severity 2 of 10"]);
  let now = 0;
  const t = new Throttle(3000, () => now);
  assert.equal(t.ready(), true);
  now = 2999;
  assert.equal(t.ready(), false);
  now = 3000;
  assert.equal(t.ready(), true);
});

test("live thread events are handed on, parsed", async () => {
  const { Live } = await import("../assets/live.js");
  const got = [];
  const live = new Live(null, { onChange: () => {}, onMode: () => {}, onThread: (type, data) => got.push([type, data.thread_id]) });
  live.dispatch({ type: "message.created", data: "{\"thread_id\":\"t1\",\"message_id\":\"m\"}" });
  live.dispatch({ type: "typing", data: "{\"thread_id\":\"t2\",\"user_id\":\"u\"}" });
  live.dispatch({ type: "message.read", data: "not json" });
  live.dispatch({ type: "reset", data: "" });
  assert.deepEqual(got, [["message.created", "t1"], ["typing", "t2"], ["resync", undefined]]);
});

test("broadcast progress in words", async () => {
  const { broadcastText } = await import("../assets/admin.js");
  assert.equal(broadcastText({ status: "running", total: 10, done: 3, failed: 0 }), "Sending: 3 of 10 patients have the message, none failed.");
  assert.equal(broadcastText({ status: "completed", total: 10, done: 9, failed: 1 }), "Completed: 9 of 10 patients have the message, 1 failed.");
});
