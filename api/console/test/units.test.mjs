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
