// The alert detail pane: facts, the plot, findings, history, and the
// lifecycle actions. Every action is a call to the API; whatever the API
// answers — success or its problem text — is what the page shows.

import { ApiError } from "./api.js";
import { buildPlot, caption, kindLabel, Plot, thresholds } from "./plot.js";
import { statusLabel, urgencyLabel } from "./queue.js";
import * as reminders from "./reminders.js";
import { findPatientThread, ThreadView } from "./thread.js";

const ACTION_DONE = {
  ack: "Acknowledged.",
  resolve: "Resolved.",
  snooze: "Snoozed.",
  assign: "Assigned.",
};

function fmtTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

function text(tag, s, cls) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  e.textContent = s;
  return e;
}

export class Detail {
  // getApi(): the signed-in Api; onActed(): the queue may have changed.
  constructor(getApi, { onActed, onClose }) {
    this.getApi = getApi;
    this.onActed = onActed;
    this.onClose = onClose;
    this.id = null;
    this.alert = null;
    this.seq = 0;
    this.$ = (id) => document.getElementById(id);
    this.section = this.$("detail");
    this.plot = new Plot(this.$("plot"));
    this.thread = new ThreadView(this.$("thread"), "thread", getApi);
    this.bindForms();
    this.section.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape" && !ev.target.matches("select")) this.close();
    });
  }

  get api() {
    return this.getApi();
  }

  bindForms() {
    const form = (id, action, body) => {
      this.$(id).addEventListener("submit", (ev) => {
        ev.preventDefault();
        this.act(action, body(), ev.target);
      });
    };
    form("ack-form", "ack", () => {
      const note = this.$("ack-note").value.trim();
      return note ? { note } : {};
    });
    form("resolve-form", "resolve", () => {
      const out = { disposition: this.$("disposition").value };
      const note = this.$("resolve-note").value.trim();
      if (note) out.note = note;
      return out;
    });
    form("snooze-form", "snooze", () => {
      const minutes = Number(this.$("snooze-for").value);
      return { until: new Date(Date.now() + minutes * 60000).toISOString() };
    });
    form("assign-form", "assign", () => ({ user_id: this.$("assignee").value.trim() }));
  }

  async act(action, body, formEl) {
    if (!this.id) return;
    const id = this.id;
    const buttons = formEl.querySelectorAll("button");
    buttons.forEach((b) => { b.disabled = true; });
    this.$("action-result").textContent = "";
    this.$("action-error").textContent = "";
    try {
      await this.api.act(id, action, body);
      if (id === this.id) {
        this.$("action-result").textContent = ACTION_DONE[action];
        formEl.reset();
      }
      await Promise.allSettled([this.refresh(), this.onActed()]);
    } catch (err) {
      if (id === this.id) this.$("action-error").textContent = err instanceof ApiError ? err.text : `Could not reach the server: ${err.message}`;
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  close() {
    const id = this.id;
    this.id = null;
    this.alert = null;
    this.seq++;
    this.plot.clear();
    this.thread.clear();
    this.threadFor = null;
    this.section.hidden = true;
    this.onClose(id);
  }

  // open shows an alert and loads its context.
  async open(id) {
    const changed = id !== this.id;
    this.id = id;
    this.section.hidden = false;
    if (changed) {
      this.$("action-result").textContent = "";
      this.$("action-error").textContent = "";
      this.$("detail-heading").textContent = "Alert";
      this.$("detail-facts").replaceChildren();
      this.plot.clear();
      this.thread.clear();
      this.threadFor = null;
      this.$("plot-caption").textContent = "Loading…";
    }
    await this.load(true);
    this.$("detail-heading").focus();
  }

  // refresh reloads the open alert (facts, history and plot).
  refresh() {
    return this.id ? this.load(false) : Promise.resolve();
  }

  // changedIn reports whether the queue's copy of the open alert differs from
  // the one shown, so polling reloads the detail only when needed.
  changedIn(items) {
    if (!this.alert) return false;
    const a = items.find((x) => x.id === this.id);
    return !!a && (a.status !== this.alert.status || a.occurrences !== this.alert.occurrences ||
      a.urgency !== this.alert.urgency || (a.updated_at && a.updated_at !== this.alert.updated_at));
  }

  async load(full) {
    const seq = ++this.seq;
    const id = this.id;
    let a;
    try {
      a = await this.api.alert(id);
    } catch (err) {
      if (seq === this.seq) this.$("detail-error").textContent = err instanceof ApiError ? err.text : err.message;
      return;
    }
    if (seq !== this.seq) return;
    this.$("detail-error").textContent = "";
    const first = !this.alert || this.alert.id !== a.id;
    this.alert = a;
    this.$("detail-heading").textContent = a.title || a.rule_id;
    this.renderFacts(a, null);
    this.renderFindings(a);
    this.renderEvents(a);

    const patientP = this.api.patient(a.patient_id);
    // The thread once per alert shown (a refresh that overtakes this load
    // must not lose it).
    if (this.threadFor !== a.id) {
      this.threadFor = a.id;
      this.loadThread(a, patientP.catch(() => null));
    }
    const [patient, rule, params, team] = await Promise.allSettled([
      patientP,
      this.api.rule(a.rule_id),
      this.api.params(a.patient_id),
      first || full ? this.api.careTeam(a.care_team_id) : Promise.reject(new Error("unchanged")),
    ]);
    if (seq !== this.seq) return;
    this.renderFacts(a, patient.status === "fulfilled" ? patient.value : null);
    if (team.status === "fulfilled") this.renderMembers(team.value);
    this.loadReminders(a.patient_id, seq); // alongside the plot

    const def = rule.status === "fulfilled" ? rule.value.definition || {} : {};
    const kind = a.readings?.[0]?.kind || def.kind;
    if (!kind) {
      this.plot.clear();
      this.$("plot-caption").textContent = "This alert has no readings to plot.";
      return;
    }
    let readings = [];
    try {
      readings = (await this.api.readings(a.patient_id, kind)).items || [];
    } catch (err) {
      if (seq === this.seq) this.$("plot-caption").textContent = `Readings unavailable: ${err instanceof ApiError ? err.text : err.message}`;
      return;
    }
    if (seq !== this.seq) return;
    const effective = params.status === "fulfilled" ? params.value.effective?.[a.rule_id] : undefined;
    const limits = thresholds(effective || def.params);
    const fired = [...(a.readings || []).map((r) => r.id), ...(a.findings || []).map((f) => f.reading_id)].filter(Boolean);
    const built = buildPlot(kind, readings, fired, limits, 600);
    this.plot.show(built);
    this.$("plot").setAttribute("aria-label", `Plot of ${kindLabel(kind).toLowerCase()} readings`);
    this.$("plot").setAttribute("role", "img");
    this.$("plot-caption").textContent = caption(kind, built, limits);
  }

  // loadThread shows the patient's thread with the alert's care team.
  async loadThread(a, patientP) {
    let t, patient;
    try {
      [t, patient] = await Promise.all([findPatientThread(this.api, a.patient_id, a.care_team_id), patientP]);
    } catch (err) {
      if (this.id === a.id) this.thread.showError(`Messages unavailable: ${err instanceof ApiError ? err.text : err.message}`);
      return;
    }
    if (this.id !== a.id) return;
    if (!t) {
      this.thread.showError("This patient has no thread with you.");
      return;
    }
    await this.thread.show(t, patient ? `Messages with ${patient.display_name}` : "Messages with the patient");
  }

  // loadReminders shows the patient's schedules, adherence per schedule and
  // recent doses; a caller who may not read them sees the API's answer.
  async loadReminders(patientID, seq) {
    const [schedules, doses, adherence] = await Promise.allSettled([
      this.api.schedules(patientID), this.api.doses(patientID), this.api.adherence(patientID)]);
    if (seq !== this.seq) return;
    const failed = [schedules, doses, adherence].find((r) => r.status === "rejected");
    const block = this.$("reminders");
    if (failed) {
      const err = failed.reason;
      this.$("reminders-error").textContent = `Reminders unavailable: ${err instanceof ApiError ? err.text : err.message}`;
      block.dataset.loaded = "error";
      return;
    }
    this.$("reminders-error").textContent = "";
    const summary = reminders.summarise(schedules.value.items, doses.value.items, adherence.value);
    reminders.render({ table: this.$("schedules"), doses: this.$("doses"), total: this.$("adherence-total"),
      empty: this.$("schedules-empty") }, summary);
    block.dataset.loaded = "true";
  }

  renderFacts(a, patient) {
    const rows = [
      ["Patient", patient ? patient.display_name : a.patient_id],
      ["Urgency", urgencyLabel(a.urgency), `badge urgency-${a.urgency}`],
      ["Status", statusLabel(a.status), `status status-${a.status}`],
      ["Rule", a.rule_id],
      ["Raised", fmtTime(a.created_at)],
      ["Last reading", fmtTime(a.last_observed_at)],
      ["Occurrences", String(a.occurrences)],
    ];
    if (a.acknowledged_at) rows.push(["Acknowledged", fmtTime(a.acknowledged_at)]);
    if (a.assignee_id || a.assigned_to) rows.push(["Assigned to", a.assignee_id || a.assigned_to]);
    if (a.snoozed_until) rows.push(["Snoozed until", fmtTime(a.snoozed_until)]);
    if (a.resolved_at) rows.push(["Resolved", fmtTime(a.resolved_at)]);
    if (a.disposition) rows.push(["Disposition", statusLabel(a.disposition)]);
    if (a.undelivered) rows.push(["Delivery", "Reached no device"]);
    if (a.escalation_exhausted) rows.push(["Escalation", "Every level notified, still unacknowledged"]);
    const dl = this.$("detail-facts");
    dl.replaceChildren(...rows.flatMap(([k, v, cls]) => {
      const dd = document.createElement("dd");
      dd.append(text("span", v, cls));
      return [text("dt", k), dd];
    }));
    dl.dataset.status = a.status;
  }

  renderFindings(a) {
    const items = (a.findings || []).map((f) =>
      text("li", `${urgencyLabel(f.urgency)} — ${f.rule_id} (v${f.rule_version}), observed ${fmtTime(f.observed_at)}${f.late ? ", arrived late" : ""}`));
    this.$("findings").replaceChildren(...(items.length ? items : [text("li", "None recorded.")]));
  }

  renderEvents(a) {
    const items = (a.events || []).map((e) =>
      text("li", `${fmtTime(e.at)} — ${statusLabel(e.action)}${e.actor_id ? ` by ${e.actor_id}` : ""}`));
    this.$("events").replaceChildren(...(items.length ? items : [text("li", "No events yet.")]));
  }

  renderMembers(team) {
    const members = Array.isArray(team.members) ? team.members
      : (team.member_ids || []).map((user_id) => ({ user_id }));
    this.$("members").replaceChildren(...members.map((m) => {
      const o = document.createElement("option");
      o.value = m.user_id;
      o.label = [m.name, m.role].filter(Boolean).join(", ") || m.user_id;
      return o;
    }));
  }
}
