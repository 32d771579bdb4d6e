// The audit view (admins): the audit trail newest first, filtered by person,
// patient (by name), action and dates, with people and patients named;
// object and request ids stay in each entry's details line. Read-only.

import { el, errText } from "./dom.js";
import { dateTime, zonedMidnight } from "./format.js";

const $ = (id) => document.getElementById(id);
const ACTIONS = ["alert.list", "alert.read", "alert.ack", "alert.resolve", "alert.snooze", "alert.assign", "patient.create",
  "patient.read", "patient.update", "patient.list", "reading.create", "reading.list", "message.create", "thread.read",
  "user.create", "user.disable", "token.create", "token.revoke", "rule.update", "rule.backtest", "audit.list", "request.refused"];



// auditQuery builds GET /v1/audit's query from the filters: newest first;
// dates are whole days in the browser's zone, "to" inclusive. Pure.
export function auditQuery({ actorID, patientID, action, since, until, cursor }, zone) {
  const q = new URLSearchParams({ limit: "100", order: "newest" });
  if (actorID) q.set("actor_id", actorID);
  if (patientID) q.set("patient_id", patientID);
  if (action) q.set("action", action);
  if (since) q.set("since", zonedMidnight(since, zone));
  if (until) {
    const next = new Date(Date.parse(`${until}T12:00:00Z`) + 86400000).toISOString().slice(0, 10);
    q.set("until", zonedMidnight(next, zone));
  }
  if (cursor) q.set("cursor", cursor);
  return q;
}

export class AuditView {
  constructor(getApi) {
    this.getApi = getApi;
    this.users = new Map();
    this.patients = new Map();
    this.cursor = null;
    $("audit-filter").addEventListener("submit", (ev) => { ev.preventDefault(); this.load(false); });
    $("audit-more").addEventListener("click", () => this.load(true));
    $("audit-actions").replaceChildren(...ACTIONS.map((a) => el("option", null, { value: a })));
  }

  get api() {
    return this.getApi();
  }

  // show loads the people (for names and the person filter), then the
  // newest entries.
  async show() {
    try {
      const users = await this.api.get("/v1/users?limit=500");
      for (const u of users.items || []) this.users.set(u.id, u);
      const keep = $("audit-actor").value;
      $("audit-actor").replaceChildren(el("option", "Anyone", { value: "" }),
        ...[...this.users.values()].map((u) => el("option", `${u.name} (${u.role})`, { value: u.id })));
      $("audit-actor").value = keep;
    } catch (err) {
      $("audit-error").textContent = errText(err);
    }
    return this.load(false);
  }

  // patientName names a patient (read through the API once, audited).
  async patientName(id) {
    if (!this.patients.has(id)) {
      try {
        this.patients.set(id, (await this.api.get(`/v1/patients/${encodeURIComponent(id)}`)).display_name);
      } catch {
        this.patients.set(id, "");
      }
    }
    return this.patients.get(id);
  }

  // resolvePatient finds the patient the name filter means: the one whose
  // name matches, or the first of several (said so).
  async resolvePatient() {
    const name = $("audit-patient").value.trim();
    if (!name) return { id: "" };
    const found = (await this.api.get(`/v1/patients?${new URLSearchParams({ q: name, limit: "20" })}`)).items || [];
    if (!found.length) return { none: `No patient is named like “${name}”.` };
    const exact = found.find((p) => p.display_name.toLowerCase() === name.toLowerCase()) || found[0];
    for (const p of found) this.patients.set(p.id, p.display_name);
    return { id: exact.id, note: found.length > 1 ? `Showing ${exact.display_name}: ${found.length} patients match “${name}”.` : "" };
  }

  async load(more) {
    $("audit-loading").hidden = false;
    $("audit-error").textContent = "";
    try {
      const patient = more ? { id: this.patientID } : await this.resolvePatient();
      if (patient.none) {
        $("audit-table").tBodies[0].replaceChildren();
        $("audit-empty").textContent = patient.none;
        $("audit-empty").hidden = false;
        $("audit-more").hidden = true;
        return;
      }
      this.patientID = patient.id;
      const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
      const q = auditQuery({ actorID: $("audit-actor").value, patientID: patient.id, action: $("audit-action").value.trim(),
        since: $("audit-since").value, until: $("audit-until").value, cursor: more ? this.cursor : "" }, zone);
      const page = await this.api.get(`/v1/audit?${q}`);
      const items = page.items || [];
      const names = await Promise.all(items.map((e) => (e.patient_id ? this.patientName(e.patient_id) : "")));
      const rows = items.map((e, i) => this.row(e, names[i]));
      const body = $("audit-table").tBodies[0];
      if (more) body.append(...rows);
      else body.replaceChildren(...rows);
      this.cursor = page.next_cursor || null;
      $("audit-more").hidden = !this.cursor;
      $("audit-empty").textContent = patient.note || "No audit entries match.";
      $("audit-empty").hidden = body.rows.length > 0 && !patient.note;
    } catch (err) {
      $("audit-error").textContent = errText(err);
    } finally {
      $("audit-loading").hidden = true;
    }
  }

  row(e, patientName) {
    const tr = el("tr", null, { dataset: { auditId: String(e.id) } });
    const who = e.actor_id ? `${this.users.get(e.actor_id)?.name || "Unknown user"} (${e.actor_role})` : `Tend (${e.actor_role || "system"})`;
    const details = [e.outcome === "refused" ? "Refused" : "", e.object_type ? `${e.object_type}${e.object_id ? ` ${e.object_id}` : ""}` : "",
      e.request_id ? `request ${e.request_id}` : "", `entry ${e.id}`].filter(Boolean).join(" · ");
    tr.append(el("td", dateTime(e.at)), el("td", who), el("td", e.action), el("td", e.patient_id ? patientName || "A patient" : "—"),
      el("td", details, { class: "ids" }));
    return tr;
  }
}
