// The alert pane. On top: the patient, the alert, the value that fired (or,
// for a missed-dose alert, the medication and dose time) and the lifecycle
// actions. Below, the trend (the plot) beside the patient's conversation on
// wide screens, tabs on narrow ones; reminders and adherence, and the
// details (facts, findings, history, ids), one tab away. Every action is a
// call to the API; whatever the API answers — success or its problem text —
// is what the page shows.

import { ApiError } from "./api.js";
import { dateOnly, dateTime, readingText, valueText } from "./format.js";
import { buildPlot, caption, kindLabel, Plot, RANGES, thresholds } from "./plot.js";
import { age, statusLabel, urgencyLabel } from "./queue.js";
import * as reminders from "./reminders.js";
import { Tabs } from "./tabs.js";
import { findPatientThread, ThreadView } from "./thread.js";

const ACTION_DONE = {
  ack: "Acknowledged.",
  resolve: "Resolved.",
  snooze: "Snoozed.",
  assign: "Assigned.",
};

const EVENT_NAMES = { opened: "Raised", raised: "Raised", acknowledged: "Acknowledged", resolved: "Resolved", snoozed: "Snoozed",
  assigned: "Assigned", reopened: "Reopened", escalated: "Escalated", noted: "Note added", updated: "Updated" };

function text(tag, s, cls) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  e.textContent = s;
  return e;
}

function errText(err) {
  return err instanceof ApiError ? err.text : `Could not reach the server: ${err.message}`;
}

export class Detail {
  // getApi(): the signed-in Api; ctx(): {me, prefs, ruleTitle(id)};
  // onActed(): the queue may have changed; onClose(id): the pane closed;
  // getDevice(): a promise of this browser's encryption keys, or null.
  constructor(getApi, { ctx, onActed, onClose, getDevice }) {
    this.getApi = getApi;
    this.ctx = ctx;
    this.onActed = onActed;
    this.onClose = onClose;
    this.id = null;
    this.alert = null;
    this.seq = 0;
    this.$ = (id) => document.getElementById(id);
    this.section = this.$("detail");
    this.plot = new Plot(this.$("plot"));
    this.thread = new ThreadView(this.$("thread"), "thread", getApi, getDevice);
    this.tabs = new Tabs(this.section.querySelector("[role=tablist]"), {
      wide: "(min-width: 1200px)", sideTab: "tab-thread",
      onShow: (id) => { if (id === "tab-thread") this.thread.markRead(); },
    });
    this.bindForms();
    this.$("detail-close").addEventListener("click", () => this.close());
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
    form("assign-form", "assign", () => ({ user_id: this.$("assignee").value }));
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
      if (id === this.id) this.$("action-error").textContent = errText(err);
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
      for (const e of ["detail-summary", "detail-facts", "findings", "events", "plot-ranges"]) this.$(e).replaceChildren();
      this.$("detail-ids").textContent = "";
      this.$("detail-loading").hidden = false;
      this.plot.clear();
      this.thread.clear();
      this.threadFor = null;
      this.range = null;
      this.$("plot-caption").textContent = "";
      this.tabs.select("tab-trend", false);
    }
    this.$("detail-heading").focus();
    await this.load(true);
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
      if (seq === this.seq) {
        this.$("detail-loading").hidden = true;
        this.$("detail-error").textContent = err instanceof ApiError ? err.text : err.message;
      }
      return;
    }
    if (seq !== this.seq) return;
    this.$("detail-loading").hidden = true;
    this.$("detail-error").textContent = "";
    const first = !this.alert || this.alert.id !== a.id;
    this.alert = a;
    this.$("detail-heading").textContent = `${a.patient_name || "Patient"}: ${a.title || "alert"}`;
    this.renderSummary(a, null);
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
    this.patient = patient.status === "fulfilled" ? patient.value : null;
    this.renderFacts(a, this.patient);
    if (team.status === "fulfilled") this.renderMembers(team.value);
    const def = rule.status === "fulfilled" ? rule.value.definition || {} : {};
    this.loadReminders(a, def, seq); // alongside the plot
    const kind = a.last_reading?.kind || a.readings?.[0]?.kind || def.kind;
    if (!kind || def.event || def.symptom) {
      this.plot.clear();
      this.$("plot-caption").textContent = "This alert was raised by no reading, so there is nothing to plot.";
      return;
    }
    let items = a.recent?.length ? a.recent : null;
    if (!items) {
      try {
        items = (await this.api.readings(a.patient_id, kind)).items || [];
      } catch (err) {
        if (seq === this.seq) this.$("plot-caption").textContent = `Readings unavailable: ${errText(err)}`;
        return;
      }
      if (seq !== this.seq) return;
    }
    const effective = params.status === "fulfilled" ? params.value.effective?.[a.rule_id] : undefined;
    this.series = { kind, items, limits: thresholds(effective || def.params),
      fired: [...(a.readings || []).map((r) => r.id), ...(a.findings || []).map((f) => f.reading_id)].filter(Boolean) };
    this.drawPlot();
  }

  // drawPlot draws the series in the chosen range (first: the one the data
  // suggests) with the range toggles.
  drawPlot() {
    const { kind, items, limits, fired } = this.series;
    const prefs = this.ctx().prefs;
    const built = buildPlot(kind, items, fired, limits, { width: 600, prefs, range: this.range, colours: Plot.colours() });
    this.plot.show(built);
    const el = this.$("plot");
    el.setAttribute("role", "img");
    el.setAttribute("aria-label", `Plot of ${kindLabel(kind)} readings; the caption below describes it`);
    this.$("plot-caption").textContent = caption(kind, built, limits, { prefs, firing: this.alert?.last_reading });
    this.$("plot-caption").dataset.range = built?.range || "";
    this.$("plot-ranges").replaceChildren(...RANGES.map(([key, , label]) => {
      const b = text("button", label);
      b.type = "button";
      b.dataset.range = key;
      b.setAttribute("aria-pressed", String(key === built?.range));
      b.addEventListener("click", () => {
        this.range = key;
        this.drawPlot();
        this.$("plot-ranges").querySelector(`[data-range="${key}"]`)?.focus();
      });
      return b;
    }));
  }

  // redraw shows the alert again after a unit preference changed.
  redraw() {
    if (!this.alert) return;
    this.renderSummary(this.alert, this.missed);
    if (this.series) this.drawPlot();
  }

  // loadThread shows the patient's thread with the alert's care team.
  async loadThread(a, patientP) {
    let t, patient;
    try {
      [t, patient] = await Promise.all([findPatientThread(this.api, a.patient_id, a.care_team_id), patientP]);
    } catch (err) {
      if (this.id === a.id) this.thread.showError(`Messages unavailable: ${errText(err)}`);
      return;
    }
    if (this.id !== a.id) return;
    if (!t) {
      this.thread.showError("This patient has no thread with you.");
      return;
    }
    await this.thread.show(t, `Conversation with ${patient?.display_name || a.patient_name || "the patient"}`);
  }

  // loadReminders shows the patient's schedules, adherence per schedule and
  // recent doses (and names a missed-dose alert's doses); a caller who may
  // not read them sees the API's answer.
  async loadReminders(a, def, seq) {
    this.$("reminders-loading").hidden = false;
    const [schedules, doses, adherence] = await Promise.allSettled([
      this.api.schedules(a.patient_id), this.api.doses(a.patient_id), this.api.adherence(a.patient_id)]);
    if (seq !== this.seq) return;
    this.$("reminders-loading").hidden = true;
    const failed = [schedules, doses, adherence].find((r) => r.status === "rejected");
    const block = this.$("reminders");
    if (failed) {
      this.$("reminders-error").textContent = `Reminders unavailable: ${errText(failed.reason)}`;
      block.dataset.loaded = "error";
      return;
    }
    this.$("reminders-error").textContent = "";
    const summary = reminders.summarise(schedules.value.items, doses.value.items, adherence.value);
    reminders.render({ table: this.$("schedules"), doses: this.$("doses"), total: this.$("adherence-total"),
      empty: this.$("schedules-empty") }, summary);
    block.dataset.loaded = "true";
    this.missed = reminders.missedDoses(a, def, schedules.value.items, doses.value.items);
    if (this.missed.length) this.renderSummary(a, this.missed);
  }

  // renderSummary writes the top of the pane: urgency and state, the value
  // that fired (or the missed doses), the assignee and unread messages.
  renderSummary(a, missed) {
    const { me, prefs } = this.ctx();
    const head = text("p", "");
    head.append(text("span", urgencyLabel(a.urgency), `badge urgency-${a.urgency}`), " ",
      text("span", statusLabel(a.status), `status status-${a.status}`), ` · raised ${age(a.created_at)} ago (${dateTime(a.created_at)})`);
    const lines = [head];
    if (a.last_reading) {
      const fired = text("p", `Fired on ${readingText(a.last_reading, prefs)} at ${dateTime(a.last_reading.observed_at)}`, "fired");
      fired.dataset.value = valueText(a.last_reading, prefs);
      lines.push(fired);
    }
    for (const d of missed || []) {
      const when = d.date && d.time ? `${d.time} on ${dateOnly(`${d.date}T12:00:00Z`, "UTC")} (the patient's time)` : dateTime(d.due_at);
      lines.push(text("p", `Missed dose: ${d.label}, due ${when}`, "fired missed"));
    }
    const who = a.assigned_to ? (a.assigned_to === me?.user?.id ? "you" : a.assigned_to_name || "a colleague") : "";
    lines.push(text("p", [who ? `Assigned to ${who}` : "Not assigned", a.unread_messages ? `${a.unread_messages} unread message${a.unread_messages === 1 ? "" : "s"} from the patient's thread` : ""]
      .filter(Boolean).join(" · ")));
    if (a.undelivered) lines.push(text("p", "No device of the care team received this alert's page.", "error"));
    if (a.escalation_exhausted) lines.push(text("p", "Every escalation level was notified; still unacknowledged.", "error"));
    this.$("detail-summary").replaceChildren(...lines);
  }

  renderFacts(a, patient) {
    const { me } = this.ctx();
    const person = (id, name) => (id && id === me?.user?.id ? "you" : name || "a colleague");
    const rows = [
      ["Patient", patient?.display_name || a.patient_name || "—"],
      ["Urgency", urgencyLabel(a.urgency), `badge urgency-${a.urgency}`],
      ["Status", statusLabel(a.status), `status status-${a.status}`],
      ["Rule", this.ctx().ruleTitle(a.rule_id, a.title)],
      ["Raised", dateTime(a.created_at)],
      ["Last reading", dateTime(a.last_observed_at)],
      ["Occurrences", String(a.occurrences)],
    ];
    if (a.acknowledged_at) rows.push(["Acknowledged", `${dateTime(a.acknowledged_at)} by ${person(a.acknowledged_by, this.eventActor(a, "acknowledged"))}`]);
    if (a.assigned_to) rows.push(["Assigned to", person(a.assigned_to, a.assigned_to_name)]);
    if (a.snoozed_until) rows.push(["Snoozed until", dateTime(a.snoozed_until)]);
    if (a.resolved_at) rows.push(["Resolved", dateTime(a.resolved_at)]);
    if (a.disposition) rows.push(["Disposition", statusLabel(a.disposition)]);
    const dl = this.$("detail-facts");
    dl.replaceChildren(...rows.flatMap(([k, v, cls]) => {
      const dd = document.createElement("dd");
      dd.append(text("span", v, cls));
      return [text("dt", k), dd];
    }));
    dl.dataset.status = a.status;
    this.$("detail-ids").textContent = `Ids (for support): alert ${a.id} · patient ${a.patient_id} · rule ${a.rule_id} v${a.rule_version}`;
  }

  eventActor(a, action) {
    return [...(a.events || [])].reverse().find((e) => e.action === action)?.actor_name;
  }

  renderFindings(a) {
    const title = this.ctx().ruleTitle;
    const items = (a.findings || []).map((f) =>
      text("li", `${urgencyLabel(f.urgency)}: ${title(f.rule_id)} (version ${f.rule_version}), observed ${dateTime(f.observed_at)}${f.late ? ", arrived late" : ""}`));
    this.$("findings").replaceChildren(...(items.length ? items : [text("li", "None recorded.")]));
  }

  renderEvents(a) {
    const me = this.ctx().me?.user?.id;
    const items = (a.events || []).map((e) => {
      const who = e.actor_id ? ` by ${e.actor_id === me ? "you" : e.actor_name || "a colleague"}` : " by Tend";
      const li = text("li", `${dateTime(e.at)}: ${EVENT_NAMES[e.action] || statusLabel(e.action)}${who}${e.note ? ` (“${e.note}”)` : ""}`);
      li.dataset.action = e.action;
      return li;
    });
    this.$("events").replaceChildren(...(items.length ? items : [text("li", "No events yet.")]));
  }

  // renderMembers offers the team's clinicians and leads by name.
  renderMembers(team) {
    const me = this.ctx().me?.user?.id;
    const members = (team.members || []).filter((m) => m.role === "clinician" || m.role === "lead");
    const sel = this.$("assignee");
    const keep = sel.value;
    sel.replaceChildren(new Option("Choose a person…", ""), ...members.map((m) => {
      const o = new Option(`${m.name || "Unnamed member"}${m.user_id === me ? " (you)" : ""}${m.role === "lead" ? ", lead" : ""}`, m.user_id);
      return o;
    }));
    sel.value = keep;
  }
}
