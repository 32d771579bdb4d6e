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
export const contentAAD = (e) => frame(head("tend-e2ee-v1 content", e));
const wrapAAD = (e, id) => frame([...head("tend-e2ee-v1 wrap", e), ["f", utf8(id)]]);

export function signedBytes(e) {
  const parts = [["f", utf8("tend-e2ee-v1 signature")], ["u16", e.v], ["u16", e.suite.kem], ["u16", e.suite.kdf],
    ["u16", e.suite.aead], ["f", utf8(e.thread_id)], ["f", utf8(e.sender_device_id)], ["u64", e.sender_seq],
    ["f", b64(e.nonce)], ["f", b64(e.ciphertext)], ["u32", e.recipients.length]];
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
// ({id, publicKey}), signed with signingKey (a WebCrypto Ed25519 key).
export async function seal({ threadId, senderDevice, senderSeq, recipients, record, signingKey }, text) {
  const e = { v: 1, suite: { kem: 0x647a, kdf: 1, aead: 2 }, thread_id: threadId, sender_device_id: senderDevice,
    sender_seq: senderSeq };
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
export async function open(e, { threadId, recipientId, privateKey, senderKey }) {
  if (e.v !== 1 || e.suite.kem !== 0x647a || e.suite.kdf !== 1 || e.suite.aead !== 2) throw new Error("unsupported envelope");
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
