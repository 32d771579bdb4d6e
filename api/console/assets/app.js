// Tend's triage console: sign in with a token, watch the queue, open an
// alert, act on it. No framework and no build step: ES modules served as
// they are written. What the page offers comes from GET /v1/me (the
// caller's role, teams and capabilities), never from probing.

import { Admin } from "./admin.js";
import { Api, ApiError } from "./api.js";
import { applyBranding } from "./brand.js";
import { Detail } from "./detail.js";
import { ensureDevice } from "./keys.js";
import { defaultPrefs } from "./format.js";
import { Live, POLL_MS } from "./live.js";
import { Messages } from "./messages.js";
import { IdleReporter } from "./presence.js";
import { counts, matchName, renderCounts, renderQueue } from "./queue.js";

const TOKEN_KEY = "tend.token";
const PREFS_KEY = "tend.units";
const SECTIONS = ["queue", "messages", "patients", "users", "teams", "rules", "audit", "jobs"];
const TEAM_ROLES = { clinician: "Clinician", lead: "Lead", scheduler: "Scheduler" };
const $ = (id) => document.getElementById(id);

// takeFragmentToken reads a one-time sign-in link (#token=…), keeps the token
// for this tab, and removes it from the address bar and history. It returns
// the token, if there was one.
function takeFragmentToken() {
  const hash = location.hash.slice(1);
  if (!hash) return "";
  const token = new URLSearchParams(hash).get("token");
  history.replaceState(null, "", location.pathname + location.search);
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  return token || "";
}

// labelCells gives every cell of a table's body the name of its column, so
// that a table shown as a list on a narrow screen still says what each
// value is.
function labelCells(table) {
  const heads = [...(table.tHead?.rows[0]?.cells || [])].map((c) => c.textContent.trim());
  for (const row of table.tBodies[0]?.rows || []) {
    [...row.cells].forEach((c, i) => {
      if (heads[i] && c.tagName === "TD" && c.dataset.label !== heads[i]) c.dataset.label = heads[i];
    });
  }
}

function loadPrefs() {
  try {
    return { ...defaultPrefs(), ...JSON.parse(localStorage.getItem(PREFS_KEY) || "{}") };
  } catch {
    return defaultPrefs();
  }
}

class Console {
  constructor() {
    this.api = null;
    this.live = null;
    this.detail = null;
    this.me = null;
    this.items = [];
    this.refreshes = 0;
    this.inflight = null;
    this.prefs = loadPrefs();
    this.ruleTitles = new Map();
  }

  boot() {
    takeFragmentToken();
    // A sign-in link opened in a tab that already shows the console.
    window.addEventListener("hashchange", () => {
      const token = takeFragmentToken();
      if (token) {
        if (this.api) this.signOut("");
        sessionStorage.setItem(TOKEN_KEY, token);
        this.signIn(token);
      }
    });
    $("signin-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.signIn($("token").value.trim());
    });
    $("sign-out").addEventListener("click", () => this.signOut(""));
    for (const b of document.querySelectorAll("#sections button[data-section]")) {
      b.addEventListener("click", () => this.showSection(b.dataset.section));
    }
    this.bindFilters();
    this.bindPrefs();
    new MutationObserver(() => document.querySelectorAll("table.grid").forEach(labelCells))
      .observe($("main"), { childList: true, subtree: true });
    this.admin = new Admin(() => this.api, () => this.me);
    this.messages = new Messages(() => this.api, () => this.device);
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) this.signIn(token);
    else this.showSignIn("");
  }

  bindFilters() {
    for (const id of ["filter-team", "filter-urgency", "filter-status"]) {
      $(id).addEventListener("change", () => {
        this.items = [];
        $("queue-loading").hidden = false;
        this.render();
        this.refresh();
      });
    }
    $("filter-patient").addEventListener("input", () => this.render());
    $("queue-filter").addEventListener("submit", (ev) => ev.preventDefault());
  }

  bindPrefs() {
    $("pref-glucose").value = this.prefs.glucose;
    $("pref-temperature").value = this.prefs.temperature;
    for (const [id, key] of [["pref-glucose", "glucose"], ["pref-temperature", "temperature"]]) {
      $(id).addEventListener("change", () => {
        this.prefs = { ...this.prefs, [key]: $(id).value };
        localStorage.setItem(PREFS_KEY, JSON.stringify(this.prefs));
        this.render();
        this.detail?.redraw();
      });
    }
  }

  can(cap) {
    return !!this.me?.capabilities?.includes(cap);
  }

  // showSection shows one section of the page; the address stays "/".
  showSection(name) {
    this.section = name;
    for (const s of SECTIONS) {
      const page = s === "queue" ? $("workspace") : $(`section-${s}`);
      page.hidden = s !== name;
      const nav = $(`nav-${s}`);
      if (s === name) nav.setAttribute("aria-current", "page");
      else nav.removeAttribute("aria-current");
    }
    $("section-none").hidden = true;
    $(name === "queue" ? "queue-heading" : `${name}-heading`).focus();
    if (name === "messages") this.messages.load();
    else if (name !== "queue") this.admin.show(name);
  }

  showSignIn(message) {
    for (const s of SECTIONS) if (s !== "queue") $(`section-${s}`).hidden = true;
    for (const id of ["workspace", "sections", "sign-out", "live", "whoami", "prefs", "e2ee-key", "e2ee-notice", "section-none", "boot-loading"]) $(id).hidden = true;
    $("signin").hidden = false;
    $("signin-error").textContent = message;
    $("token").value = "";
    $("token").focus();
  }

  async signIn(token) {
    if (!token) return;
    const api = new Api(token);
    $("signin").hidden = true;
    $("boot-loading").hidden = false;
    let me;
    try {
      me = await api.me();
    } catch (err) {
      $("boot-loading").hidden = true;
      if (err instanceof ApiError && err.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        this.showSignIn("That token was not accepted. Check it and try again.");
      } else {
        this.showSignIn(err instanceof ApiError ? err.text : `Could not reach the server: ${err.message}`);
      }
      return;
    }
    $("boot-loading").hidden = true;
    sessionStorage.setItem(TOKEN_KEY, token);
    this.api = api;
    this.me = me;
    document.body.dataset.role = me.role;
    applyBranding(api, me.organisation, { nameId: "org-name", logoId: "org-logo" }).then((undo) => {
      if (this.me === me) this.unbrand = undo;
      else undo();
    });
    for (const li of document.querySelectorAll("#sections li[data-cap]")) {
      li.hidden = !li.dataset.cap.split(" ").some((c) => this.can(c));
    }
    const teams = (me.teams || []).map((t) => `${TEAM_ROLES[t.role] || t.role}, ${t.name}`).join("; ");
    $("whoami").textContent = `Signed in as ${me.user.name}${teams ? ` (${teams})` : me.role === "admin" ? " (admin)" : ""}`;
    for (const id of ["sections", "sign-out", "whoami", "prefs"]) $(id).hidden = false;
    this.idle = new IdleReporter(api);
    this.idle.start();
    this.fillTeams();
    this.loadRuleTitles();
    this.device = this.loadDevice(api, me);
    const first = SECTIONS.find((s) => !$(`nav-${s}`).parentElement.hidden);
    if (!this.can("triage")) {
      if (first) this.showSection(first);
      else {
        $("section-none").hidden = false;
        $("none-heading").focus();
      }
      return;
    }
    // One detail pane per page (it binds the forms); a new sign-in gives it
    // the new token.
    this.detail ??= new Detail(() => this.api, {
      getDevice: () => this.device,
      ctx: () => ({ me: this.me, prefs: this.prefs, ruleTitle: (id, fallback) => this.ruleTitles.get(id) || fallback || "a rule" }),
      onActed: () => this.refresh(),
      onClose: (id) => {
        $("workspace").dataset.open = "false";
        this.render();
        $("queue").querySelector(`[data-alert-id="${CSS.escape(id || "")}"] button`)?.focus();
      },
    });
    $("live").hidden = false;
    $("queue-loading").hidden = false;
    this.showSection("queue");
    this.live = new Live(api, {
      onChange: (id) => this.refresh(id),
      onMode: (mode) => this.showMode(mode),
      onThread: (type, data) => {
        if (type === "presence") {
          this.admin.onPresence(data);
          return;
        }
        this.detail?.thread.onEvent(type, data);
        this.messages.onEvent(type, data, this.section === "messages");
      },
    });
    this.refresh().catch(() => {});
    this.live.start();
  }

  // loadDevice finds or registers this browser's encryption keys for the
  // user and shows their fingerprint; it resolves to the Device, or to null
  // (saying why) when the browser cannot have keys.
  async loadDevice(api, me) {
    $("e2ee-notice").hidden = true;
    try {
      const { device, notice } = await ensureDevice(api, me.user.id, "Triage console");
      if (api !== this.api) return null;
      $("e2ee-fingerprint").textContent = device.fingerprint;
      $("e2ee-key").hidden = false;
      $("e2ee-notice").textContent = notice;
      $("e2ee-notice").hidden = !notice;
      return device;
    } catch (err) {
      if (api === this.api) {
        $("e2ee-notice").textContent = `This browser has no encryption keys, so it cannot read or write encrypted conversations: ${err instanceof ApiError ? err.text : err.message}`;
        $("e2ee-notice").hidden = false;
      }
      return null;
    }
  }

  // fillTeams offers the caller's teams in the queue's team filter.
  fillTeams() {
    const sel = $("filter-team");
    sel.replaceChildren(new Option("All my teams", ""), ...(this.me.teams || []).map((t) => new Option(t.name, t.care_team_id)));
  }

  // loadRuleTitles reads the rules once, so that findings name rules by title.
  async loadRuleTitles() {
    if (!this.can("rules.read")) return;
    try {
      const rules = await this.api.get("/v1/rules");
      for (const r of rules.items || []) this.ruleTitles.set(r.id, r.title);
    } catch {
      // Titles fall back to the alert's own title.
    }
  }

  signOut(message) {
    // Also end the job dashboard's session, if one was opened (best effort).
    if (this.api && this.can("jobs")) this.api.endSession().catch(() => {});
    delete document.body.dataset.role;
    this.unbrand?.();
    this.unbrand = null;
    delete document.body.dataset.presence;
    delete document.body.dataset.presenceAt;
    this.live?.stop();
    this.idle?.stop();
    this.idle = null;
    this.detail?.close();
    this.messages.reset();
    this.admin.reset();
    this.api = null;
    this.me = null;
    this.device = null;
    this.live = null;
    this.items = [];
    this.loaded = false;
    $("queue").replaceChildren();
    sessionStorage.removeItem(TOKEN_KEY);
    this.showSignIn(message);
  }

  showMode(mode) {
    const text = {
      stream: "Live: updates arrive as they happen.",
      polling: `Live stream unavailable: refreshing every ${POLL_MS / 1000} s.`,
      offline: "Cannot reach the server: retrying.",
    }[mode];
    $("live").textContent = text || "";
    $("live").dataset.mode = mode;
  }

  filter() {
    return { care_team_id: $("filter-team").value, urgency: $("filter-urgency").value, status: $("filter-status").value };
  }

  // refresh refetches the queue (one request at a time) and, when the open
  // alert changed, its detail. It rejects when the server cannot be reached.
  refresh(changedID) {
    if (!this.api) return Promise.resolve();
    if (!this.inflight) {
      const api = this.api;
      const f = this.filter();
      this.inflight = api.alerts(f)
        .then((list) => {
          if (api !== this.api) return;
          if (JSON.stringify(f) !== JSON.stringify(this.filter())) {
            this.again = true; // the filter changed while this was in flight
            return;
          }
          this.show(list);
          $("queue-error").textContent = "";
        })
        .catch((err) => {
          if (api !== this.api) return;
          if (err instanceof ApiError && err.status === 401) {
            this.signOut("Your session has ended. Sign in again.");
            return;
          }
          $("queue-error").textContent = err instanceof ApiError ? err.text : "Cannot reach the server.";
          if (!(err instanceof ApiError)) throw err;
        })
        .finally(() => {
          this.inflight = null;
          if (this.again) {
            this.again = false;
            this.refresh().catch(() => {});
          }
        });
    }
    const p = this.inflight;
    // Without the stream, open threads are polled with the queue.
    if (this.live && this.live.mode !== "stream") {
      this.detail?.thread.fetchNew();
      this.messages.view.fetchNew();
      if (this.section === "messages") this.messages.load();
    }
    if (this.detail && changedID && changedID === this.detail.id) this.detail.refresh();
    return p;
  }

  show(list) {
    this.items = list.items || [];
    this.counts = counts(list);
    this.refreshes++;
    this.loaded = true;
    this.render();
    if (this.detail?.changedIn(this.items)) this.detail.refresh();
  }

  render() {
    if (!this.me) return;
    const shown = matchName(this.items, $("filter-patient").value);
    renderCounts($("counts"), this.counts || counts({ items: this.items }));
    renderQueue($("queue"), shown, { selected: this.detail?.id, onOpen: (id) => this.open(id), prefs: this.prefs, me: this.me.user.id });
    $("queue").dataset.refreshes = String(this.refreshes); // lets tests know a refresh happened
    $("queue-loading").hidden = !!this.loaded;
    const filtered = Object.values(this.filter()).some(Boolean) || $("filter-patient").value.trim();
    $("queue-empty").textContent = filtered ? "No alerts match these filters." : "No alerts need attention.";
    $("queue-empty").hidden = !this.loaded || shown.length > 0;
  }

  open(id) {
    $("workspace").dataset.open = "true";
    this.detail.open(id).then(() => this.render());
  }
}

new Console().boot();
