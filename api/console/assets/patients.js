// The Patients page (admins and clinicians): find patients by name, enrol a
// new one, change a patient's name, time zone, care team and programs, and
// (admins) link a device to a patient: a device user whose token is shown
// once, for the device to post readings with.

import { el, errText } from "./dom.js";

const $ = (id) => document.getElementById(id);
export const PROGRAMS = [["heart_failure", "Heart failure"], ["hypertension", "Hypertension"], ["copd", "COPD"],
  ["diabetes", "Diabetes"]];



// patientBody is the POST or PATCH body for the patient form; for a PATCH
// only what changed. Pure.
export function patientBody(form, before) {
  const body = { display_name: form.name.trim(), timezone: form.timezone.trim(), care_team_id: form.team, programs: form.programs };
  const ext = form.external.trim();
  if (!before) {
    if (ext) body.external_id = ext;
    return body;
  }
  if (ext !== (before.external_id || "")) body.external_id = ext;
  for (const k of ["display_name", "timezone", "care_team_id"]) if (body[k] === before[k]) delete body[k];
  if (JSON.stringify([...body.programs].sort()) === JSON.stringify([...(before.programs || [])].sort())) delete body.programs;
  return body;
}

export class Patients {
  // getApi(): the Api; getMe(): the caller; onDevice(): a device user was
  // created (the users page may want to reload).
  constructor(getApi, getMe, onDevice) {
    this.getApi = getApi;
    this.getMe = getMe;
    this.onDevice = onDevice;
    this.items = [];
    this.teams = new Map();
    this.editing = null;
    $("patients-filter").addEventListener("submit", (ev) => { ev.preventDefault(); this.load(false); });
    $("patients-more").addEventListener("click", () => this.load(true));
    $("patient-new").addEventListener("click", () => this.edit(null));
    $("patient-cancel").addEventListener("click", () => { $("patient-form").hidden = true; $("devices").hidden = true; $("patients-heading").focus(); });
    $("patient-form").addEventListener("submit", (ev) => { ev.preventDefault(); this.save(); });
    $("device-form").addEventListener("submit", (ev) => { ev.preventDefault(); this.linkDevice(); });
    $("patient-programs").replaceChildren(...PROGRAMS.map(([v, label]) => {
      const l = el("label", null, { className: "check", htmlFor: `program-${v}` });
      l.append(el("input", null, { type: "checkbox", id: `program-${v}`, value: v, dataset: { program: v } }), ` ${label}`);
      return l;
    }));
  }

  get api() {
    return this.getApi();
  }

  can(cap) {
    return !!this.getMe()?.capabilities?.includes(cap);
  }

  async show() {
    await this.loadTeams();
    return this.load(false);
  }

  async loadTeams() {
    try {
      const teams = (await this.api.get("/v1/care-teams")).items || [];
      this.teams = new Map(teams.map((t) => [t.id, t]));
      $("patient-team").replaceChildren(...teams.map((t) => el("option", t.name, { value: t.id })));
    } catch (err) {
      $("patients-error").textContent = errText(err);
    }
  }

  // fillPatientSelect offers patients by name in a select (the users page's
  // "patient" of a new patient or device user).
  async fillPatientSelect(sel) {
    try {
      const page = await this.api.get("/v1/patients?limit=500");
      const keep = sel.value;
      sel.replaceChildren(el("option", "None", { value: "" }), ...(page.items || []).map((p) => el("option", p.display_name, { value: p.id })));
      sel.value = keep;
    } catch {
      // The select keeps "None"; creating a patient user then says what is missing.
    }
  }

  async load(more) {
    const q = new URLSearchParams({ limit: "100" });
    if ($("patients-q").value.trim()) q.set("q", $("patients-q").value.trim());
    if (more && this.cursor) q.set("cursor", this.cursor);
    $("patients-loading").hidden = false;
    try {
      const page = await this.api.get(`/v1/patients?${q}`);
      this.items = more ? [...this.items, ...(page.items || [])] : page.items || [];
      this.cursor = page.next_cursor || null;
      this.render();
      $("patients-error").textContent = "";
    } catch (err) {
      $("patients-error").textContent = errText(err);
    } finally {
      $("patients-loading").hidden = true;
    }
  }

  render() {
    const names = Object.fromEntries(PROGRAMS);
    $("patients-table").tBodies[0].replaceChildren(...this.items.map((p) => {
      const tr = el("tr", null, { dataset: { patientId: p.id } });
      const actions = el("td");
      const edit = el("button", "Edit", { type: "button" });
      edit.setAttribute("aria-label", `Edit ${p.display_name}`);
      edit.addEventListener("click", () => this.edit(p));
      actions.append(edit);
      tr.append(el("th", p.display_name, { scope: "row" }), el("td", this.teams.get(p.care_team_id)?.name || "Another team"),
        el("td", (p.programs || []).map((x) => names[x] || x).join(", ") || "None"), el("td", p.timezone), actions);
      return tr;
    }));
    $("patients-empty").hidden = this.items.length > 0;
    $("patients-more").hidden = !this.cursor;
  }

  // edit opens the form for a patient (null: a new one).
  edit(p) {
    this.editing = p;
    $("patient-form").hidden = false;
    $("patient-form-heading").textContent = p ? `Edit ${p.display_name}` : "New patient";
    $("patient-name").value = p?.display_name || "";
    $("patient-tz").value = p?.timezone || Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    if (p) $("patient-team").value = p.care_team_id;
    $("patient-external").value = p?.external_id || "";
    for (const c of $("patient-programs").querySelectorAll("input")) c.checked = !!p?.programs?.includes(c.value);
    $("devices").hidden = !p || !this.can("users.manage");
    $("device-token").hidden = true;
    if (p) this.loadDevices(p);
    $("patient-form-heading").focus();
  }

  async save() {
    const form = { name: $("patient-name").value, timezone: $("patient-tz").value, team: $("patient-team").value,
      external: $("patient-external").value,
      programs: [...$("patient-programs").querySelectorAll("input:checked")].map((c) => c.value) };
    const before = this.editing;
    const body = patientBody(form, before);
    try {
      const p = before ? await this.api.patch(`/v1/patients/${encodeURIComponent(before.id)}`, body) : await this.api.post("/v1/patients", body);
      $("patients-result").textContent = before ? `Saved ${p.display_name}.` : `Enrolled ${p.display_name}.`;
      $("patients-error").textContent = "";
      await this.load(false);
      this.edit(p);
    } catch (err) {
      $("patients-result").textContent = "";
      $("patients-error").textContent = errText(err);
    }
  }

  // loadDevices lists the device users linked to the patient (admins).
  async loadDevices(p) {
    if (!this.can("users.manage")) return;
    $("devices-heading").textContent = `Devices of ${p.display_name}`;
    try {
      const users = (await this.api.get("/v1/users?role=device&limit=500")).items || [];
      const mine = users.filter((u) => u.patient_id === p.id);
      $("devices-list").replaceChildren(...(mine.length ? mine.map((u) => el("li", `${u.name}${u.disabled_at ? " (disabled)" : ""}`))
        : [el("li", "No device is linked yet.")]));
    } catch (err) {
      $("patients-error").textContent = errText(err);
    }
  }

  // linkDevice creates a device user for the patient and issues its token.
  async linkDevice() {
    const p = this.editing;
    const name = $("device-name").value.trim();
    if (!p || !name) return;
    try {
      const u = await this.api.post("/v1/users", { name, role: "device", patient_id: p.id });
      const t = await this.api.post(`/v1/users/${encodeURIComponent(u.id)}/tokens`, {});
      $("device-name").value = "";
      $("device-token").hidden = false;
      $("device-token-value").value = t.token;
      $("device-token-value").focus();
      $("device-token-value").select();
      $("patients-result").textContent = `Linked ${u.name} to ${p.display_name}.`;
      await this.loadDevices(p);
      this.onDevice();
    } catch (err) {
      $("patients-error").textContent = errText(err);
    }
  }
}
