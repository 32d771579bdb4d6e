// Unit tests of the console's DOM-free logic, run by `node --test` from
// api/console_test.go (TestConsoleModules).
import assert from "node:assert/strict";
import { test } from "node:test";
import { SSEParser } from "../assets/live.js";
import { axisLabels, dateTime, defaultPrefs, paramLabel, readingText, unitFor, valueText, zonedDate, zonedMidnight } from "../assets/format.js";
import { buildPlot, caption, defaultRange, thresholds } from "../assets/plot.js";
import { age, counts, matchName, order, rowFacts } from "../assets/queue.js";

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

test("the plot: one series per field, thresholds across the whole axis, the fired reading, in the user's units", () => {
  const r = (id, t, sys, dia) => ({ id, kind: "blood_pressure", systolic: sys, diastolic: dia, unit: "mm[Hg]", observed_at: t });
  const built = buildPlot("blood_pressure",
    [r("2", "2026-01-01T12:00:00Z", 190, 100), r("1", "2026-01-01T10:00:00Z", 130, 80)], ["2"], [["systolic_max", 180]], {});
  const t1 = Date.parse("2026-01-01T10:00:00Z") / 1000;
  const t2 = Date.parse("2026-01-01T12:00:00Z") / 1000;
  assert.equal(built.range, "24h");
  assert.deepEqual(built.data[0].slice(1, 3), [t1, t2]);
  const [start, end] = [built.data[0][0], built.data[0][3]];
  assert.ok(end > t2 && Math.abs(end - start - 86400) < 1e-6, "the axis spans the whole range");
  assert.deepEqual(built.opts.scales.x.range(), [start, end]);
  assert.deepEqual(built.data.slice(1), [[null, 130, 190, null], [null, 80, 100, null], [180, 180, 180, 180], [null, null, 190, null]]);
  assert.equal(built.opts.series.length, 5);
  assert.equal(built.opts.series[3].label, "Threshold: systolic above 180 mmHg");
  assert.equal(built.opts.legend.live, false, "the legend is readable without hovering");
  assert.equal(buildPlot("spo2", [], [], [], {}), null);
  // Glucose in mmol/L: values and thresholds converted and rounded to 0.1.
  const g = buildPlot("blood_glucose", [{ id: "g", kind: "blood_glucose", value: 57.64992, unit: "mg/dL", observed_at: "2026-01-01T10:00:00Z" }],
    ["g"], [["min", 70]], { prefs: { glucose: "mmol/L", temperature: "°C" } });
  assert.deepEqual(g.data[1], [null, 3.2, null]);
  assert.equal(g.opts.series[1].label, "Glucose (mmol/L)");
  assert.equal(g.opts.series[2].label, "Threshold: below 3.9 mmol/L");
  const cap = caption("blood_glucose", g, [["min", 70]], { prefs: { glucose: "mmol/L" },
    firing: { id: "g", kind: "blood_glucose", value: 57.64992, observed_at: "2026-01-01T10:00:00Z" } });
  assert.match(cap, /Fired on Glucose 3\.2 mmol\/L at /);
  assert.match(cap, /Thresholds: below 3\.9 mmol\/L\./);
  assert.doesNotMatch(cap, /57\.6|Latest/, "the caption states the value that fired, not a raw or second value");
});

test("the range is chosen from the data: the shortest showing five readings (or all there are)", () => {
  const at = (h) => ({ id: String(h), kind: "spo2", value: 95, observed_at: new Date(Date.UTC(2026, 0, 31) - h * 3600000).toISOString() });
  assert.equal(defaultRange([at(0), at(2), at(5)]), "24h");
  assert.equal(defaultRange([0, 1, 2, 30, 40, 50].map(at)), "7d");
  assert.equal(defaultRange([0, 100, 200, 300, 400, 500].map(at)), "30d");
  assert.equal(defaultRange([]), "24h");
});

test("units and precision as clinicians write them", () => {
  const mmol = { glucose: "mmol/L", temperature: "°C" };
  const us = { glucose: "mg/dL", temperature: "°F" };
  assert.equal(valueText({ kind: "spo2", value: 84.4 }), "84 %");
  assert.equal(valueText({ kind: "heart_rate", value: 71.6 }), "72 /min");
  assert.equal(valueText({ kind: "respiratory_rate", value: 18.2 }), "18 /min");
  assert.equal(valueText({ kind: "blood_pressure", systolic: 184, diastolic: 121.4 }), "184/121 mmHg");
  assert.equal(valueText({ kind: "body_weight", value: 81.26 }), "81.3 kg");
  assert.equal(valueText({ kind: "blood_glucose", value: 57.64992 }, mmol), "3.2 mmol/L");
  assert.equal(valueText({ kind: "blood_glucose", value: 57.64992 }, us), "58 mg/dL");
  assert.equal(valueText({ kind: "blood_glucose", value: 126 }, mmol), "7.0 mmol/L");
  assert.equal(valueText({ kind: "body_temperature", value: 38.25 }, mmol), "38.3 °C");
  assert.equal(valueText({ kind: "body_temperature", value: 38 }, us), "100.4 °F");
  assert.equal(readingText({ kind: "spo2", value: 80 }), "SpO₂ 80 %");
  assert.equal(paramLabel("systolic_max"), "systolic above");
  assert.equal(paramLabel("min_now"), "below (now)");
  assert.deepEqual(defaultPrefs("en-US"), us);
  assert.deepEqual(defaultPrefs("en-GB"), mmol);
  assert.equal(unitFor("blood_pressure"), "mmHg");
});

test("dates: one locale format; a date's midnight in a team's zone", () => {
  assert.equal(dateTime("2026-12-07T08:12:00Z", "UTC"),
    new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short", timeZone: "UTC" }).format(new Date("2026-12-07T08:12:00Z")));
  assert.equal(dateTime(null), "—");
  assert.equal(zonedMidnight("2026-12-07", "America/Chicago"), "2026-12-07T06:00:00.000Z");
  assert.equal(zonedMidnight("2026-03-30", "Europe/London"), "2026-03-29T23:00:00.000Z");
  assert.equal(zonedMidnight("2026-03-29", "Europe/London"), "2026-03-29T00:00:00.000Z");
  assert.equal(zonedMidnight("2026-12-07", "Asia/Kolkata"), "2026-12-06T18:30:00.000Z");
  assert.equal(zonedDate(Date.parse("2026-12-07T03:00:00Z"), "America/Chicago"), "2026-12-06");
  const t = (iso) => Date.parse(iso) / 1000;
  const day = (iso) => new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", timeZone: "UTC" }).format(new Date(iso));
  const hm = (iso) => new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", timeZone: "UTC" }).format(new Date(iso));
  assert.deepEqual(axisLabels([t("2026-12-06T20:00:00Z"), t("2026-12-06T22:00:00Z"), t("2026-12-07T00:00:00Z")], 86400, "UTC"),
    [`${hm("2026-12-06T20:00:00Z")}\n${day("2026-12-06T20:00:00Z")}`, hm("2026-12-06T22:00:00Z"), `${hm("2026-12-07T00:00:00Z")}\n${day("2026-12-07T00:00:00Z")}`]);
  assert.deepEqual(axisLabels([t("2026-12-01T00:00:00Z")], 7 * 86400, "UTC"), [day("2026-12-01T00:00:00Z")]);
});

test("queue rows name the patient, the value that fired, assignee and unread messages; the name filter", () => {
  const a = { id: "a", patient_name: "Sam Lee", title: "Oxygen saturation critically low", status: "open", urgency: "critical",
    created_at: "2026-01-02T11:45:00Z", assigned_to: "u2", assigned_to_name: "Dr Ada Osei", unread_messages: 2,
    last_reading: { kind: "spo2", value: 84, unit: "%" } };
  const f = rowFacts(a, { now: Date.parse("2026-01-02T12:00:00Z"), me: "u1" });
  assert.deepEqual(f, { who: "Sam Lee", title: "Oxygen saturation critically low", value: "SpO₂ 84 %", status: "open",
    age: "raised 15 min ago", assignee: "Assigned to Dr Ada Osei", unread: "2 unread messages" });
  assert.equal(rowFacts({ ...a, assigned_to: "u1" }, { me: "u1" }).assignee, "Assigned to you");
  assert.equal(rowFacts({ ...a, assigned_to: null, unread_messages: 0 }, {}).unread, "");
  const items = [a, { ...a, id: "b", patient_name: "Zoë Ärnström" }];
  assert.deepEqual(matchName(items, "sam").map((x) => x.id), ["a"]);
  assert.deepEqual(matchName(items, "zoe arn").map((x) => x.id), ["b"]);
  assert.equal(matchName(items, " ").length, 2);
});

test("a missed-dose alert names the medication and the dose time", async () => {
  const { missedDoses } = await import("../assets/reminders.js");
  const schedules = [{ id: "s1", type: "medication", medication: "Furosemide", dose: "40 mg" }];
  const doses = [
    { id: "d1", schedule_id: "s1", type: "medication", status: "missed", date: "2026-01-02", time: "08:00",
      due_at: "2026-01-02T08:00:00Z", decided_at: "2026-01-02T09:00:00Z" },
    { id: "d2", schedule_id: "s1", type: "medication", status: "missed", date: "2026-01-01", time: "20:00",
      due_at: "2026-01-01T20:00:00Z", decided_at: "2026-01-01T21:00:00Z" },
    { id: "d3", schedule_id: "s1", type: "medication", status: "taken", date: "2026-01-01", time: "08:00",
      due_at: "2026-01-01T08:00:00Z", decided_at: "2026-01-01T09:00:00Z" },
    { id: "d4", schedule_id: "s1", type: "medication", status: "missed", date: "2025-12-20", time: "08:00",
      due_at: "2025-12-20T08:00:00Z", decided_at: "2025-12-20T09:00:00Z" },
  ];
  const def = { event: { type: "missed_dose", count: 2, window: "72h" } };
  const got = missedDoses({ last_observed_at: "2026-01-02T09:00:00Z" }, def, schedules, doses);
  assert.deepEqual(got.map((d) => [d.label, d.time, d.date]), [["Furosemide 40 mg", "08:00", "2026-01-02"], ["Furosemide 40 mg", "20:00", "2026-01-01"]]);
  assert.deepEqual(missedDoses({ last_observed_at: "2026-01-02T09:00:00Z" }, { kind: "spo2" }, schedules, doses), []);
});

test("patient form: a new patient's body, and only what changed for an edit", async () => {
  const { patientBody } = await import("../assets/patients.js");
  const form = { name: " Sam Lee ", timezone: "Europe/London", team: "t1", external: "", programs: ["hypertension"] };
  assert.deepEqual(patientBody(form, null), { display_name: "Sam Lee", timezone: "Europe/London", care_team_id: "t1", programs: ["hypertension"] });
  const before = { display_name: "Sam Lee", timezone: "Europe/London", care_team_id: "t1", programs: ["hypertension"] };
  assert.deepEqual(patientBody({ ...form, timezone: "America/Chicago", programs: ["hypertension", "diabetes"] }, before),
    { timezone: "America/Chicago", programs: ["hypertension", "diabetes"] });
  assert.deepEqual(patientBody({ ...form, external: "mrn-1" }, before), { external_id: "mrn-1" });
});

test("audit query: newest first, whole days in the zone, the last day included", async () => {
  const { auditQuery } = await import("../assets/audit.js");
  const q = auditQuery({ actorID: "u1", since: "2026-12-01", until: "2026-12-07" }, "Europe/London");
  assert.equal(q.get("order"), "newest");
  assert.equal(q.get("actor_id"), "u1");
  assert.equal(q.get("since"), "2026-12-01T00:00:00.000Z");
  assert.equal(q.get("until"), "2026-12-08T00:00:00.000Z");
  assert.equal(auditQuery({}, "UTC").has("patient_id"), false);
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
  const skip = teamBody({ name: "x", timezone: "", members: [], deadlines: {}, levels: "", repeats: {}, onCall: [], skipOffline: true });
  assert.deepEqual(skip.escalation, { ack_deadlines: {}, levels: [], skip_offline_first_step: true });
  assert.equal(policyText({ ack_deadlines: { critical: "5m" }, levels: ["on_call"], skip_offline_first_step: true }),
    "critical 5m; levels on_call; offline clinicians paged from step 1");
});

test("presence on the team page: online, away, offline with when, and not shown", async () => {
  const { presenceText } = await import("../assets/presence.js");
  assert.equal(presenceText({ state: "online", last_seen: "2026-01-05T10:00:00Z" }), "Online");
  assert.equal(presenceText({ state: "away", last_seen: "2026-01-05T10:00:00Z" }), "Away");
  assert.equal(presenceText({ state: "offline", last_seen: null }), "Offline");
  assert.match(presenceText({ state: "offline", last_seen: "2026-01-05T10:00:00Z" }), /^Offline, last seen .*2026/);
  assert.equal(presenceText(null), "Not shown: only the team's members see it");
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

test("simulation: the request for a proposed change, where the server's problems go, and what the tables show", async () => {
  const { busyText, caughtText, delayText, fieldTarget, simulateBody, simulateRows } = await import("../assets/simulate.js");
  const { ApiError } = await import("../assets/api.js");
  const def = { id: "bp", version: 4, params: { systolic_max: 172, diastolic_max: 115 }, delta: { rise: 2 },
    bounds: { systolic_max: [160, 260], diastolic_max: [100, 160], rise: [1, 5] } };
  const params = [{ name: "systolic_max", value: 172, where: "params" }, { name: "diastolic_max", value: 115, where: "params" },
    { name: "rise", value: 2, where: "delta" }];
  const edits = (values) => ({ rule: "bp", def, params, values: { systolic_max: 172, diastolic_max: 115, rise: 2, ...values } });

  // Only what changed is proposed: params as param defaults, the rest as the rule itself.
  let got = simulateBody(edits({ systolic_max: 185 }), "", "quick");
  assert.deepEqual(got.body, { patients: 200, weeks: 8, profiles: ["normal"], params: { bp: { systolic_max: 185 } } });
  got = simulateBody(edits({ rise: 3 }), "  ", "artefacts");
  assert.deepEqual(got.body.rules, [{ id: "bp", params: { systolic_max: 172, diastolic_max: 115 }, delta: { rise: 3 }, bounds: def.bounds }]);
  assert.deepEqual(got.sources, ["params"]);
  assert.equal(got.body.patients * got.body.weeks * got.body.profiles.length <= 12000, true);
  got = simulateBody(edits({ rise: 3 }), '[{"id": "x"}, {"id": "y"}]', "nope");
  assert.deepEqual(got.sources, ["params", "text", "text"]);
  assert.equal(got.body.patients, 200, "an unknown size is the quick one");
  assert.deepEqual(simulateBody(null, '{"id": "x"}', "more").body, { patients: 1000, weeks: 8, profiles: ["normal"], rules: [{ id: "x" }] });

  // Nothing to propose, text that is no rule, a blank parameter: said next to the field, nothing sent.
  assert.equal(simulateBody(edits({}), "", "quick").problem.target, "form");
  assert.equal(simulateBody(null, "{not json", "quick").problem.target, "rule");
  assert.equal(simulateBody(null, "[1]", "quick").problem.target, "rule");
  assert.deepEqual(simulateBody(edits({ systolic_max: NaN }), "", "quick").problem, { target: "param:systolic_max", text: "Give a number." });

  const names = params.map((p) => p.name);
  assert.equal(fieldTarget("params.bp.systolic_max", names), "param:systolic_max");
  assert.equal(fieldTarget("params.systolic_max", names), "param:systolic_max");
  assert.equal(fieldTarget("params.no-such-rule", names), "form");
  assert.equal(fieldTarget("rules[0].delta.rise", names, ["params", "text"]), "param:rise");
  assert.equal(fieldTarget("rules[1].when", names, ["params", "text"]), "rule");
  assert.equal(fieldTarget("rules[0]", [], ["text"]), "rule");
  assert.equal(fieldTarget("patients", names), "size");
  assert.equal(fieldTarget("profiles[0]", names), "size");
  assert.equal(fieldTarget("rules", names), "form");

  const busy = new ApiError(503, { title: "Service unavailable", detail: "simulate: another simulation is running" }, "30");
  assert.equal(busyText(busy), "The server is busy (simulate: another simulation is running). Try again in 30 seconds.");
  assert.equal(busyText(new ApiError(503, { title: "Service unavailable" })), "The server is busy (Service unavailable). Try again shortly.");

  assert.equal(delayText(null), "none caught");
  assert.equal(delayText(0.2), "12 min");
  assert.equal(delayText(5.74), "5.7 h");
  assert.equal(caughtText({ measurable: 0 }), "none in the cohort");
  assert.equal(caughtText({ measurable: 90, caught: 87, sensitivity: 87 / 90 }), "96.7 % (87 of 90)");

  const cell = (rate, copd, caught) => ({ profile: "normal", answer_rate: 0.8, needless: { per_patient_week: rate },
    programs: [{ program: "hf", per_patient_week: 0.4 }, { program: "copd", per_patient_week: copd }],
    events: [{ type: "copd_desaturation", routine: "all", measurable: 10, caught, sensitivity: caught / 10, median_hours: 0.5 },
      { type: "copd_desaturation", routine: "SpO2 1×/day", measurable: 4, caught: 4, sensitivity: 1, median_hours: 1 }] });
  const rows = simulateRows({ current: [cell(0.2, 0.3, 9)], proposed: [cell(0.15, 0.25, 10)] });
  assert.equal(rows.length, 1);
  assert.deepEqual(rows[0].needless.map((n) => [n.current, n.proposed]), [[0.2, 0.15], [0.3, 0.25]]);
  assert.match(rows[0].needless[1].label, /^COPD \(usual artefacts, 80 % of retakes answered\)$/);
  assert.deepEqual(rows[0].events.map((e) => [e.label, e.current.caught, e.proposed.caught]), [["COPD desaturation", 9, 10]]);
});

// End-to-end encryption: fingerprints computed here are the test vectors'
// (e2ee/testdata/vectors.json), and the replay check refuses a sender
// sequence seen before under another message id.
const vectors = JSON.parse(await (await import("node:fs/promises")).readFile(new URL("../../../e2ee/testdata/vectors.json", import.meta.url), "utf8"));
const e2ee = await import("../assets/e2ee.js");
const { ThreadCrypto } = await import("../assets/secure.js");

test("device fingerprints are the vectors'", async () => {
  for (const k of [vectors.sender, ...vectors.recipients]) {
    assert.equal(await e2ee.fingerprint(e2ee.b64(k.hpke_public_key), e2ee.b64(k.signing_public_key)), k.fingerprint);
  }
  assert.equal(e2ee.formatFingerprint(new Uint8Array(32).fill(0xab)), Array(16).fill("ABAB").join(" "));
});

// memoryDevice is a Device whose state is kept in a Map.
function memoryDevice() {
  const state = new Map();
  return { id: "me", user_id: "u", state: async (k) => state.get(k), setState: async (k, v) => { state.set(k, v); } };
}

test("a replayed or reordered sender sequence is refused; the same message again is not", async () => {
  const c = new ThreadCrypto(null, memoryDevice(), "t");
  const env = (seq) => ({ sender_device_id: "d", sender_seq: seq });
  assert.equal(await c.accept(env(1), "m1"), true);
  assert.equal(await c.accept(env(1), "m1"), true, "the same message shown again");
  assert.equal(await c.accept(env(1), "m9"), false, "sequence 1 under another id: a replay");
  assert.equal(await c.accept(env(3), "m3"), true);
  assert.equal(await c.accept(env(2), "m2"), false, "2 after 3: reordered");
  assert.equal(await c.accept({ sender_device_id: "other", sender_seq: 1 }, "m4"), true, "each device counts on its own");
});

test("a thread's keys: a device whose keys change is reported, and so is a wrong record key id", async () => {
  const dev = memoryDevice();
  const c = new ThreadCrypto(null, dev, "t");
  const s = vectors.sender;
  const r = vectors.recipients.find((x) => x.hpke_public_key !== s.hpke_public_key);
  const keys = (hpke) => ({ devices: [{ id: s.id, user_id: "x", hpke_public_key: hpke, signing_public_key: s.signing_public_key,
    fingerprint: s.fingerprint }], record_key: { id: vectors.record.id, public_key: vectors.record.hpke_public_key } });
  assert.deepEqual((await c.check(keys(s.hpke_public_key), () => "Sender")).changed, []);
  const swapped = await c.check(keys(r.hpke_public_key), () => "Sender");
  assert.equal(swapped.changed.length, 1);
  assert.equal(swapped.changed[0].was, s.fingerprint);
  assert.equal(swapped.devices[0].changed, true);
  const wrongRecord = keys(s.hpke_public_key);
  wrongRecord.record_key.id = "0".repeat(32);
  assert.match((await c.check(wrongRecord, () => "Sender")).changed[0].who, /record key/);
});
