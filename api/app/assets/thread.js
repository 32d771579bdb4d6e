// Messages with the care team: the patient's thread, oldest first, with
// receipts on the patient's own messages (sent, delivered, read), urgent
// messages from the team marked, symptom reports as lists, photos and
// documents (from the camera or files: JPEG, PNG, HEIC, PDF), and
// "typing…" both ways. Shown means read: the view marks what it shows read.
// Once the phone and every member of the care team have encryption keys,
// the thread is end-to-end encrypted (docs/e2ee.md): messages are sealed
// here and opened here, and each device's fingerprint is listed.

import { merge, Throttle, TYPING_SEND_MS, sizeLabel } from "../../console/assets/thread.js";
import { ThreadCrypto, turnOn } from "../../console/assets/secure.js";
import { h, heading, errorText, when } from "./dom.js";
import { symptomLabel } from "./units.js";

const TYPES = { "image/jpeg": "JPEG photo", "image/png": "PNG picture", "image/heic": "HEIC photo", "application/pdf": "PDF document" };
const TYPING_SHOW_MS = 4000;

// fileType is the content type the API accepts for a chosen file, or "".
// Phones often leave a HEIC photo's type empty: its name says it.
export function fileType(name, type) {
  if (TYPES[type]) return type;
  const ext = String(name).toLowerCase().split(".").pop();
  return { jpg: "image/jpeg", jpeg: "image/jpeg", png: "image/png", heic: "image/heic", heif: "image/heic", pdf: "application/pdf" }[ext] || "";
}

// receiptText is the best state any other participant reached.
export function receiptText(receipts) {
  const s = new Set((receipts || []).map((r) => r.status));
  if (s.has("read")) return "Read";
  if (s.has("delivered")) return "Delivered";
  return "Sent";
}

export async function render(ctx, main) {
  const threads = ((await ctx.api.get("/v1/threads?limit=100")).items || []).filter((t) => t.kind === "patient");
  main.append(heading("Messages with your care team"));
  if (threads.length === 0) {
    main.append(h("p", { text: "You have no care team conversation yet." }));
    return null;
  }
  const view = new Thread(ctx, main, threads);
  await view.load();
  return () => view.stop();
}

class Thread {
  constructor(ctx, main, threads) {
    this.ctx = ctx;
    this.thread = threads[0];
    this.messages = [];
    this.files = [];
    this.urls = [];
    this.opened = new Map(); // attachment id → its shown photo or link, kept across redraws
    this.throttle = new Throttle(TYPING_SEND_MS);
    this.build(main, threads);
    this.on = (ev) => { if (!ev.detail.thread_id || ev.detail.thread_id === this.thread.id) this.load(); };
    this.onTyping = (ev) => { if (ev.detail.thread_id === this.thread.id) this.showTyping(); };
    this.onPresence = (ev) => { if (typeof ev.detail.care_team_available === "boolean") this.showAvailable(ev.detail.care_team_available); };
    ctx.stream.addEventListener("presence", this.onPresence);
    for (const t of ["message.created", "message.read", "poll"]) ctx.stream.addEventListener(t, this.on);
    ctx.stream.addEventListener("typing", this.onTyping);
  }

  stop() {
    for (const t of ["message.created", "message.read", "poll"]) this.ctx.stream.removeEventListener(t, this.on);
    this.ctx.stream.removeEventListener("typing", this.onTyping);
    this.ctx.stream.removeEventListener("presence", this.onPresence);
    clearTimeout(this.typingTimer);
    for (const u of this.urls) URL.revokeObjectURL(u);
  }

  build(main, threads) {
    if (threads.length > 1) {
      const pick = h("select", { id: "thread-pick", onchange: () => { this.thread = threads[pick.selectedIndex]; this.messages = []; this.crypto = null; this.prepared = ""; this.load(); } },
        ...threads.map((t, i) => h("option", { value: t.id, text: `Care team ${i + 1}` })));
      main.append(h("div", { class: "field" }, h("label", { for: "thread-pick", text: "Conversation" }), pick));
    }
    this.error = h("p", { class: "error", role: "alert" });
    this.older = h("button", { type: "button", hidden: true, onclick: () => this.loadOlder() }, "Show older messages");
    this.list = h("ol", { class: "messages", "aria-label": "Messages, oldest first" });
    this.typing = h("p", { class: "typing", "aria-live": "polite" });
    this.available = h("p", { id: "care-team-available", class: "presence", "aria-live": "polite" });
    this.notice = h("p", { id: "e2ee-notice", class: "notice", role: "status" });
    this.secure = h("p", { id: "e2ee-state", class: "presence" });
    this.fps = h("ul", { id: "e2ee-fingerprints", class: "fingerprints" });
    const fps = h("details", {}, h("summary", { text: "Device fingerprints" }),
      h("p", { text: "Your care team can compare these with what their screens show, to be sure no one else can read this conversation." }), this.fps);
    this.secureBox = h("div", { hidden: true }, this.secure, fps);
    main.append(this.available, this.notice, this.secureBox, this.error, this.older, this.list, this.typing, this.composer());
  }

  composer() {
    this.input = h("textarea", { id: "msg-body", rows: "3", maxlength: "4000", "aria-describedby": "msg-files",
      oninput: () => { this.clientID = ""; this.signalTyping(); } });
    const camera = h("input", { type: "file", accept: "image/*", capture: "environment", hidden: true, id: "msg-camera",
      onchange: (ev) => this.addFiles(ev.target) });
    const picker = h("input", { type: "file", accept: "image/jpeg,image/png,image/heic,.heic,.heif,application/pdf", multiple: true,
      hidden: true, id: "msg-file", onchange: (ev) => this.addFiles(ev.target) });
    this.chosen = h("ul", { id: "msg-files", class: "files", "aria-label": "Attached files" });
    this.result = h("p", { class: "result", role: "status" });
    const form = h("form", { class: "card composer", onsubmit: (ev) => { ev.preventDefault(); this.post(); } },
      h("label", { for: "msg-body", text: "Write to your care team" }), this.input, this.chosen,
      h("div", { class: "row" },
        h("button", { type: "button", onclick: () => camera.click() }, "Take a photo"),
        h("button", { type: "button", onclick: () => picker.click() }, "Attach a photo or file"),
        camera, picker),
      h("button", { type: "submit", class: "primary" }, "Send"), this.result);
    return form;
  }

  addFiles(input) {
    for (const f of input.files) {
      const type = fileType(f.name, f.type);
      if (!type) {
        this.result.textContent = "Only photos (JPEG, PNG or HEIC) and PDF documents can be sent.";
        continue;
      }
      this.files.push({ file: f, type });
    }
    input.value = "";
    this.showFiles();
  }

  showFiles() {
    this.chosen.replaceChildren(...this.files.map((f, i) => h("li", {},
      `${TYPES[f.type]}, ${sizeLabel(f.file.size)} `,
      h("button", { type: "button", class: "link", onclick: () => { this.files.splice(i, 1); this.showFiles(); } },
        h("span", { class: "sr-only", text: `Remove ${TYPES[f.type]} ${i + 1}: ` }), "Remove"))));
  }

  path(suffix = "") {
    return `/v1/threads/${encodeURIComponent(this.thread.id)}${suffix}`;
  }

  // load fetches the newest page and merges it in (new messages, and
  // receipts that changed), then marks the newest message read.
  // showAvailable says whether someone of the care team is online now
  // (never who).
  showAvailable(yes) {
    this.available.textContent = yes ? "Your care team is available now." :
      "Your care team is not online right now; they will answer when they are.";
  }

  // prepareCrypto turns the thread encrypted when the phone has keys and
  // every member of the care team has too (the server decides; until then
  // it stays plain), and checks an encrypted thread's keys.
  async prepareCrypto() {
    if (this.prepared === this.thread.id) return;
    this.prepared = this.thread.id;
    const { device, notice } = await this.ctx.device;
    this.notice.textContent = notice;
    // Until every member of the care team has keys the thread stays plain.
    if (!this.thread.encrypted && device) this.thread.encrypted = (await turnOn(this.ctx.api, this.thread.id)) === true;
    this.secureBox.hidden = !this.thread.encrypted;
    if (!this.thread.encrypted) return;
    if (!device) {
      this.secure.textContent = "This conversation is end-to-end encrypted, but this phone has no keys to read or write it.";
      return;
    }
    this.crypto = new ThreadCrypto(this.ctx.api, device, this.thread.id);
    const { devices, changed } = await this.crypto.keys(this.whoOf);
    this.secure.textContent = "End-to-end encrypted: only you, your care team and your care provider's record key can read these messages.";
    this.fps.replaceChildren(...devices.map((d) => h("li", { "data-device-id": d.id }, `${d.who}: `,
      h("code", { class: "fingerprint", text: d.fingerprint }), d.changed ? h("strong", { text: " changed since first seen" }) : null)));
    if (changed.length) this.error.textContent = "The keys of a device in this conversation changed. Ask your care team to compare fingerprints before you write.";
  }

  whoOf = (d) => (d.user_id === this.crypto?.device.user_id ? (d.id === this.crypto?.device.id ? "This phone" : "Your other device")
    : `Care team device${d.label ? ` “${d.label}”` : ""}`);

  async load() {
    try {
      await this.prepareCrypto();
    } catch (err) {
      this.prepared = ""; // try again with the next load
      this.error.textContent = `Encryption keys unavailable: ${errorText(err)}`;
    }
    if (!this.presenceRead) {
      this.presenceRead = true;
      this.ctx.api.get(this.path("")).then((t) => {
        if (typeof t.care_team_available === "boolean") this.showAvailable(t.care_team_available);
      }).catch(() => { this.presenceRead = false; });
    }
    try {
      const page = await this.ctx.api.get(this.path("/messages?limit=50"));
      if (this.messages.length === 0) this.before = page.before_cursor || "";
      this.older.hidden = this.messages.length === 0 ? !page.before_cursor : this.older.hidden;
      this.messages = merge(this.messages, page.items || []);
      this.error.textContent = "";
      this.draw();
      await this.markRead();
    } catch (err) {
      this.error.textContent = errorText(err);
    }
  }

  async loadOlder() {
    const page = await this.ctx.api.get(this.path(`/messages?limit=50&before=${encodeURIComponent(this.before)}`));
    this.before = page.before_cursor || "";
    this.older.hidden = !this.before;
    this.messages = merge(this.messages, page.items || []);
    this.draw();
  }

  async markRead() {
    const last = this.messages[this.messages.length - 1];
    if (!last || this.readUpTo === last.id) return;
    this.readUpTo = last.id;
    await this.ctx.api.post(this.path("/read"), { up_to: last.id }).catch(() => {});
  }

  draw() {
    this.list.replaceChildren(...this.messages.map((m) => this.item(m)));
    this.list.dataset.count = String(this.messages.length);
    const c = this.crypto;
    if (c && this.messages.some((m) => m.kind === "encrypted" && !c.opened.has(m.id))) {
      c.reveal(this.messages).then(() => { if (c === this.crypto) this.draw(); });
    }
  }

  // sealed shows an encrypted message: its text once opened and verified,
  // or why it is not shown — never a refused one as a message.
  sealed(m, li) {
    const r = this.crypto?.opened.get(m.id);
    li.dataset.e2ee = !this.crypto ? "unreadable" : !r ? "pending" : r.error ? "refused" : "opened";
    if (!this.crypto) return h("p", { class: "body", text: "Encrypted message: this phone has no keys to read it." });
    if (!r) return h("p", { class: "body", text: "Decrypting…" });
    if (r.error) return h("p", { class: "error", text: r.error });
    return h("div", {}, h("p", { class: "body", text: r.text }), ...(r.attachments || []).map((ref) => this.sealedFile(m, ref)));
  }

  // sealedFile shows an encrypted attachment of an opened message: fetched,
  // checked and decrypted on this phone when asked for, shown as a photo or
  // saved under its sealed name.
  sealedFile(m, ref) {
    if (this.opened.has(ref.id)) return this.opened.get(ref.id);
    const box = h("div", { class: "attachment", "data-attachment-id": ref.id });
    const open = async () => {
      try {
        const f = await this.crypto.file(m, ref);
        const url = URL.createObjectURL(new Blob([f.bytes], { type: f.type }));
        this.urls.push(url);
        this.opened.set(ref.id, box);
        box.dataset.decrypted = "true";
        box.replaceChildren(f.type.startsWith("image/") && f.type !== "image/heic"
          ? h("img", { src: url, alt: ref.name }) : h("a", { href: url, download: f.name }, `Save ${f.name}`));
      } catch (err) {
        box.dataset.decrypted = "refused";
        box.append(h("p", { class: "error", text: `This file was refused: ${errorText(err)}` }));
      }
    };
    box.append(h("button", { type: "button", onclick: open }, `Show ${ref.name} (${sizeLabel(ref.size)}, encrypted)`));
    return box;
  }

  item(m) {
    const mine = m.sender_role === "patient";
    const li = h("li", { class: `message ${mine ? "mine" : "theirs"}${m.urgent ? " urgent" : ""}`, "data-id": m.id },
      h("p", { class: "meta" }, h("strong", { text: mine ? "You" : "Your care team" }), ` · ${when(m.created_at)}`,
        m.urgent ? h("span", { class: "badge" }, "Urgent") : null));
    if (m.kind === "symptom_report" && m.symptom_report) {
      li.append(h("p", { text: "Symptom report" }), h("ul", { class: "symptoms" },
        ...(m.symptom_report.symptoms || []).map((s) => h("li", { text:
          `${symptomLabel(s.code)}${s.text ? ` (${s.text})` : ""}: ${s.severity} out of 10` }))));
      if (m.symptom_report.note) li.append(h("p", { class: "body", text: m.symptom_report.note }));
    } else if (m.kind === "encrypted") {
      li.append(this.sealed(m, li));
    } else {
      li.append(h("p", { class: "body", text: m.error ? "This message cannot be shown." : m.body }));
    }
    if (m.kind !== "encrypted") for (const a of m.attachments || []) li.append(this.attachment(a, mine));
    if (mine) li.append(h("p", { class: "receipt", text: receiptText(m.receipts) }));
    return li;
  }

  attachment(a, mine) {
    if (this.opened.has(a.id)) return this.opened.get(a.id);
    const label = `${TYPES[a.content_type] || "File"}, ${sizeLabel(a.size)}`;
    const box = h("div", { class: "attachment" });
    const open = async () => {
      try {
        const res = await this.ctx.api.fetch(`/v1/attachments/${encodeURIComponent(a.id)}`,
          { headers: this.ctx.api.headers({ Accept: "*/*" }), cache: "no-store", credentials: "omit" });
        if (!res.ok) throw new Error("The file could not be opened.");
        const url = URL.createObjectURL(await res.blob());
        this.urls.push(url);
        this.opened.set(a.id, box);
        if (a.content_type.startsWith("image/") && a.content_type !== "image/heic") {
          box.replaceChildren(h("img", { src: url, alt: mine ? "Photo you sent" : "Photo from your care team" }));
        } else {
          box.replaceChildren(h("a", { href: url, download: `attachment.${a.content_type.split("/")[1]}` }, `Save ${label}`));
        }
      } catch (err) {
        box.append(h("p", { class: "error", text: errorText(err) }));
      }
    };
    box.append(h("button", { type: "button", onclick: open }, `Show ${label}`));
    return box;
  }

  showTyping() {
    this.typing.textContent = "Your care team is typing…";
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => { this.typing.textContent = ""; }, TYPING_SHOW_MS);
  }

  signalTyping() {
    if (this.input.value && this.throttle.ready()) this.ctx.api.post(this.path("/typing")).catch(() => {});
  }

  // postSealed sends text and the chosen files end-to-end encrypted: each
  // file is encrypted on this phone and its ciphertext uploaded first.
  async postSealed(text) {
    if (!this.crypto) {
      this.result.textContent = "Not sent: this phone has no keys for this encrypted conversation.";
      return;
    }
    this.result.textContent = "Sending…";
    try {
      const refs = await this.crypto.upload(await Promise.all(this.files.map(async (f) => ({ name: f.file.name || "file",
        type: f.type, bytes: new Uint8Array(await f.file.arrayBuffer()) }))));
      const body = text || (refs.length > 1 ? "Files attached" : refs.length ? "File attached" : "");
      await this.crypto.send(body, false, this.whoOf, refs);
      this.input.value = "";
      this.files = [];
      this.showFiles();
      this.result.textContent = "Sent.";
      await this.load();
    } catch (err) {
      this.result.textContent = `Not sent: ${errorText(err)}`;
    }
  }

  async post() {
    const text = this.input.value.trim();
    if (!text && this.files.length === 0) {
      this.result.textContent = "Please write a message or attach a photo.";
      return;
    }
    if (this.thread.encrypted) {
      await this.postSealed(text);
      return;
    }
    this.result.textContent = "Sending…";
    try {
      const ids = [];
      for (const f of this.files) {
        const res = await this.ctx.api.fetch(this.path("/attachments"), { method: "POST", body: f.file, cache: "no-store",
          credentials: "omit", headers: this.ctx.api.headers({ "Content-Type": f.type }) });
        const body = await res.json().catch(() => ({}));
        if (!res.ok) throw new Error(body.detail || body.title || "The file could not be sent.");
        ids.push(body.id);
      }
      const body = text || (ids.length > 1 ? "Files attached" : "File attached");
      // A retry after an unknown outcome sends the same client_id: the
      // server keeps one message.
      this.clientID ||= `app:${crypto.randomUUID()}`;
      await this.ctx.api.post(this.path("/messages"), { body, attachment_ids: ids, client_id: this.clientID });
      this.clientID = "";
      this.input.value = "";
      this.files = [];
      this.showFiles();
      this.result.textContent = "Sent.";
      await this.load();
    } catch (err) {
      this.result.textContent = `Not sent: ${errorText(err)}`;
    }
  }
}
