// An end-to-end encrypted thread as one device sees it (docs/e2ee.md):
// the thread's keys checked against the fingerprints pinned at first sight,
// messages sealed to every current device and the record key (re-wrapped
// when the server answers 409 with the current list), and envelopes opened
// and verified, a bad signature, a changed key or a replay being reported as
// such, never shown as a message.

import { ApiError } from "./api.js";
import { b64, decryptFile, enc64, encryptFile, fingerprint, openContent, seal } from "./e2ee.js";
import { warmUp } from "./wrappool.js";

const path = (id, rest) => `/v1/threads/${encodeURIComponent(id)}/${rest}`;

// ENCRYPTED_TYPE is the Content-Type encrypted attachments travel with.
export const ENCRYPTED_TYPE = "application/vnd.tend.encrypted";

// raw sends or fetches bytes with the token; a non-2xx answer throws the
// server's problem.
async function raw(api, url, init = {}) {
  const res = await api.fetch(url, { cache: "no-store", credentials: "omit", ...init,
    headers: api.headers({ Accept: "*/*", ...(init.headers || {}) }) });
  if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => ({ title: res.statusText })));
  return res;
}

// KeysChanged is refusing to encrypt to devices whose keys differ from the
// ones pinned (or from the fingerprint the server states for them).
export class KeysChanged extends Error {
  constructor(changed) {
    super(`Not sent: the keys of ${changed.map((c) => c.who).join(", ")} changed since this browser first saw them. ` +
      "Compare the fingerprints below with their owners (in person or by phone) before writing here.");
    this.changed = changed;
  }
}

// recordKeyID is the record key's id: the first 16 bytes of its
// fingerprint (with no signing key), as 32 lowercase hex digits.
async function recordKeyID(publicKey) {
  return (await fingerprint(publicKey, new Uint8Array(0))).replaceAll(" ", "").slice(0, 32).toLowerCase();
}

// describe turns why an envelope did not open into words for people.
function describe(err) {
  const m = String(err?.message || err);
  if (/signature/.test(m)) return "Refused: this message's signature does not verify (it was altered or forged).";
  if (/not encrypted for this device/.test(m)) {
    return "This message was not encrypted for this browser's keys (it was sent before they were registered, or to a lost device).";
  }
  if (/another thread/.test(m)) return "Refused: this message was moved here from another conversation.";
  return `Refused: this message does not decrypt (${m}).`;
}

// turnOn makes a plain thread end-to-end encrypted when it can be: the
// server has a record key and every participant has a device with keys
// (asked first, so that the usual case costs no refused call). It returns
// true once encrypted, or the reason it stays plain.
export async function turnOn(api, threadID) {
  const [t, keys] = await Promise.all([api.get(`/v1/threads/${encodeURIComponent(threadID)}`), api.get(path(threadID, "keys"))]);
  if (t.encrypted) return true;
  if (!keys.record_key) return "the server has no record key configured";
  const with_ = new Set((keys.devices || []).map((d) => d.user_id));
  const without = (t.participants || []).filter((p) => !with_.has(p.user_id)).length;
  if (without) return `${without} participant${without === 1 ? " has" : "s have"} no device with keys yet`;
  try {
    return (await api.post(path(threadID, "encrypt"))).encrypted === true || "the server did not encrypt it";
  } catch (err) {
    return err instanceof ApiError ? err.detail || err.title : err.message;
  }
}

export class ThreadCrypto {
  // api: the signed-in Api; device: this browser's Device; threadID.
  constructor(api, device, threadID) {
    this.api = api;
    this.device = device;
    this.threadID = threadID;
    this.opened = new Map(); // message id → {text} or {error}
    this.queue = Promise.resolve();
    this.devices = [];
    this.changed = [];
    warmUp(); // the key-wrapping workers start now, not at the first send
  }

  // check verifies a thread's keys (the body of GET .../keys): each device's
  // fingerprint is computed here and compared with its pin (pinned now if
  // new) and with the one the server states. It keeps the result.
  async check(keys, whoOf = () => "") {
    const devices = [];
    const changed = [];
    for (const d of keys.devices || []) {
      const fp = await fingerprint(b64(d.hpke_public_key), b64(d.signing_public_key));
      const who = whoOf(d) || `device ${d.id}`;
      const pin = d.id === this.device.id ? { fingerprint: this.device.fingerprint } : await this.device.state(`pin|${d.id}`);
      if (!pin) {
        await this.device.setState(`pin|${d.id}`, { fingerprint: fp, signing_public_key: d.signing_public_key });
      } else if (pin.fingerprint !== fp) {
        changed.push({ who, id: d.id, was: pin.fingerprint, now: fp });
      }
      if (d.fingerprint !== fp && !changed.some((c) => c.id === d.id)) changed.push({ who, id: d.id, was: d.fingerprint, now: fp });
      devices.push({ ...d, fingerprint: fp, who, changed: changed.some((c) => c.id === d.id) });
    }
    const rk = keys.record_key;
    if (!rk) throw new Error("the server has no record key configured, so nothing can be sent encrypted");
    const rid = await recordKeyID(b64(rk.public_key));
    const pinned = await this.device.state("record");
    if (rid !== rk.id) changed.push({ who: "the organisation's record key", id: rk.id, was: rk.id, now: rid });
    else if (pinned && pinned !== rid) changed.push({ who: "the organisation's record key", id: rid, was: pinned, now: rid });
    else if (!pinned) await this.device.setState("record", rid);
    this.devices = devices;
    this.changed = changed;
    return { devices, changed, record: rk };
  }

  // keys fetches and checks the thread's current keys.
  async keys(whoOf) {
    return this.check(await this.api.get(path(this.threadID, "keys")), whoOf);
  }

  // upload encrypts each file ({name, type, bytes}) on this device and
  // uploads its ciphertext: the references to seal, ids set. The server
  // stores and checks the ciphertext only; name and type stay sealed.
  async upload(files) {
    const refs = [];
    for (const f of files) {
      const { ciphertext, ref } = await encryptFile(this.threadID, this.device.id, f.name, f.type || "application/octet-stream", f.bytes);
      const res = await raw(this.api, path(this.threadID, "attachments"), { method: "POST", body: ciphertext,
        headers: { "Content-Type": ENCRYPTED_TYPE } });
      const att = await res.json();
      if (att.sha256 !== ref.sha256) throw new Error("the server recorded another SHA-256 than the ciphertext's");
      refs.push({ ...ref, id: att.id });
    }
    return refs;
  }

  // file downloads an opened message's attachment (a reference of its
  // content), checks and decrypts it: {name, type, bytes}.
  async file(m, ref) {
    const res = await raw(this.api, `/v1/attachments/${encodeURIComponent(ref.id)}`);
    const bytes = await decryptFile(m.envelope, ref, await res.arrayBuffer());
    return { name: ref.name, type: ref.type, bytes };
  }

  // send seals text (and the attachments already uploaded, refs) to the
  // thread's current devices and record key, signs it, and posts it; on a
  // 409 naming the current keys it re-wraps to them (the files, bound to
  // the thread and this device, need no new upload).
  async send(text, urgent, whoOf, refs = []) {
    let keys = await this.api.get(path(this.threadID, "keys"));
    for (let attempt = 0; attempt < 4; attempt++) {
      const { devices, changed, record } = await this.check(keys, whoOf);
      if (changed.length) throw new KeysChanged(changed);
      const seq = ((await this.device.state(`seq|${this.threadID}`)) || 0) + 1;
      const env = await seal({ threadId: this.threadID, senderDevice: this.device.id, senderSeq: seq,
        recipients: devices.map((d) => ({ id: d.id, publicKey: b64(d.hpke_public_key) })),
        record: { id: record.id, publicKey: b64(record.public_key) }, signingKey: this.device.signingKey, attachments: refs },
      text);
      await this.device.setState(`seq|${this.threadID}`, seq); // never reuse a number, even if the answer is lost
      try {
        const body = { envelope: env };
        if (urgent) body.urgent = true;
        const m = await this.api.post(path(this.threadID, "envelopes"), body);
        this.opened.set(m.id, { text, attachments: refs });
        await this.accept(env, m.id);
        return m;
      } catch (err) {
        if (!(err instanceof ApiError) || err.status !== 409) throw err;
        const last = /greater than (\d+)/.exec(err.detail);
        if (err.current?.devices) keys = err.current;
        else if (last) await this.device.setState(`seq|${this.threadID}`, Number(last[1]));
        else throw err;
      }
    }
    throw new Error("the conversation's devices kept changing while sending: try again");
  }

  // accept records an envelope's sender sequence as seen for message id,
  // or returns false when it replays or reorders one seen before.
  async accept(e, id) {
    const key = `seen|${this.threadID}|${e.sender_device_id}`;
    const seen = (await this.device.state(key)) || { max: 0, ids: {} };
    const known = seen.ids[e.sender_seq];
    if (known === id) return true;
    if (known || e.sender_seq <= seen.max) return false;
    seen.ids[e.sender_seq] = id;
    seen.max = e.sender_seq;
    await this.device.setState(key, seen);
    return true;
  }

  // reveal opens every encrypted message not opened yet, in order, one at a
  // time (the replay check depends on the order).
  reveal(messages) {
    this.queue = this.queue.then(async () => {
      for (const m of messages) {
        if (m.kind !== "encrypted" || this.opened.has(m.id)) continue;
        this.opened.set(m.id, await this.openOne(m));
      }
    });
    return this.queue;
  }

  async openOne(m) {
    const e = m.envelope;
    if (!e) return { error: "Refused: this encrypted message has no envelope." };
    const pin = e.sender_device_id === this.device.id ? { signing_public_key: enc64(this.device.signingPublic) }
      : await this.device.state(`pin|${e.sender_device_id}`);
    if (!pin) return { error: "Cannot verify this message: its sender's device is not one this browser has seen in this conversation's keys." };
    let content;
    try {
      content = await openContent(e, { threadId: this.threadID, recipientId: this.device.id, privateKey: await this.device.key(),
        senderKey: b64(pin.signing_public_key) });
    } catch (err) {
      return { error: describe(err) };
    }
    if (!(await this.accept(e, m.id))) {
      return { error: `Refused: this is a replay of an earlier message (its sender's sequence number ${e.sender_seq} was already used).` };
    }
    return content;
  }
}
