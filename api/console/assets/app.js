// Tend's triage console: sign in with a token, watch the queue, open an
// alert, act on it. No framework and no build step: ES modules served as
// they are written.

import { Admin } from "./admin.js";
import { Api, ApiError } from "./api.js";
import { Detail } from "./detail.js";
import { Live, POLL_MS } from "./live.js";
import { Messages } from "./messages.js";
import { counts, renderCounts, renderQueue } from "./queue.js";

const TOKEN_KEY = "tend.token";
const SECTIONS = ["queue", "messages", "users", "teams", "rules", "audit", "jobs"];
const $ = (id) => document.getElementById(id);

// takeFragmentToken reads a one-time sign-in link (#token=…), keeps the token
// for this tab, and removes it from the address bar and history.
function takeFragmentToken() {
  const hash = location.hash.slice(1);
  if (!hash) return;
  const token = new URLSearchParams(hash).get("token");
  history.replaceState(null, "", location.pathname + location.search);
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
}

class Console {
  constructor() {
    this.api = null;
    this.live = null;
    this.detail = null;
    this.items = [];
    this.refreshes = 0;
    this.inflight = null;
  }

  boot() {
    takeFragmentToken();
    $("signin-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.signIn($("token").value.trim());
    });
    $("sign-out").addEventListener("click", () => this.signOut(""));
    for (const b of document.querySelectorAll("#sections button[data-section]")) {
      b.addEventListener("click", () => this.showSection(b.dataset.section));
    }
    this.admin = new Admin(() => this.api);
    this.messages = new Messages(() => this.api);
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) this.signIn(token);
    else this.showSignIn("");
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
    $(name === "queue" ? "queue-heading" : `${name}-heading`).focus();
    if (name === "messages") this.messages.load();
    else if (name !== "queue") this.admin.show(name);
  }

  showSignIn(message) {
    for (const s of SECTIONS) if (s !== "queue") $(`section-${s}`).hidden = true;
    for (const li of document.querySelectorAll("#sections .admin-only")) li.hidden = true;
    $("workspace").hidden = true;
    $("sections").hidden = true;
    $("sign-out").hidden = true;
    $("live").hidden = true;
    $("signin").hidden = false;
    $("signin-error").textContent = message;
    $("token").value = "";
    $("token").focus();
  }

  async signIn(token) {
    if (!token) return;
    const api = new Api(token);
    let list;
    try {
      list = await api.alerts();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        this.showSignIn("That token was not accepted. Check it and try again.");
      } else {
        this.showSignIn(err instanceof ApiError ? err.text : `Could not reach the server: ${err.message}`);
      }
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    this.api = api;
    $("signin").hidden = true;
    $("workspace").hidden = false;
    $("sections").hidden = false;
    $("sign-out").hidden = false;
    $("live").hidden = false;
    // Administration pages for admins: GET /v1/users answers only them.
    const isAdmin = await api.get("/v1/users?limit=1").then(() => true, () => false);
    if (api !== this.api) return;
    for (const li of document.querySelectorAll("#sections .admin-only")) li.hidden = !isAdmin;
    document.body.dataset.role = isAdmin ? "admin" : "staff";
    // Other staff get the care-team page for broadcasts when the API lists
    // their teams (whether they may send one is the API's answer: leads).
    if (!isAdmin && await api.get("/v1/care-teams").then(() => true, () => false) && api === this.api) {
      $("nav-teams").parentElement.hidden = false;
    }
    // One detail pane per page (it binds the forms); a new sign-in gives it
    // the new token.
    this.detail ??= new Detail(() => this.api, {
      onActed: () => this.refresh(),
      onClose: (id) => {
        this.render();
        $("queue").querySelector(`[data-alert-id="${CSS.escape(id || "")}"] button`)?.focus();
      },
    });
    this.show(list);
    this.live = new Live(api, {
      onChange: (id) => this.refresh(id),
      onMode: (mode) => this.showMode(mode),
      onThread: (type, data) => {
        this.detail?.thread.onEvent(type, data);
        this.messages.onEvent(type, data, this.section === "messages");
      },
    });
    this.live.start();
    this.showSection("queue");
  }

  signOut(message) {
    // Also end the job dashboard's session, if one was opened (best effort).
    if (this.api && document.body.dataset.role === "admin") this.api.endSession().catch(() => {});
    delete document.body.dataset.role;
    this.live?.stop();
    this.detail?.close();
    this.messages.reset();
    this.api = null;
    this.live = null;
    this.items = [];
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

  // refresh refetches the queue (one request at a time) and, when the open
  // alert changed, its detail. It rejects when the server cannot be reached.
  refresh(changedID) {
    if (!this.api) return Promise.resolve();
    if (!this.inflight) {
      const api = this.api;
      this.inflight = api.alerts()
        .then((list) => {
          if (api !== this.api) return;
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
        .finally(() => { this.inflight = null; });
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
    this.render();
    if (this.detail?.changedIn(this.items)) this.detail.refresh();
  }

  render() {
    renderCounts($("counts"), this.counts || counts({ items: this.items }));
    renderQueue($("queue"), this.items, { selected: this.detail?.id, onOpen: (id) => this.open(id) });
    $("queue").dataset.refreshes = String(this.refreshes); // lets tests know a refresh happened
    $("queue-empty").hidden = this.items.length > 0;
  }

  open(id) {
    this.detail.open(id).then(() => this.render());
  }
}

new Console().boot();
