// A thread view: a patient's conversation with the care team, read and
// answered from the console. It shows the messages oldest first (sender
// role, time, urgent mark, symptom reports as structured content,
// attachments as links with their type and size), marks them read while they
// are on screen, follows the live stream's message.created and typing
// events (or polls while the stream is unavailable), and has a composer
// whose Enter sends. Message text is only ever inserted as text. In an end-to-end
// encrypted thread (docs/e2ee.md) it opens envelopes on this device, seals
// what it sends, and lists every device's fingerprint; staff direct threads
// and team channels are turned encrypted as soon as every participant has a
// device key.

import { ApiError } from "./api.js";
import { dateTime } from "./format.js";
import { SecurePanel } from "./securepanel.js";

const ROLE_NAMES = { patient: "Patient", clinician: "Clinician", lead: "Lead", scheduler: "Scheduler", admin: "Admin",
  device: "Device", system: "Tend" };
const KIND_NAMES = { patient: "Patient and care team", staff_patient: "Care team about a patient", team: "Team channel",
  direct: "Direct" };
const TYPE_NAMES = {
  "image/jpeg": "JPEG image", "image/png": "PNG image", "image/heic": "HEIC image", "application/pdf": "PDF document",
  "audio/mp4": "M4A audio", "audio/ogg": "Opus audio", "audio/mpeg": "MP3 audio", "video/mp4": "MP4 video",
  "video/webm": "WebM video",
};
const SYMPTOM_NAMES = {
  chest_pain: "Chest pain", shortness_of_breath: "Shortness of breath", dizziness: "Dizziness", fainting: "Fainting",
  swelling: "Swelling", palpitations: "Palpitations", headache: "Headache", confusion: "Confusion", nausea: "Nausea",
  fatigue: "Fatigue", fever: "Fever", cough: "Cough", bleeding: "Bleeding", vision_change: "Vision change",
  weakness_one_side: "Weakness on one side", other: "Other",
};
export const TYPING_SEND_MS = 3000; // at most one typing signal per thread this often
const TYPING_SHOW_MS = 4000; // how long "typing…" stays after the last signal

// roleLabel names a sender's role.
export function roleLabel(role) {
  return ROLE_NAMES[role] || (role ? role[0].toUpperCase() + role.slice(1) : "Unknown sender");
}

// kindLabel names a thread's kind.
export function kindLabel(kind) {
  return KIND_NAMES[kind] || kind;
}

// sizeLabel writes a byte count for people: "820 bytes", "1.5 KB", "2.3 MB".
export function sizeLabel(n) {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

// attachmentLabel names an attachment by its type, length (a clip's) and
// size.
export function attachmentLabel(a) {
  const secs = a.duration_ms == null ? "" : `${(a.duration_ms / 1000).toFixed(1)} s, `;
  return `${TYPE_NAMES[a.content_type] || a.content_type}, ${secs}${sizeLabel(a.size)}`;
}

// presenceLine describes a thread's participants' presence: the patient's
// state (with when they were last seen) and the staff online. Pure.
export function presenceLine(participants) {
  const parts = [];
  for (const p of participants) {
    if (p.role !== "patient" || !p.presence) continue;
    const seen = p.presence.state === "offline" && p.presence.last_seen
      ? `, last seen ${new Date(p.presence.last_seen).toLocaleString()}` : "";
    parts.push(`Patient: ${p.presence.state}${seen}`);
  }
  const staff = participants.filter((p) => p.role !== "patient" && p.presence?.state === "online").length;
  parts.push(`Staff online: ${staff}`);
  return parts.join(" · ");
}

// playerKind is the media element that plays an attachment inline
// ("audio" or "video"), or "" for a file that is downloaded.
export function playerKind(a) {
  const kind = String(a.content_type || "").split("/")[0];
  return kind === "audio" || kind === "video" ? kind : "";
}

// symptomLines describes a symptom report's symptoms, one line each.
export function symptomLines(report) {
  return (report?.symptoms || []).map((s) => {
    const name = SYMPTOM_NAMES[s.code] || String(s.code || "symptom").replaceAll("_", " ");
    const what = s.text ? `${name} (${s.text})` : name;
    return `${what}: severity ${s.severity} of 10`;
  });
}

// merge adds newly fetched messages to the ones shown: one per id, in
// sequence order. Pure.
export function merge(shown, fresh) {
  const byID = new Map(shown.map((m) => [m.id, m]));
  for (const m of fresh) byID.set(m.id, m);
  return [...byID.values()].sort((a, b) => a.seq - b.seq);
}

// Throttle lets an action through at most once per interval.
export class Throttle {
  constructor(ms, now = () => Date.now()) {
    this.ms = ms;
    this.now = now;
    this.last = -Infinity;
  }

  ready() {
    const t = this.now();
    if (t - this.last < this.ms) return false;
    this.last = t;
    return true;
  }
}

export function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}

function errText(err) {
  if (err instanceof ApiError) return err.text;
  return err instanceof TypeError ? `Could not reach the server: ${err.message}` : err.message;
}

// findPatientThread finds the patient's own thread with the given care team
// among the caller's threads about that patient (?patient_id: a page or two).
export async function findPatientThread(api, patientID, teamID) {
  let cursor = "";
  for (let i = 0; i < 50; i++) {
    const q = new URLSearchParams({ limit: "500", patient_id: patientID });
    if (cursor) q.set("cursor", cursor);
    const page = await api.get(`/v1/threads?${q}`);
    const t = (page.items || []).find((x) => x.kind === "patient" && x.patient_id === patientID &&
      (!teamID || !x.care_team_id || x.care_team_id === teamID));
    if (t) return t;
    cursor = page.next_cursor;
    if (!cursor) return null;
  }
  return null;
}

export class ThreadView {
  // root: an empty element the view builds itself in; prefix: unique id
  // prefix for its controls; getApi(): the signed-in Api; getDevice(): a
  // promise of this browser's Device (keys.js), or null.
  constructor(root, prefix, getApi, getDevice = () => null) {
    this.root = root;
    this.prefix = prefix;
    this.getApi = getApi;
    this.getDevice = getDevice;
    this.thread = null;
    this.messages = [];
    this.after = "";
    this.seq = 0;
    this.readUpTo = 0;
    this.loading = null;
    this.typingThrottle = new Throttle(TYPING_SEND_MS);
    this.typingTimer = null;
    this.build();
  }

  get api() {
    return this.getApi();
  }

  build() {
    const p = this.prefix;
    this.root.classList.add("thread");
    this.heading = el("h3", "Messages");
    this.heading.id = `${p}-heading`;
    this.heading.tabIndex = -1;
    this.root.setAttribute("aria-labelledby", this.heading.id);
    this.error = el("p", "", "error");
    this.error.setAttribute("role", "alert");
    this.empty = el("p", "No messages yet.", "empty");
    this.empty.hidden = true;
    this.older = el("button", "Show older messages");
    this.older.type = "button";
    this.older.hidden = true;
    this.older.addEventListener("click", () => this.loadOlder());
    this.list = el("ol", null, "messages");
    this.list.id = `${p}-messages`;
    this.list.setAttribute("aria-label", "Messages, oldest first");
    this.list.tabIndex = 0;
    this.presence = el("p", "", "presence");
    this.presence.id = `${p}-presence`;
    this.typing = el("p", "", "typing");
    this.typing.id = `${p}-typing`;
    this.typing.setAttribute("aria-live", "polite");

    this.form = el("form", null, "composer");
    this.form.id = `${p}-composer`;
    this.form.setAttribute("aria-label", "Reply");
    const label = el("label", "Reply to the thread (Enter sends, Shift+Enter starts a new line)");
    label.htmlFor = `${p}-body`;
    this.input = el("textarea");
    this.input.id = `${p}-body`;
    this.input.rows = 2;
    this.input.maxLength = 4000;
    this.input.required = true;
    const urgentLabel = el("label", null, "check");
    this.urgent = el("input");
    this.urgent.type = "checkbox";
    this.urgent.id = `${p}-urgent`;
    urgentLabel.htmlFor = this.urgent.id;
    urgentLabel.append(this.urgent, " Urgent (goes through the patient's quiet hours)");
    this.send = el("button", "Send");
    this.send.type = "submit";
    this.result = el("p", "", "result");
    this.result.setAttribute("role", "status");
    // Files go with messages of end-to-end encrypted threads only,
    // encrypted in this browser before upload.
    this.fileLabel = el("label", "Attach files (encrypted in this browser before they are sent) ", "check");
    this.files = el("input");
    this.files.type = "file";
    this.files.multiple = true;
    this.files.id = `${p}-files`;
    this.fileLabel.htmlFor = this.files.id;
    this.fileLabel.append(this.files);
    this.fileLabel.hidden = true;
    this.form.append(label, this.input, urgentLabel, this.fileLabel, this.send);
    this.secure = new SecurePanel(() => this.getDevice(), () => this.api);
    this.root.append(this.heading, this.presence, this.secure.root, this.error, this.empty, this.older, this.list, this.typing, this.form, this.result);

    this.form.addEventListener("submit", (ev) => { ev.preventDefault(); this.post(); });
    this.input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        this.post();
      }
    });
    this.input.addEventListener("input", () => this.signalTyping());
  }

  // clear forgets the thread shown.
  clear() {
    this.thread = null;
    this.messages = [];
    this.after = "";
    this.before = "";
    this.older.hidden = true;
    this.seq++;
    this.readUpTo = 0;
    this.list.replaceChildren();
    this.error.textContent = "";
    this.result.textContent = "";
    this.typing.textContent = "";
    this.presence.textContent = "";
    this.secure.clear();
    this.fileLabel.hidden = true;
    this.files.value = "";
    this.empty.hidden = true;
    delete this.root.dataset.encrypted;
    delete this.root.dataset.threadId;
    delete this.root.dataset.loaded;
  }

  // show opens a thread: its newest page of messages, marked read.
  async show(thread, title) {
    this.clear();
    this.thread = thread;
    this.heading.textContent = title || "Messages";
    this.root.dataset.threadId = thread.id;
    const seq = this.seq;
    this.showPresence(thread.id, seq);
    try {
      const page = await this.api.get(`/v1/threads/${encodeURIComponent(thread.id)}/messages?limit=100`);
      if (seq !== this.seq) return;
      this.messages = merge([], page.items || []);
      this.after = page.after_cursor || "";
      this.before = page.before_cursor || "";
      this.older.hidden = !this.before;
      const why = await this.secure.setup(thread, () => seq === this.seq);
      if (seq !== this.seq) return;
      if (why) this.error.textContent = why;
      if (thread.encrypted) this.root.dataset.encrypted = "true";
      this.fileLabel.hidden = !thread.encrypted;
      this.render();
      this.root.dataset.loaded = "true";
      this.markRead();
    } catch (err) {
      if (seq === this.seq) {
        this.error.textContent = `Messages unavailable: ${errText(err)}`;
        this.root.dataset.loaded = "error";
      }
    }
  }

  // showPresence shows who of the thread is reachable now: the patient's
  // state and how many staff are online (GET /v1/threads/{id}).
  async showPresence(id, seq) {
    try {
      const t = await this.api.get(`/v1/threads/${encodeURIComponent(id)}`);
      if (seq !== this.seq) return;
      this.presence.textContent = presenceLine(t.participants || []);
    } catch {
      // Presence is a courtesy: the thread works without it.
    }
  }

  // loadOlder prepends the page of messages before the oldest shown.
  async loadOlder() {
    if (!this.thread || !this.before) return;
    const seq = this.seq;
    try {
      const q = new URLSearchParams({ limit: "100", before: this.before });
      const page = await this.api.get(`/v1/threads/${encodeURIComponent(this.thread.id)}/messages?${q}`);
      if (seq !== this.seq) return;
      this.messages = merge(this.messages, page.items || []);
      this.before = page.before_cursor || "";
      this.older.hidden = !this.before;
      const fromEnd = this.list.scrollHeight - this.list.scrollTop;
      this.render();
      this.list.scrollTop = this.list.scrollHeight - fromEnd; // keep the messages in view where they were
      if (this.older.hidden) this.list.focus();
    } catch (err) {
      if (seq === this.seq) this.error.textContent = `Messages unavailable: ${errText(err)}`;
    }
  }

  // showError shows why there is no thread to show.
  showError(text) {
    this.clear();
    this.error.textContent = text;
    this.root.dataset.loaded = "error";
  }

  // fetchNew appends what arrived since the last fetch (a message.created
  // event, or a poll); one fetch at a time, another queued behind it.
  fetchNew() {
    if (!this.thread) return Promise.resolve();
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    const seq = this.seq;
    const id = this.thread.id;
    this.loading = (async () => {
      do {
        this.again = false;
        const q = new URLSearchParams({ limit: "100" });
        if (this.after) q.set("after", this.after);
        const page = await this.api.get(`/v1/threads/${encodeURIComponent(id)}/messages?${q}`);
        if (seq !== this.seq) return;
        const fresh = page.items || [];
        if (page.after_cursor) this.after = page.after_cursor;
        if (fresh.length) {
          this.messages = merge(this.messages, fresh);
          this.render();
          this.markRead();
        }
      } while (this.again && seq === this.seq);
    })().catch((err) => {
      if (seq === this.seq) this.error.textContent = `Messages unavailable: ${errText(err)}`;
    }).finally(() => { this.loading = null; });
    return this.loading;
  }

  // onEvent handles a stream event about any thread.
  onEvent(type, data) {
    if (type === "resync") { // the stream (re)opened or lost events: fetch what may be missing
      this.fetchNew();
      return;
    }
    if (!this.thread || data?.thread_id !== this.thread.id) return;
    if (type === "message.created") {
      this.fetchNew();
    } else if (type === "typing") {
      const who = this.messages.find((m) => m.sender_id === data.user_id);
      this.typing.textContent = `${who ? roleLabel(who.sender_role) : "Someone"} is typing…`;
      clearTimeout(this.typingTimer);
      this.typingTimer = setTimeout(() => { this.typing.textContent = ""; }, TYPING_SHOW_MS);
    }
  }

  visible() {
    return !!this.thread && this.root.offsetParent !== null && document.visibilityState === "visible";
  }

  // markRead moves the read mark to the last message shown, while the view
  // is on screen.
  async markRead() {
    const last = this.messages[this.messages.length - 1];
    if (!last || last.seq <= this.readUpTo || !this.visible()) return;
    this.readUpTo = last.seq;
    try {
      await this.api.post(`/v1/threads/${encodeURIComponent(this.thread.id)}/read`, { up_to: last.id });
      this.root.dataset.readUpTo = String(last.seq);
    } catch {
      this.readUpTo = 0; // try again with the next message
    }
  }

  signalTyping() {
    if (!this.thread || !this.input.value || !this.typingThrottle.ready()) return;
    this.api.post(`/v1/threads/${encodeURIComponent(this.thread.id)}/typing`, {}).catch(() => {});
  }

  async post() {
    const files = this.thread?.encrypted ? [...this.files.files] : [];
    const body = this.input.value.trim() || (files.length ? (files.length > 1 ? "Files attached" : "File attached") : "");
    if (!this.thread || !body || this.send.disabled) return;
    const id = this.thread.id;
    this.send.disabled = true;
    this.result.textContent = "";
    this.error.textContent = "";
    const msg = { body, client_id: crypto.randomUUID(), files };
    if (this.urgent.checked) msg.urgent = true;
    try {
      const m = await this.postOne(id, msg);
      if (this.thread?.id !== id) return;
      this.input.value = "";
      this.files.value = "";
      this.urgent.checked = false;
      this.result.textContent = "Sent.";
      this.messages = merge(this.messages, [m]);
      this.render();
      this.readUpTo = Math.max(this.readUpTo, m.seq); // posting marks one's own message read
    } catch (err) {
      if (this.thread?.id === id) this.error.textContent = errText(err);
    } finally {
      this.send.disabled = false;
      this.input.focus();
    }
  }

  // postOne posts a message: sealed in an encrypted thread, else plain.
  async postOne(id, msg) {
    if (!this.thread.encrypted) {
      const { files: _, ...plain } = msg;
      return this.api.post(`/v1/threads/${encodeURIComponent(id)}/messages`, plain);
    }
    return this.secure.send(msg.body, !!msg.urgent, msg.files);
  }

  render() {
    const atEnd = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
    this.list.replaceChildren(...this.messages.map((m) => this.renderMessage(m)));
    this.empty.hidden = this.messages.length > 0;
    if (atEnd) this.list.scrollTop = this.list.scrollHeight;
    this.secure.reveal(this.messages, () => this.render());
  }

  renderMessage(m) {
    const li = el("li", null, `msg msg-${m.sender_role === "patient" ? "patient" : "staff"}`);
    li.dataset.messageId = m.id;
    li.dataset.seq = String(m.seq);
    li.dataset.kind = m.kind;
    if (m.urgent) li.dataset.urgent = "true";
    const head = el("p", null, "msg-head");
    head.append(el("span", roleLabel(m.sender_role), "msg-role"), " · ");
    const time = el("time", dateTime(m.created_at));
    time.dateTime = m.created_at;
    head.append(time);
    if (m.urgent) head.append(" ", el("span", "URGENT", "badge urgency-critical"));
    li.append(head);
    if (m.kind === "symptom_report") {
      li.append(el("p", "Symptom report", "msg-kind"));
      const ul = el("ul", null, "plain symptoms");
      ul.append(...symptomLines(m.symptom_report).map((s) => el("li", s)));
      li.append(ul);
      if (m.body) li.append(el("p", `Note: ${m.body}`, "msg-body"));
    } else if (m.kind === "encrypted") {
      li.append(this.secure.body(m, head));
    } else if (m.body) {
      li.append(el("p", m.body, "msg-body"));
    }
    if (m.error) li.append(el("p", m.error, "error"));
    if (m.attachments?.length && m.kind !== "encrypted") { // an encrypted message lists its own, once opened
      const ul = el("ul", null, "plain attachments");
      for (const a of m.attachments) {
        if (playerKind(a)) {
          ul.append(this.player(a));
          continue;
        }
        const link = el("a", `Attachment: ${attachmentLabel(a)}`);
        link.href = `/v1/attachments/${encodeURIComponent(a.id)}`;
        link.dataset.attachmentId = a.id;
        link.addEventListener("click", (ev) => { ev.preventDefault(); this.download(a, link); });
        const item = el("li");
        item.append(link);
        ul.append(item);
      }
      li.append(ul);
    }
    return li;
  }

  // player plays an audio or video attachment inline. A media element
  // cannot send the token, so the file is fetched with it (the server
  // checks its SHA-256) and played from memory, where seeking needs no
  // further request.
  player(a) {
    const item = el("li", null, "attachment-media");
    const label = el("span", `Attachment: ${attachmentLabel(a)}`);
    const media = document.createElement(playerKind(a));
    media.controls = true;
    media.preload = "metadata";
    media.dataset.attachmentId = a.id;
    media.setAttribute("aria-label", label.textContent);
    item.append(label, media);
    this.api.fetch(`/v1/attachments/${encodeURIComponent(a.id)}`, {
      headers: { Authorization: `Bearer ${this.api.token}` }, cache: "no-store", credentials: "omit" })
      .then(async (res) => {
        if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => ({})));
        const url = URL.createObjectURL(await res.blob());
        media.src = url;
        media.dataset.loaded = "true";
      })
      .catch((err) => { this.error.textContent = `Attachment unavailable: ${errText(err)}`; });
    return item;
  }

  // download fetches an attachment with the token (a plain link cannot send
  // it) and saves it.
  async download(a, link) {
    try {
      const res = await this.api.fetch(`/v1/attachments/${encodeURIComponent(a.id)}`, {
        headers: { Authorization: `Bearer ${this.api.token}` }, cache: "no-store", credentials: "omit" });
      if (!res.ok) {
        let problem = {};
        try { problem = await res.json(); } catch { problem = {}; }
        throw new ApiError(res.status, problem);
      }
      const url = URL.createObjectURL(await res.blob());
      const save = document.createElement("a");
      save.href = url;
      save.download = (res.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/)?.[1] || a.id;
      document.body.append(save);
      save.click();
      save.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      link.dataset.downloaded = "true";
    } catch (err) {
      this.error.textContent = `Attachment unavailable: ${errText(err)}`;
    }
  }
}
