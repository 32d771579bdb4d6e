// The end-to-end encryption part of a thread view (docs/e2ee.md): whether
// the thread is encrypted, every device's fingerprint for people to
// compare, and encrypted messages shown opened and verified, or refused
// with the reason. Staff direct threads and team channels are turned
// encrypted as soon as every participant has a device key.

import { ApiError } from "./api.js";
import { KeysChanged, ThreadCrypto, turnOn } from "./secure.js";
import { el, roleLabel } from "./thread.js";

export class SecurePanel {
  // getDevice(): a promise of this browser's Device, or null; getApi(): the
  // signed-in Api.
  constructor(getDevice, getApi) {
    this.getDevice = getDevice;
    this.getApi = getApi;
    this.crypto = null;
    this.roles = new Map();
    this.root = el("div", null, "e2ee");
    this.root.hidden = true;
    this.state = el("p", "", "e2ee-state");
    const fps = el("details", null, "fingerprints");
    fps.append(el("summary", "Device fingerprints"), el("p", "Compare each with its owner (read aloud, or side by side) " +
      "to be sure that no one else holds a key to this conversation."));
    this.fps = el("ul", null, "plain fingerprint-list");
    fps.append(this.fps);
    this.root.append(this.state, fps);
  }

  clear() {
    this.crypto = null;
    this.roles = new Map();
    this.root.hidden = true;
    this.state.textContent = "";
    this.fps.replaceChildren();
  }

  // setup prepares the panel for thread (current() says whether the view
  // still shows it). It returns a problem to show, or "".
  async setup(thread, current) {
    const api = this.getApi();
    const device = await Promise.resolve(this.getDevice()).catch(() => null);
    if (!current()) return "";
    if (!thread.encrypted && device && (thread.kind === "direct" || thread.kind === "team")) {
      const on = await turnOn(api, thread.id).catch((err) => err.message);
      if (on === true) thread.encrypted = true;
      else {
        this.state.textContent = `Not end-to-end encrypted yet: ${on}.`;
        this.root.hidden = false;
      }
    }
    if (!thread.encrypted || !current()) return "";
    this.root.hidden = false;
    if (!device) {
      this.state.textContent = "End-to-end encrypted. This browser has no encryption keys, so it can neither read nor write here.";
      return "";
    }
    this.crypto = new ThreadCrypto(api, device, thread.id);
    this.state.textContent = "End-to-end encrypted: only the participants' devices and the organisation's record key can read these messages.";
    try {
      const t = await api.get(`/v1/threads/${encodeURIComponent(thread.id)}`);
      this.roles = new Map((t.participants || []).map((x) => [x.user_id, x.role]));
      await this.crypto.keys(this.whoOf);
    } catch (err) {
      return `Encryption keys unavailable: ${err instanceof ApiError ? err.text : err.message}`;
    }
    return current() ? this.showFingerprints() : "";
  }

  // whoOf names a device of the thread for people.
  whoOf = (d) => {
    if (d.id === this.crypto?.device.id) return "This browser";
    const who = d.user_id === this.crypto?.device.user_id ? "Your other device" : `${roleLabel(this.roles.get(d.user_id))}'s device`;
    return d.label ? `${who} “${d.label}”` : who;
  };

  // showFingerprints lists every device of the thread with the fingerprint
  // computed here, marking those whose keys changed; it returns the warning
  // about them, or "".
  showFingerprints() {
    const c = this.crypto;
    this.fps.replaceChildren(...c.devices.map((d) => {
      const li = el("li", `${d.who}: `);
      li.dataset.deviceId = d.id;
      li.append(el("code", d.fingerprint, "fingerprint"));
      if (d.changed) {
        li.dataset.changed = "true";
        li.append(" ", el("strong", "changed since first seen", "error"));
      }
      return li;
    }));
    return c.changed.length ? new KeysChanged(c.changed).message : "";
  }

  // send encrypts and uploads files (File objects), then seals and posts
  // text with them.
  async send(text, urgent, files = []) {
    if (!this.crypto) throw new Error("this browser has no encryption keys, so it cannot write to this encrypted conversation");
    try {
      const refs = await this.crypto.upload(await Promise.all(files.map(async (f) => ({ name: f.name, type: f.type,
        bytes: new Uint8Array(await f.arrayBuffer()) }))));
      return await this.crypto.send(text, urgent, this.whoOf, refs);
    } finally {
      this.showFingerprints();
    }
  }

  // files lists an opened message's attachments, each decrypted here when
  // asked for and saved under its sealed name.
  files(m, r, onError) {
    const ul = el("ul", null, "plain attachments");
    for (const ref of r.attachments || []) {
      const link = el("a", `Attachment: ${ref.name} (${ref.type}, ${ref.size} bytes, end-to-end encrypted)`);
      link.href = "#";
      link.dataset.attachmentId = ref.id;
      link.addEventListener("click", async (ev) => {
        ev.preventDefault();
        try {
          const f = await this.crypto.file(m, ref);
          const url = URL.createObjectURL(new Blob([f.bytes], { type: f.type }));
          const save = document.createElement("a");
          save.href = url;
          save.download = f.name;
          document.body.append(save);
          save.click();
          save.remove();
          setTimeout(() => URL.revokeObjectURL(url), 10000);
          link.dataset.decrypted = "true";
        } catch (err) {
          link.dataset.decrypted = "refused";
          onError(`Attachment refused: ${err instanceof ApiError ? err.text : err.message}`);
        }
      });
      const li = el("li");
      li.append(link);
      ul.append(li);
    }
    return ul;
  }

  // reveal opens the encrypted messages not opened yet, then calls done.
  reveal(messages, done) {
    const c = this.crypto;
    if (c && messages.some((m) => m.kind === "encrypted" && !c.opened.has(m.id))) {
      c.reveal(messages).then(() => { if (c === this.crypto) done(); });
    }
  }

  // body shows an encrypted message: its text once opened and verified
  // here, or why it was refused, never the one for the other.
  body(m, head) {
    head.append(" ", el("span", "Encrypted", "badge e2ee-badge"));
    const li = head.parentElement;
    const r = this.crypto?.opened.get(m.id);
    if (!this.crypto) {
      li.dataset.e2ee = "unreadable";
      return el("p", "Encrypted message: this browser has no keys to read it.", "msg-kind");
    }
    if (!r) {
      li.dataset.e2ee = "pending";
      return el("p", "Decrypting…", "msg-kind");
    }
    li.dataset.e2ee = r.error ? "refused" : "opened";
    if (r.error) return el("p", r.error, "error");
    const out = document.createDocumentFragment();
    out.append(el("p", r.text, "msg-body"));
    if (r.attachments?.length) out.append(this.files(m, r, (text) => { this.state.textContent = text; }));
    return out;
  }
}
