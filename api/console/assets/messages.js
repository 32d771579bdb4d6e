// The Messages section: every thread the signed-in user takes part in
// (GET /v1/threads, most recently active first, with unread counts), and the
// one chosen, in a thread view. Threads without messages are left out
// unless asked for.

import { ApiError } from "./api.js";
import { dateTime } from "./format.js";
import { kindLabel, ThreadView } from "./thread.js";

const $ = (id) => document.getElementById(id);

function el(tag, text, attrs = {}) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = text;
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "dataset") Object.assign(e.dataset, v);
    else e[k] = v;
  }
  return e;
}

export class Messages {
  // getApi(): the signed-in Api; getDevice(): a promise of this browser's
  // encryption keys (keys.js), or null.
  constructor(getApi, getDevice) {
    this.getApi = getApi;
    this.view = new ThreadView($("messages-thread"), "msg", getApi, getDevice);
    this.names = new Map(); // patient id → display name (read through the API, audited)
    this.threads = [];
    this.inflight = null;
    $("threads-all").addEventListener("change", () => this.render());
  }

  get api() {
    return this.getApi();
  }

  reset() {
    this.view.clear();
    $("messages-thread").hidden = true;
    this.threads = [];
    this.names.clear();
    $("threads-table").tBodies[0].replaceChildren();
    delete $("threads-table").dataset.loaded;
  }

  // title names a thread for the list and the view.
  async title(t) {
    if (t.patient_id && !this.names.has(t.patient_id)) {
      try {
        this.names.set(t.patient_id, (await this.api.patient(t.patient_id)).display_name);
      } catch {
        this.names.set(t.patient_id, "");
      }
    }
    const who = t.patient_id ? this.names.get(t.patient_id) : "";
    return who ? `${kindLabel(t.kind)}: ${who}` : kindLabel(t.kind);
  }

  // load lists the threads (one request at a time).
  load() {
    if (this.inflight) return this.inflight;
    if (!$("threads-table").dataset.loaded) $("messages-loading").hidden = false;
    this.inflight = (async () => {
      try {
        const page = await this.api.get("/v1/threads?limit=100");
        this.threads = page.items || [];
        this.titles = await Promise.all(this.threads.map((t) => this.title(t)));
        this.render();
        $("messages-error").textContent = "";
      } catch (err) {
        $("messages-error").textContent = err instanceof ApiError ? err.text : `Could not reach the server: ${err.message}`;
      } finally {
        $("messages-loading").hidden = true;
      }
    })().finally(() => { this.inflight = null; });
    return this.inflight;
  }

  render() {
    const all = $("threads-all").checked;
    const titles = this.titles || [];
    const shown = this.threads.map((t, i) => [t, titles[i]]).filter(([t]) => all || t.last_message_at || this.view.thread?.id === t.id);
    const body = $("threads-table").tBodies[0];
    body.replaceChildren(...shown.map(([t, title]) => {
      const tr = el("tr", null, { dataset: { threadId: t.id, unread: String(t.unread_count) } });
      const open = el("button", "Open", { type: "button" });
      open.setAttribute("aria-label", `Open ${title}`);
      open.addEventListener("click", () => this.open(t, title));
      const actions = el("td");
      actions.append(open);
      const unread = el("td", t.unread_count ? `${t.unread_count} unread` : "none");
      if (t.unread_count) unread.className = "unread";
      tr.append(el("th", title, { scope: "row" }), unread,
        el("td", t.last_message_at ? dateTime(t.last_message_at) : "No messages yet"), actions);
      if (this.view.thread?.id === t.id) tr.setAttribute("aria-current", "true");
      return tr;
    }));
    $("threads-empty").hidden = shown.length > 0;
    $("threads-empty").textContent = all ? "No conversations yet." : "No conversations with messages yet.";
    $("threads-table").dataset.loaded = "true";
  }

  async open(t, title) {
    $("messages-thread").hidden = false;
    await this.view.show(t, title);
    this.view.heading.focus();
    this.load(); // its unread count is now 0
  }

  // onEvent: a thread changed; the open view follows it, the list's counts
  // are refetched.
  onEvent(type, data, sectionShown) {
    this.view.onEvent(type, data);
    if (sectionShown && ["message.created", "message.read", "resync"].includes(type)) this.load();
  }
}
