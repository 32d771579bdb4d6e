// End-to-end encryption in the browser (docs/e2ee.md): sealing and opening
// envelopes with HPKE MLKEM768-X25519 (@hpke/core and @hpke/hybridkem-x-wing,
// bundled into ../vendor/hpke.js by make hpke-bundle), AES-256-GCM and Ed25519 from
// WebCrypto. The same bytes as Go's package e2ee, checked against it in
// e2ee/browser_test.go.
import { Aes256Gcm, CipherSuite, HkdfSha256, XWing } from "../vendor/hpke.js";
import { wrapAll } from "./wrappool.js";
import { nativeX25519 } from "./x25519.js";

const suite = new CipherSuite({ kem: new XWing(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
nativeX25519(suite.kem); // X-Wing's X25519 half by WebCrypto (x25519.js)
const INFO = new TextEncoder().encode("tend-e2ee-v1");
const utf8 = (s) => new TextEncoder().encode(s);

export function b64(s) {
  const t = s.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(t + "=".repeat((4 - (t.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

export function enc64(bytes) {
  let bin = "";
  for (const b of new Uint8Array(bytes)) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

// frame joins pieces as docs/e2ee.md frames them: ["f", bytes] is a 4-byte
// big-endian length and the bytes; ["u16"|"u32"|"u64", n] a big-endian integer.
function frame(parts) {
  const chunks = [];
  for (const [kind, v] of parts) {
    if (kind === "f") {
      const len = new Uint8Array(4);
      new DataView(len.buffer).setUint32(0, v.length);
      chunks.push(len, v);
      continue;
    }
    const size = { u16: 2, u32: 4, u64: 8 }[kind];
    const b = new Uint8Array(size);
    const dv = new DataView(b.buffer);
    if (kind === "u16") dv.setUint16(0, v);
    else if (kind === "u32") dv.setUint32(0, v);
    else dv.setBigUint64(0, BigInt(v));
    chunks.push(b);
  }
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let i = 0;
  for (const c of chunks) {
    out.set(c, i);
    i += c.length;
  }
  return out;
}

const head = (label, e) => [["f", utf8(label)], ["f", utf8(e.thread_id)], ["f", utf8(e.sender_device_id)], ["u64", e.sender_seq]];
export const contentAAD = (e) => frame(head(e.v === 2 ? "tend-e2ee-v2 content" : "tend-e2ee-v1 content", e));
const wrapAAD = (e, id) => frame([...head("tend-e2ee-v1 wrap", e), ["f", utf8(id)]]);

export function signedBytes(e) {
  const parts = [["f", utf8("tend-e2ee-v1 signature")], ["u16", e.v], ["u16", e.suite.kem], ["u16", e.suite.kdf],
    ["u16", e.suite.aead], ["f", utf8(e.thread_id)], ["f", utf8(e.sender_device_id)], ["u64", e.sender_seq],
    ["f", b64(e.nonce)], ["f", b64(e.ciphertext)]];
  if (e.v === 2) parts.push(["u32", e.attachments.length], ...e.attachments.map((id) => ["f", utf8(id)]));
  parts.push(["u32", e.recipients.length]);
  for (const w of [...e.recipients, e.record]) parts.push(["f", utf8(w.id)], ["f", b64(w.enc)], ["f", b64(w.wrapped_key)]);
  return frame(parts);
}

// formatFingerprint spells a fingerprint for people: 16 groups of four
// uppercase hex digits.
export function formatFingerprint(bytes) {
  const hex = [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("").toUpperCase();
  return hex.match(/.{4}/g).join(" ");
}

// fingerprint is a device's fingerprint (docs/e2ee.md, "Device keys"),
// computed here from its public keys, never taken from the server.
export async function fingerprint(hpkePublic, signingPublic) {
  const framed = frame([["f", utf8("tend-e2ee-v1 fingerprint")], ["f", hpkePublic], ["f", signingPublic]]);
  return formatFingerprint(await crypto.subtle.digest("SHA-256", framed));
}

// generateDeviceKeys makes a device's key pairs: X-Wing (its private key is
// the 32-byte seed, which WebCrypto cannot hold) and Ed25519 (a WebCrypto
// key whose private half cannot be exported).
export async function generateDeviceKeys() {
  const kp = await suite.kem.generateKeyPair();
  const hpkeSeed = new Uint8Array(await suite.kem.serializePrivateKey(kp.privateKey));
  const hpkePublic = new Uint8Array(await suite.kem.serializePublicKey(kp.publicKey));
  const sig = await crypto.subtle.generateKey("Ed25519", false, ["sign", "verify"]);
  const signingPublic = new Uint8Array(await crypto.subtle.exportKey("raw", sig.publicKey));
  return { hpkeSeed, hpkePublic, signingKey: sig.privateKey, signingPublic };
}

// loadPrivateKey prepares a 32-byte X-Wing seed for open (deriving the key
// pair once instead of at every message).
export function loadPrivateKey(seed) {
  return suite.kem.deserializePrivateKey(seed);
}

// importSigningKey makes a WebCrypto Ed25519 signing key of a 32-byte seed
// and its public key.
export function importSigningKey(seed, publicKey) {
  return crypto.subtle.importKey("jwk", { kty: "OKP", crv: "Ed25519", d: enc64(seed), x: enc64(publicKey) }, "Ed25519",
    false, ["sign"]);
}

// seal encrypts text for recipients ([{id, publicKey}]) and the record key
// ({id, publicKey}), signed with signingKey (a WebCrypto Ed25519 key). With
// attachments (references from encryptFile, their id set to the uploaded
// attachment's), it seals a version 2 envelope whose content holds both.
export async function seal({ threadId, senderDevice, senderSeq, recipients, record, signingKey, attachments = [] }, text) {
  const e = { v: 1, suite: { kem: 0x647a, kdf: 1, aead: 2 }, thread_id: threadId, sender_device_id: senderDevice,
    sender_seq: senderSeq };
  if (attachments.length) [e.v, e.attachments, text] = [2, attachments.map((a) => a.id), contentJSON(text, attachments)];
  const key = crypto.getRandomValues(new Uint8Array(32));
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const aes = await crypto.subtle.importKey("raw", key, "AES-GCM", false, ["encrypt"]);
  e.nonce = enc64(nonce);
  e.ciphertext = enc64(await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: contentAAD(e) }, aes,
    utf8(text)));
  // The wraps run in Web Workers, one per core (wrappool.js).
  const to = [...recipients, record];
  const wrapped = await wrapAll(key, to.map(({ id, publicKey }) => ({ publicKey, aad: wrapAAD(e, id) })), wrapKey);
  const wraps = to.map(({ id }, i) => ({ id, enc: enc64(wrapped[i].enc), wrapped_key: enc64(wrapped[i].wrappedKey) }));
  e.record = wraps.pop();
  e.recipients = wraps;
  e.signature = enc64(await crypto.subtle.sign("Ed25519", signingKey, signedBytes(e)));
  return e;
}

// wrapKey wraps a content key to one X-Wing public key (HPKE base mode)
// with the wrap associated data aad: {enc, wrappedKey}, as bytes.
export async function wrapKey(key, publicKey, aad) {
  const recipientPublicKey = await suite.kem.deserializePublicKey(publicKey);
  const ctx = await suite.createSenderContext({ recipientPublicKey, info: INFO });
  return { enc: new Uint8Array(ctx.enc), wrappedKey: new Uint8Array(await ctx.seal(key, aad)) };
}

// open verifies e with the sender device's signing key (32 raw bytes) and
// decrypts it with this device's 32-byte X-Wing seed (or the key
// loadPrivateKey made of it); it throws an Error
// saying plainly what failed.
export async function open(e, params) {
  return (await openContent(e, params)).text;
}

// openContent is open returning {text, attachments}: a version 2
// envelope's attachment references, checked against its list.
export async function openContent(e, params) {
  const pt = await openBytes(e, params);
  if (e.v === 1) return { text: pt, attachments: [] };
  let c;
  try {
    c = JSON.parse(pt);
  } catch {
    c = null;
  }
  const ids = (c?.attachments || []).map((a) => a?.id);
  if (typeof c?.text !== "string" || ids.length !== e.attachments.length || ids.some((id, i) => id !== e.attachments[i])) {
    throw new Error("the content is malformed or does not list the envelope's attachments");
  }
  return { text: c.text, attachments: c.attachments };
}

async function openBytes(e, { threadId, recipientId, privateKey, senderKey }) {
  if ((e.v !== 1 && e.v !== 2) || e.suite.kem !== 0x647a || e.suite.kdf !== 1 || e.suite.aead !== 2) throw new Error("unsupported envelope");
  if (e.thread_id !== threadId) throw new Error("the envelope belongs to another thread");
  const verifyKey = await crypto.subtle.importKey("raw", senderKey, "Ed25519", false, ["verify"]);
  if (!(await crypto.subtle.verify("Ed25519", verifyKey, b64(e.signature), signedBytes(e)))) {
    throw new Error("the envelope's signature does not verify");
  }
  const w = e.record.id === recipientId ? e.record : e.recipients.find((r) => r.id === recipientId);
  if (!w) throw new Error("this message was not encrypted for this device");
  const recipientKey = privateKey instanceof Uint8Array ? await suite.kem.deserializePrivateKey(privateKey) : privateKey;
  const ctx = await suite.createRecipientContext({ recipientKey, enc: b64(w.enc), info: INFO });
  const key = await ctx.open(b64(w.wrapped_key), wrapAAD(e, recipientId));
  const aes = await crypto.subtle.importKey("raw", key, "AES-GCM", false, ["decrypt"]);
  const pt = await crypto.subtle.decrypt({ name: "AES-GCM", iv: b64(e.nonce), additionalData: contentAAD(e) }, aes,
    b64(e.ciphertext));
  return new TextDecoder().decode(pt);
}

// contentJSON is a version 2 envelope's content: the text and each
// attachment's reference, fields in the order docs/e2ee.md lists them.
function contentJSON(text, attachments) {
  return JSON.stringify({ text, attachments: attachments.map((a) => ({ id: a.id, key: a.key, sha256: a.sha256,
    plaintext_sha256: a.plaintext_sha256, name: a.name, type: a.type, size: a.size })) });
}

const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
const fileAAD = (threadId, senderDevice, type, size) => frame([["f", utf8("tend-e2ee-v2 attachment")], ["f", utf8(threadId)],
  ["f", utf8(senderDevice)], ["f", utf8(type)], ["u64", size]]);

// encryptFile encrypts a file (bytes) under a fresh key for a thread and
// sender device: it returns the ciphertext to upload (as
// application/vnd.tend.encrypted) and the reference to seal, whose id is
// the uploaded attachment's.
export async function encryptFile(threadId, senderDevice, name, type, bytes) {
  const file = new Uint8Array(bytes);
  const key = crypto.getRandomValues(new Uint8Array(32));
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const aes = await crypto.subtle.importKey("raw", key, "AES-GCM", false, ["encrypt"]);
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce,
    additionalData: fileAAD(threadId, senderDevice, type, file.length) }, aes, file));
  const ciphertext = new Uint8Array(12 + sealed.length);
  ciphertext.set(nonce);
  ciphertext.set(sealed, 12);
  return { ciphertext, ref: { id: "", key: enc64(key), sha256: hex(await crypto.subtle.digest("SHA-256", ciphertext)),
    plaintext_sha256: hex(await crypto.subtle.digest("SHA-256", file)), name, type, size: file.length } };
}

// decryptFile checks a downloaded ciphertext against its reference (its
// SHA-256 first), decrypts it with the envelope's thread and sender device,
// and checks the file; it throws an Error saying plainly what failed.
export async function decryptFile(e, ref, ciphertext) {
  const ct = new Uint8Array(ciphertext);
  if (hex(await crypto.subtle.digest("SHA-256", ct)) !== ref.sha256) {
    throw new Error("the attachment's ciphertext is not the one the sender sent");
  }
  let file;
  try {
    const aes = await crypto.subtle.importKey("raw", b64(ref.key), "AES-GCM", false, ["decrypt"]);
    file = new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: ct.subarray(0, 12),
      additionalData: fileAAD(e.thread_id, e.sender_device_id, ref.type, ref.size) }, aes, ct.subarray(12)));
  } catch {
    file = null;
  }
  if (!file || file.length !== ref.size || hex(await crypto.subtle.digest("SHA-256", file)) !== ref.plaintext_sha256) {
    throw new Error("the attachment does not decrypt to the file the sender sent");
  }
  return file;
}
