// Readings leave the phone through the outbox: each is written to IndexedDB
// with its source_id before it is sent, and removed only once the server
// has accepted it (201 created or 200 duplicate). A send that fails for
// want of a connection is retried when the connection returns; resending
// is safe because the server stores one reading per source_id. One tab at
// a time sends (a Web Lock), so two open tabs do not send the same batch
// at once.

import { outbox, retakes } from "./store.js";
import { readingIndex, sentence } from "./units.js";

const RETRY_MS = [2000, 5000, 15000, 30000, 60000];

export class Sender {
  // api: the app's Api; patientID: the signed-in patient; onSent(result):
  // called after every batch the server accepted; onAuth(): the server
  // refused the sign-in (401).
  constructor(api, patientID, { onSent = () => {}, onAuth = () => {}, onChange = () => {} } = {}) {
    this.api = api;
    this.patientID = patientID;
    this.onSent = onSent;
    this.onAuth = onAuth;
    this.onChange = onChange;
    this.failures = 0;
    this.timer = null;
    this.stopped = false;
    this.online = () => this.flush();
    globalThis.addEventListener("online", this.online);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    globalThis.removeEventListener("online", this.online);
  }

  // queue keeps a reading (committed to IndexedDB) and sends what is
  // waiting. It resolves with the send's outcome.
  async queue(reading) {
    await outbox.add({ reading, patient_id: this.patientID, queued_at: new Date().toISOString() });
    this.onChange();
    return this.flush();
  }

  // pending lists this patient's readings not yet accepted.
  async pending() {
    return (await outbox.all()).filter((it) => it.patient_id === this.patientID);
  }

  // flush sends every waiting reading in one batch and resolves with
  // {accepted: [source_id], rejected: Map(source_id → [sentence]),
  // offline: bool}.
  flush() {
    const run = () => this.send();
    if (globalThis.navigator?.locks) return navigator.locks.request("tend-app-outbox", run);
    return run();
  }

  async send() {
    const out = { accepted: [], rejected: new Map(), offline: false };
    if (this.stopped) return out;
    const items = (await this.pending()).filter((it) => !it.errors);
    if (items.length === 0) return out;
    let res;
    try {
      res = await this.api.post(`/v1/patients/${encodeURIComponent(this.patientID)}/readings`,
        { readings: items.map((it) => it.reading) });
    } catch (err) {
      if (err.status === 422 && err.fields.length > 0) {
        return this.reject(items, err, out);
      }
      if (err.status === 401) this.onAuth();
      out.offline = true;
      out.error = err;
      this.retry();
      return out;
    }
    this.failures = 0;
    out.accepted = items.map((it) => it.reading.source_id);
    await outbox.remove(out.accepted);
    out.result = await this.settleRetakes(items, res);
    this.onChange();
    this.onSent(out.result);
    return out;
  }

  // reject marks the readings the server refused with its reasons, in
  // words, and sends the rest again.
  async reject(items, err, out) {
    const bad = new Map();
    for (const f of err.fields) {
      const i = readingIndex(f.field);
      if (i < 0 || i >= items.length) continue;
      const id = items[i].reading.source_id;
      bad.set(id, [...(bad.get(id) || []), { field: f.field, reason: f.reason, text: sentence(f) }]);
    }
    if (bad.size === 0) {
      out.offline = true;
      out.error = err;
      return out;
    }
    await outbox.put(items.filter((it) => bad.has(it.reading.source_id)).map((it) => ({ ...it, errors: bad.get(it.reading.source_id) })));
    out.rejected = bad;
    const again = await this.send();
    out.accepted = again.accepted;
    out.result = again.result;
    out.offline = again.offline;
    this.onChange();
    return out;
  }

  // settleRetakes answers the retake requests of the kinds just measured
  // and keeps the new ones. It returns the batch's outcome for the page.
  async settleRetakes(items, res) {
    const kinds = new Map();
    (res.readings || []).forEach((r, i) => { if (items[i]) kinds.set(r.id, items[i].reading.kind); });
    const fresh = (res.retakes || []).map((r) => ({ ...r, kind: kinds.get(r.reading_id) }));
    const measured = new Set(items.map((it) => it.reading.kind));
    const waiting = await retakes.all();
    const answered = waiting.filter((r) => measured.has(r.kind) && !fresh.some((f) => f.reading_id === r.reading_id));
    await retakes.remove(answered.map((r) => r.reading_id));
    await retakes.add(fresh);
    return { readings: res.readings || [], alerts: res.alerts || [], retakes: fresh, answered, kinds: [...measured] };
  }

  retry() {
    clearTimeout(this.timer);
    const wait = RETRY_MS[Math.min(this.failures, RETRY_MS.length - 1)];
    this.failures++;
    this.timer = setTimeout(() => this.flush(), wait);
  }
}
