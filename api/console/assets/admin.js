// The administration pages: users and tokens, care teams (members, rota,
// escalation policy, broadcasts), rules (enable, parameters, backtest,
// evaluation errors; simulating a change is simulate.js), patients
// (patients.js), the audit (audit.js) and the job dashboard. Like the
// triage pages they call the /v1 API with the user's token and show what
// it answers, errors included, word for word; what they offer follows the
// caller's capabilities (GET /v1/me).

import { AuditView } from "./audit.js";
import { el, errText } from "./dom.js";
import { dateTime, zonedDate, zonedMidnight } from "./format.js";
import { Patients } from "./patients.js";
import { presenceText } from "./presence.js";
import { Simulation } from "./simulate.js";

const $ = (id) => document.getElementById(id);
const URGENCIES = ["critical", "high", "medium", "low"];
const WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];


function button(text, label, onClick) {
  const b = el("button", text, { type: "button" });
  if (label) b.setAttribute("aria-label", label);
  b.addEventListener("click", onClick);
  return b;
}

const fmtTime = (iso) => dateTime(iso);


function select(id, options, value, label) {
  const s = el("select", null, { id });
  if (label) s.setAttribute("aria-label", label);
  for (const [v, text] of options) s.append(el("option", text, { value: v }));
  s.value = value ?? "";
  return s;
}

// teamBody turns the team editor's state into a PUT /v1/care-teams body.
// Pure: unit-tested in Node.
export function teamBody({ name, timezone, members, deadlines, levels, repeats, onCall, skipOffline = false }) {
  const body = { name, timezone, members, on_call: onCall };
  const ack = Object.fromEntries(Object.entries(deadlines).filter(([, v]) => v.trim()).map(([k, v]) => [k, v.trim()]));
  const rep = Object.fromEntries(Object.entries(repeats).filter(([, v]) => v.trim()).map(([k, v]) => [k, v.trim()]));
  const lv = levels.split(",").map((s) => s.trim()).filter(Boolean);
  if (Object.keys(ack).length || lv.length || Object.keys(rep).length || skipOffline) {
    body.escalation = { ack_deadlines: ack, levels: lv };
    if (Object.keys(rep).length) body.escalation.repeat_intervals = rep;
    if (skipOffline) body.escalation.skip_offline_first_step = true;
  }
  return body;
}

// ruleParams lists a rule's tunable parameters — every name its bounds
// cover — with the value and where the definition keeps it: params, the
// delta or event block, or the rule itself (min_severity). Pure.
export function ruleParams(def) {
  const names = [...new Set([...Object.keys(def.params || {}), ...Object.keys(def.bounds || {})])];
  return names.map((name) => {
    for (const where of ["params", "delta", "event"]) {
      if (def[where] && typeof def[where][name] === "number") return { name, value: def[where][name], where, bounds: def.bounds?.[name] };
    }
    if (typeof def[name] === "number") return { name, value: def[name], where: "", bounds: def.bounds?.[name] };
    return null;
  }).filter(Boolean);
}

// withParams returns a copy of def with new values ({name: number}) where
// ruleParams found them, without its version (the server assigns one). Pure.
export function withParams(def, values) {
  const out = structuredClone(def);
  delete out.version;
  for (const p of ruleParams(def)) {
    if (!(p.name in values)) continue;
    if (p.where) out[p.where] = { ...out[p.where], [p.name]: values[p.name] };
    else out[p.name] = values[p.name];
  }
  return out;
}

const BROADCAST_POLL_MS = 500;

// broadcastText says how far a broadcast has got. Pure.
export function broadcastText(b) {
  const state = b.status === "completed" ? "Completed" : "Sending";
  return `${state}: ${b.done} of ${b.total} patients have the message` + (b.failed ? `, ${b.failed} failed` : ", none failed") + ".";
}

// policyText summarises an escalation policy in one line.
export function policyText(p) {
  if (!p) return "None";
  const ack = URGENCIES.filter((u) => p.ack_deadlines?.[u]).map((u) => `${u} ${p.ack_deadlines[u]}`).join(", ");
  const skip = p.skip_offline_first_step ? "; offline clinicians paged from step 1" : "";
  return `${ack || "no deadlines"}; levels ${(p.levels || []).join(" → ") || "none"}${skip}`;
}

export class Admin {
  // getApi(): the signed-in Api; getMe(): the caller (GET /v1/me).
  constructor(getApi, getMe) {
    this.getApi = getApi;
    this.getMe = getMe;
    this.users = [];
    this.usersCursor = null;
    this.userNames = new Map();
    this.tokenUser = null;
    this.team = null;
    this.rules = [];
    this.ruleEdit = null;
    this.patients = new Patients(getApi, getMe, () => this.loadUsers(false));
    this.audit = new AuditView(getApi);
    this.simulation = new Simulation(getApi, () => this.paramEdits());
    this.bind();
  }

  get api() {
    return this.getApi();
  }

  can(cap) {
    return !!this.getMe()?.capabilities?.includes(cap);
  }

  // reset forgets what the pages showed (sign-out).
  reset() {
    for (const t of ["users-table", "teams-table", "rules-table", "audit-table", "patients-table", "tokens-table"]) {
      document.getElementById(t).tBodies[0].replaceChildren();
    }
    for (const f of ["team-form", "team-members", "broadcast-form", "params-form", "tokens", "patient-form", "devices", "backtest-result"]) $(f).hidden = true;
    this.simulation.reset();
    this.userNames.clear();
  }

  bind() {
    $("user-form").addEventListener("submit", (ev) => { ev.preventDefault(); this.createUser(); });
    $("users-filter").addEventListener("submit", (ev) => { ev.preventDefault(); this.loadUsers(false); });
    $("users-more").addEventListener("click", () => this.loadUsers(true));
    $("token-form").addEventListener("submit", (ev) => { ev.preventDefault(); this.issueToken(); });
    $("team-form").addEventListener("submit", (ev) => { ev.preventDefault(); this.saveTeam(); });
    $("team-cancel").addEventListener("click", () => {
      $("team-form").hidden = true;
      $("broadcast-form").hidden = true;
      $("teams-heading").focus();
    });
    $("broadcast-form").addEventListener("submit", (ev) => { ev.preventDefault(); this.broadcast(); });
    $("member-add-button").addEventListener("click", () => this.addMember());
    $("rota-add").addEventListener("click", () => this.addSlot());
    $("params-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (this.can("rules.manage")) this.saveParams();
      else this.simulation.run();
    });
    $("params-cancel").addEventListener("click", () => { $("params-form").hidden = true; $("rules-heading").focus(); });
    $("params-simulate").addEventListener("click", () => this.simulation.run());
    $("backtest-form").addEventListener("submit", (ev) => { ev.preventDefault(); this.backtest(); });
    $("jobs-open").addEventListener("click", () => this.openJobs());
    for (const u of URGENCIES) {
      const d = el("div");
      d.append(el("label", `Acknowledge ${u} within`, { htmlFor: `esc-ack-${u}` }), el("input", null, { id: `esc-ack-${u}`, spellcheck: false, size: 6 }));
      $("deadlines").append(d);
      const r = el("div");
      r.append(el("label", `Page ${u} again after`, { htmlFor: `esc-repeat-${u}` }), el("input", null, { id: `esc-repeat-${u}`, spellcheck: false, size: 6 }));
      $("repeats").append(r);
    }
    $("backtest-team").addEventListener("change", () => this.backtestDefault());
  }

  // backtestDefault proposes the day 30 days ago in the chosen team's zone.
  backtestDefault() {
    $("backtest-since").value = zonedDate(Date.now() - 30 * 86400000, this.backtestZone());
  }

  backtestZone() {
    return $("backtest-team").selectedOptions[0]?.dataset.timezone || "UTC";
  }

  // show loads a section when it is opened.
  show(section) {
    const load = { users: () => this.busy("users", () => this.loadUsers(false)), teams: () => this.busy("teams", () => this.loadTeams()),
      rules: () => this.busy("rules", () => this.loadRules()),
      audit: () => this.audit.show(), patients: () => this.patients.show() }[section];
    return load ? load() : Promise.resolve();
  }

  // busy shows a section's loading line while fn runs.
  async busy(section, fn) {
    $(`${section}-loading`).hidden = false;
    try {
      return await fn();
    } finally {
      $(`${section}-loading`).hidden = true;
    }
  }

  status(section, ok, err) {
    $(`${section}-result`).textContent = ok || "";
    $(`${section}-error`).textContent = err ? errText(err) : "";
  }

  // Users and tokens.

  async loadUsers(more) {
    if (!this.can("users.manage")) return;
    if (!more) this.patients.fillPatientSelect($("user-patient"));
    const q = new URLSearchParams({ limit: "100" });
    if ($("users-q").value.trim()) q.set("q", $("users-q").value.trim());
    if ($("users-role-filter").value) q.set("role", $("users-role-filter").value);
    if (more && this.usersCursor) q.set("cursor", this.usersCursor);
    try {
      const page = await this.api.get(`/v1/users?${q}`);
      this.users = more ? [...this.users, ...(page.items || [])] : page.items || [];
      this.usersCursor = page.next_cursor || null;
      for (const u of this.users) this.userNames.set(u.id, u.name);
      this.renderUsers();
      $("users-error").textContent = "";
    } catch (err) {
      this.status("users", "", err);
    }
  }

  renderUsers() {
    $("users-table").tBodies[0].replaceChildren(...this.users.map((u) => {
      const tr = el("tr", null, { dataset: { userId: u.id, disabled: String(!!u.disabled_at) } });
      const actions = el("td");
      actions.append(
        button(u.disabled_at ? "Enable" : "Disable", `${u.disabled_at ? "Enable" : "Disable"} ${u.name}`,
          () => this.setDisabled(u, !u.disabled_at)),
        button("Tokens", `Tokens of ${u.name}`, () => this.openTokens(u)));
      tr.append(el("th", u.name, { scope: "row" }), el("td", u.role),
        el("td", u.disabled_at ? `Disabled ${fmtTime(u.disabled_at)}` : "Active"), el("td", fmtTime(u.created_at)), actions);
      return tr;
    }));
    $("users-more").hidden = !this.usersCursor;
    $("users-empty").hidden = this.users.length > 0;
  }

  async createUser() {
    const body = { name: $("user-name").value.trim(), role: $("user-role").value };
    if ($("user-patient").value) body.patient_id = $("user-patient").value;
    try {
      const u = await this.api.post("/v1/users", body);
      $("user-form").reset();
      this.status("users", `Created ${u.name}.`);
      await this.loadUsers(false);
    } catch (err) {
      this.status("users", "", err);
    }
  }

  async setDisabled(u, disabled) {
    try {
      const got = await this.api.patch(`/v1/users/${encodeURIComponent(u.id)}`, { disabled });
      this.status("users", `${got.name} is ${got.disabled_at ? "disabled" : "enabled"}.`);
      Object.assign(u, got);
      this.renderUsers();
      $("users-table").querySelector(`tr[data-user-id="${CSS.escape(u.id)}"] button`)?.focus();
    } catch (err) {
      this.status("users", "", err);
    }
  }

  async openTokens(u) {
    this.tokenUser = u;
    $("tokens").hidden = false;
    $("new-token").hidden = true;
    $("new-token-value").value = "";
    $("tokens-heading").textContent = `Tokens of ${u.name}`;
    await this.loadTokens();
    $("tokens-heading").focus();
  }

  async loadTokens() {
    const u = this.tokenUser;
    try {
      const page = await this.api.get(`/v1/users/${encodeURIComponent(u.id)}/tokens`);
      $("tokens-table").tBodies[0].replaceChildren(...(page.items || []).map((t) => {
        const tr = el("tr", null, { dataset: { tokenId: t.id, revoked: String(!!t.revoked_at) } });
        const actions = el("td");
        if (!t.revoked_at) actions.append(button("Revoke", `Revoke token ${t.id}`, () => this.revoke(t)));
        const expired = t.expires_at && new Date(t.expires_at) < new Date();
        tr.append(el("th", t.id, { scope: "row" }), el("td", fmtTime(t.created_at)), el("td", t.expires_at ? fmtTime(t.expires_at) : "Never"),
          el("td", t.revoked_at ? `Revoked ${fmtTime(t.revoked_at)}` : expired ? "Expired" : "Valid"), actions);
        return tr;
      }));
    } catch (err) {
      this.status("users", "", err);
    }
  }

  async issueToken() {
    const u = this.tokenUser;
    const exp = $("token-expiry").value;
    try {
      const t = await this.api.post(`/v1/users/${encodeURIComponent(u.id)}/tokens`, exp ? { expires_in: exp } : {});
      $("new-token").hidden = false;
      $("new-token-value").value = t.token;
      $("new-token-value").focus();
      $("new-token-value").select();
      this.status("users", `Issued a token for ${u.name}${t.expires_at ? `, valid until ${fmtTime(t.expires_at)}` : ", without expiry"}.`);
      await this.loadTokens();
    } catch (err) {
      this.status("users", "", err);
    }
  }

  async revoke(t) {
    try {
      await this.api.del(`/v1/tokens/${encodeURIComponent(t.id)}`);
      this.status("users", "Token revoked.");
      await this.loadTokens();
      $("tokens-heading").focus();
    } catch (err) {
      this.status("users", "", err);
    }
  }

  // Care teams.

  async loadTeams() {
    try {
      // Admins edit teams; a team's leads see their teams to broadcast.
      const admin = this.can("teams.manage");
      const leads = new Set((this.getMe()?.teams || []).filter((m) => m.role === "lead").map((m) => m.care_team_id));
      const [teams, users] = await Promise.all([this.api.get("/v1/care-teams"),
        admin ? this.api.get("/v1/users?limit=500") : Promise.resolve({ items: [] })]);
      for (const u of users.items || []) this.userNames.set(u.id, u.name);
      for (const t of teams.items || []) for (const m of t.members || []) if (m.name) this.userNames.set(m.user_id, m.name);
      this.staff = (users.items || []).filter((u) => ["clinician", "scheduler", "admin"].includes(u.role) && !u.disabled_at);
      $("teams-table").tBodies[0].replaceChildren(...(teams.items || []).map((t) => {
        const tr = el("tr", null, { dataset: { teamId: t.id } });
        const actions = el("td");
        actions.append(button("Members", `Members of ${t.name}`, () => this.openMembers(t.id)));
        if (admin) actions.append(button("Edit", `Edit ${t.name}`, () => this.openTeam(t.id)));
        if (this.can("broadcast") && (admin || leads.has(t.id))) {
          actions.append(button("Broadcast", `Broadcast to the patients of ${t.name}`, () => this.openBroadcast(t, true)));
        }
        tr.append(el("th", t.name, { scope: "row" }), el("td", String((t.members || []).length)), el("td", t.timezone || "UTC"),
          el("td", policyText(t.escalation)), actions);
        return tr;
      }));
      $("teams-error").textContent = "";
      $("teams-empty").hidden = (teams.items || []).length > 0;
    } catch (err) {
      this.status("teams", "", err);
    }
  }

  userLabel(id) {
    return this.userNames.get(id) || id;
  }

  async openTeam(id) {
    try {
      this.team = await this.api.get(`/v1/care-teams/${encodeURIComponent(id)}`);
    } catch (err) {
      this.status("teams", "", err);
      return;
    }
    const t = this.team;
    $("team-form").hidden = false;
    $("team-form").dataset.teamId = t.id;
    this.openBroadcast(t, false);
    $("team-form-heading").textContent = `Edit ${t.name}`;
    $("team-name").value = t.name;
    $("team-tz").value = t.timezone || "UTC";
    this.members = (t.members || []).map((m) => ({ ...m }));
    this.slots = (t.on_call || []).map((s) => ({ ...s }));
    const p = t.escalation || {};
    for (const u of URGENCIES) {
      $(`esc-ack-${u}`).value = p.ack_deadlines?.[u] || "";
      $(`esc-repeat-${u}`).value = p.repeat_intervals?.[u] || "";
    }
    $("esc-levels").value = (p.levels || []).join(", ");
    $("esc-skip-offline").checked = !!p.skip_offline_first_step;
    this.renderMembers();
    this.renderSlots();
    $("team-form-heading").focus();
  }

  // openMembers shows a team's members with their presence (online, away,
  // offline and when last seen), which the API gives to the team's own
  // members only; presence events keep it current (onPresence).
  async openMembers(id) {
    let t;
    try {
      t = await this.api.get(`/v1/care-teams/${encodeURIComponent(id)}`);
    } catch (err) {
      this.status("teams", "", err);
      return;
    }
    const me = this.getMe()?.user?.id;
    const roles = { clinician: "Clinician", lead: "Lead", scheduler: "Scheduler" };
    $("team-members").hidden = false;
    $("team-members").dataset.teamId = t.id;
    $("team-members-heading").textContent = `Members of ${t.name}`;
    $("team-members-table").tBodies[0].replaceChildren(...(t.members || []).map((m) => {
      const tr = el("tr", null, { dataset: { userId: m.user_id, presence: m.presence?.state || "" } });
      tr.append(el("th", m.user_id === me ? `${m.name || m.user_id} (you)` : m.name || m.user_id, { scope: "row" }),
        el("td", roles[m.role] || m.role), el("td", presenceText(m.presence), { className: "presence" }));
      return tr;
    }));
    $("team-members-heading").focus();
  }

  // onPresence shows a presence event in the open member list.
  onPresence(data) {
    if ($("team-members").hidden || typeof data?.user_id !== "string" || typeof data.state !== "string") return;
    const tr = $("team-members-table").querySelector(`tr[data-user-id="${CSS.escape(data.user_id)}"]`);
    if (!tr) return;
    tr.dataset.presence = data.state;
    tr.querySelector("td.presence").textContent = presenceText({ state: data.state, last_seen: data.last_seen });
  }

  // openBroadcast shows the broadcast form for a team.
  openBroadcast(t, focus) {
    const form = $("broadcast-form");
    if (form.dataset.teamId !== t.id) {
      $("broadcast-progress").textContent = "";
      $("broadcast-error").textContent = "";
      delete form.dataset.status;
    }
    form.hidden = false;
    form.dataset.teamId = t.id;
    $("broadcast-heading").textContent = `Broadcast to the patients of ${t.name}`;
    if (focus) $("broadcast-body").focus();
  }

  // broadcast sends one message to every patient of the open team, then
  // follows its progress until every thread has its copy (or failed).
  async broadcast() {
    const form = $("broadcast-form");
    const teamID = form.dataset.teamId;
    const body = $("broadcast-body").value.trim();
    if (!teamID || !body) return;
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    $("broadcast-error").textContent = "";
    $("broadcast-progress").textContent = "Sending…";
    form.dataset.status = "sending";
    try {
      const req = { body };
      if ($("broadcast-urgent").checked) req.urgent = true;
      let b = await this.api.post(`/v1/care-teams/${encodeURIComponent(teamID)}/broadcasts`, req);
      $("broadcast-body").value = "";
      $("broadcast-urgent").checked = false;
      form.dataset.broadcastId = b.id;
      for (;;) {
        if (form.dataset.teamId !== teamID) return;
        $("broadcast-progress").textContent = broadcastText(b);
        form.dataset.status = b.status;
        if (b.status === "completed") break;
        await new Promise((r) => setTimeout(r, BROADCAST_POLL_MS));
        b = await this.api.get(`/v1/broadcasts/${encodeURIComponent(b.id)}`);
      }
    } catch (err) {
      $("broadcast-progress").textContent = "";
      $("broadcast-error").textContent = errText(err);
      form.dataset.status = "error";
    } finally {
      submit.disabled = false;
    }
  }

  renderMembers() {
    $("members-table").tBodies[0].replaceChildren(...this.members.map((m, i) => {
      const tr = el("tr");
      const role = select(`member-role-${i}`, [["clinician", "Clinician"], ["lead", "Lead"], ["scheduler", "Scheduler"]], m.role,
        `Team role of ${this.userLabel(m.user_id)}`);
      role.addEventListener("change", () => { m.role = role.value; });
      const roleCell = el("td");
      roleCell.append(role);
      const actions = el("td");
      actions.append(button("Remove", `Remove ${this.userLabel(m.user_id)}`, () => {
        this.members.splice(i, 1);
        this.renderMembers();
        this.renderSlots();
        $("member-add").focus();
      }));
      tr.append(el("th", this.userLabel(m.user_id), { scope: "row" }), roleCell, actions);
      return tr;
    }));
    const inTeam = new Set(this.members.map((m) => m.user_id));
    $("member-add").replaceChildren(...(this.staff || []).filter((u) => !inTeam.has(u.id))
      .map((u) => el("option", `${u.name} (${u.role})`, { value: u.id })));
  }

  addMember() {
    const id = $("member-add").value;
    if (!id) return;
    const u = (this.staff || []).find((x) => x.id === id);
    this.members.push({ user_id: id, role: u?.role === "scheduler" ? "scheduler" : "clinician" });
    this.renderMembers();
    this.renderSlots();
    $("member-add").focus();
  }

  renderSlots() {
    const onCall = this.members.filter((m) => m.role === "clinician" || m.role === "lead");
    $("rota-table").tBodies[0].replaceChildren(...this.slots.map((s, i) => {
      const tr = el("tr");
      const who = select(`slot-user-${i}`, onCall.map((m) => [m.user_id, this.userLabel(m.user_id)]), s.user_id, `Slot ${i + 1}: clinician`);
      const day = select(`slot-day-${i}`, WEEKDAYS.map((d) => [d, d[0].toUpperCase() + d.slice(1)]), s.weekday, `Slot ${i + 1}: day`);
      const from = el("input", null, { id: `slot-start-${i}`, value: s.start || "", size: 5, placeholder: "08:00" });
      from.setAttribute("aria-label", `Slot ${i + 1}: from`);
      const to = el("input", null, { id: `slot-end-${i}`, value: s.end || "", size: 5, placeholder: "20:00" });
      to.setAttribute("aria-label", `Slot ${i + 1}: to`);
      who.addEventListener("change", () => { s.user_id = who.value; });
      day.addEventListener("change", () => { s.weekday = day.value; });
      from.addEventListener("input", () => { s.start = from.value.trim(); });
      to.addEventListener("input", () => { s.end = to.value.trim(); });
      const cells = [who, day, from, to].map((c) => { const td = el("td"); td.append(c); return td; });
      const actions = el("td");
      actions.append(button("Remove", `Remove slot ${i + 1}`, () => { this.slots.splice(i, 1); this.renderSlots(); $("rota-add").focus(); }));
      tr.append(...cells, actions);
      return tr;
    }));
  }

  addSlot() {
    const first = this.members.find((m) => m.role === "clinician" || m.role === "lead");
    this.slots.push({ user_id: first?.user_id || "", weekday: "monday", start: "08:00", end: "20:00" });
    this.renderSlots();
    $(`slot-user-${this.slots.length - 1}`).focus();
  }

  async saveTeam() {
    const t = this.team;
    const body = teamBody({
      name: $("team-name").value.trim(), timezone: $("team-tz").value.trim(), members: this.members,
      deadlines: Object.fromEntries(URGENCIES.map((u) => [u, $(`esc-ack-${u}`).value])),
      repeats: Object.fromEntries(URGENCIES.map((u) => [u, $(`esc-repeat-${u}`).value])),
      levels: $("esc-levels").value, onCall: this.slots, skipOffline: $("esc-skip-offline").checked,
    });
    try {
      const saved = await this.api.put(`/v1/care-teams/${encodeURIComponent(t.id)}`, body);
      this.status("teams", `Saved ${saved.name}.`);
      await this.loadTeams();
      await this.openTeam(saved.id);
    } catch (err) {
      this.status("teams", "", err);
    }
  }

  // Rules.

  // loadRules shows the rules; admins (rules.manage) also change them, run
  // backtests and read evaluation errors, while leads (rules.simulate)
  // try parameters in a simulation only.
  async loadRules() {
    const manage = this.can("rules.manage");
    for (const id of ["backtest-form", "rule-errors-heading", "rule-errors-hint", "rule-errors"]) $(id).hidden = !manage;
    $("simulate-form").hidden = !this.can("rules.simulate");
    try {
      const [rules, errors] = await Promise.all([this.api.get("/v1/rules"),
        manage ? this.api.get("/v1/rules/errors?limit=50") : Promise.resolve({ items: [] })]);
      this.rules = rules.items || [];
      $("rules-table").tBodies[0].replaceChildren(...this.rules.map((r) => {
        const tr = el("tr", null, { dataset: { ruleId: r.id, enabled: String(r.enabled) } });
        const actions = el("td");
        if (manage) actions.append(button(r.enabled ? "Disable" : "Enable", `${r.enabled ? "Disable" : "Enable"} ${r.id}`, () => this.setEnabled(r, !r.enabled)));
        actions.append(button("Parameters", `${manage ? "Edit" : "Try"} the parameters of ${r.id}`, () => this.openParams(r)));
        tr.append(el("th", r.title, { scope: "row" }), el("td", r.id), el("td", r.urgency || "—"), el("td", `v${r.version}`),
          el("td", r.enabled ? "Enabled" : "Disabled"), actions);
        return tr;
      }));
      if (!manage) return;
      const current = $("backtest-rule").value;
      $("backtest-rule").replaceChildren(...this.rules.map((r) => el("option", r.title, { value: r.id })));
      if (current) $("backtest-rule").value = current;
      await this.fillBacktestTeams();
      const errs = errors.items || [];
      $("rule-errors").tBodies[0].replaceChildren(...(errs.length ? errs.map((e) => {
        const tr = el("tr");
        tr.append(el("td", fmtTime(e.at)), el("td", this.rules.find((r) => r.id === e.rule_id)?.title || e.rule_id),
          el("td", `v${e.rule_version}`), el("td", e.error));
        return tr;
      }) : [(() => { const tr = el("tr"); tr.append(el("td", "No evaluation errors.", { colSpan: 4 })); return tr; })()]));
      $("rules-error").textContent = "";
    } catch (err) {
      this.status("rules", "", err);
    }
  }

  async setEnabled(r, enabled) {
    try {
      const got = await this.api.put(`/v1/rules/${encodeURIComponent(r.id)}`, { enabled });
      this.status("rules", `${got.id} is ${got.enabled ? "enabled" : "disabled"} (v${got.version}).`);
      await this.loadRules();
      $("rules-table").querySelector(`tr[data-rule-id="${CSS.escape(r.id)}"] button`)?.focus();
    } catch (err) {
      this.status("rules", "", err);
    }
  }

  openParams(r) {
    this.ruleEdit = r;
    const def = r.definition || {};
    $("params-form").hidden = false;
    $("params-heading").textContent = `Parameters of ${r.title} (${r.id}, v${r.version})`;
    const manage = this.can("rules.manage");
    $("params-save").hidden = !manage;
    $("params-simulate").hidden = !this.can("rules.simulate");
    $("params-hint").textContent = manage ? "Saving makes a new version of the rule; alerts record the version that fired. Simulate first to see what the change costs and gains."
      : "Simulate a change to see what it costs and gains; an admin saves rules.";
    const fields = ruleParams(def).map(({ name, value, bounds }) => {
      const d = el("div");
      const attrs = { id: `param-${name}`, type: "number", step: "any", value: String(value), required: true, dataset: { param: name },
        "aria-describedby": `param-${name}-error` };
      if (bounds) Object.assign(attrs, { min: String(bounds[0]), max: String(bounds[1]) });
      d.append(el("label", bounds ? `${name} (${bounds[0]}–${bounds[1]})` : name, { htmlFor: `param-${name}` }), el("input", null, attrs),
        el("p", null, { id: `param-${name}-error`, className: "error", dataset: { simError: "" } }));
      return d;
    });
    $("params-fields").replaceChildren(...(fields.length ? fields : [el("p", "This rule has no parameters.")]));
    $("params-heading").focus();
  }

  // paramValues reads the parameter editor: {name: number}, NaN where an
  // input is blank.
  paramValues() {
    const values = {};
    for (const input of $("params-fields").querySelectorAll("input[data-param]")) {
      values[input.dataset.param] = input.value.trim() === "" ? NaN : Number(input.value);
    }
    return values;
  }

  // paramEdits is what the open parameter editor proposes, for a
  // simulation; null when it is closed.
  paramEdits() {
    const r = this.ruleEdit;
    if (!r || $("params-form").hidden) return null;
    const def = r.definition || {};
    return { rule: r.id, def, params: ruleParams(def), values: this.paramValues() };
  }

  async saveParams() {
    const r = this.ruleEdit;
    const def = withParams(r.definition || {}, this.paramValues());
    try {
      const got = await this.api.put(`/v1/rules/${encodeURIComponent(r.id)}`, def);
      this.status("rules", `Saved ${got.id} as v${got.version}.`);
      $("params-form").hidden = true;
      await this.loadRules();
    } catch (err) {
      this.status("rules", "", err);
    }
  }

  // fillBacktestTeams offers the teams whose time zone the backtest's dates
  // are read in (the caller's first team first).
  async fillBacktestTeams() {
    if ($("backtest-team").options.length) return;
    let teams = [];
    try {
      teams = (await this.api.get("/v1/care-teams")).items || [];
    } catch {
      teams = [];
    }
    const mine = new Set((this.getMe()?.teams || []).map((m) => m.care_team_id));
    teams.sort((a, b) => Number(mine.has(b.id)) - Number(mine.has(a.id)));
    const opts = teams.map((t) => {
      const o = el("option", `${t.name} (${t.timezone || "UTC"})`, { value: t.id });
      o.dataset.timezone = t.timezone || "UTC";
      return o;
    });
    const utc = el("option", "UTC", { value: "" });
    utc.dataset.timezone = "UTC";
    $("backtest-team").replaceChildren(...opts, utc);
    this.backtestDefault();
  }

  async backtest() {
    const zone = this.backtestZone();
    const body = { rule_id: $("backtest-rule").value, since: zonedMidnight($("backtest-since").value, zone) };
    const btn = $("backtest-form").querySelector("button");
    btn.disabled = true;
    $("rules-result").textContent = "Running the backtest…";
    try {
      const res = await this.api.post("/v1/rules/backtest", body);
      const rows = [
        ["Rule", `${this.rules.find((r) => r.id === res.rule_id)?.title || res.rule_id} (${res.rule_id} v${res.rule_version})`],
        ["Period", `${dateTime(res.since, zone)} – ${dateTime(res.until, zone)} (${zone})`],
        ["Patients scanned", res.patients_scanned],
        ["Readings scanned", res.readings_scanned],
        ["Symptom reports scanned", res.symptom_reports_scanned],
        ["Findings", res.findings],
        ["Suppressed (hysteresis)", res.suppressed],
        ["Alerts it would have raised", res.alerts],
        ["Evaluation errors", res.errors],
        ["Patients with findings", (res.patients || []).length],
      ];
      if (res.truncated) rows.push(["Note", "Stopped early: the result covers part of the period"]);
      $("backtest-facts").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", k), el("dd", String(v ?? "—"))]));
      $("backtest-facts").dataset.alerts = String(res.alerts);
      $("backtest-facts").dataset.rule = res.rule_id;
      $("backtest-facts").dataset.since = body.since;
      $("backtest-result").hidden = false;
      this.status("rules", `Backtest of ${res.rule_id} done: ${res.alerts} alerts from ${res.findings} findings.`);
    } catch (err) {
      this.status("rules", "", err);
    } finally {
      btn.disabled = false;
    }
  }

  // Jobs: a session cookie for the dashboard, then the dashboard in a new
  // tab (it has its own page; the token never goes into its URL).
  async openJobs() {
    try {
      const s = await this.api.session();
      $("jobs-error").textContent = "";
      window.open(s.jobs_url, "_blank", "noopener");
    } catch (err) {
      $("jobs-error").textContent = errText(err);
    }
  }
}
