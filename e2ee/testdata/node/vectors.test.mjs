// Checks Tend's e2ee test vectors (../vectors.json) with an implementation
// that shares no code with Tend's Go package: HPKE X-Wing from @hpke/core and
// @hpke/hybridkem-x-wing, AES-256-GCM from WebCrypto, Ed25519 from node:crypto.
// Then seals a fresh envelope to the same keys and writes it to $E2EE_OUT, for
// the Go test (e2ee/node_test.go) to open: interoperability in both directions.
import assert from "node:assert/strict";
import { createHash, createPrivateKey, createPublicKey, sign, verify, webcrypto } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { test } from "node:test";
import { Aes256Gcm, CipherSuite, HkdfSha256 } from "@hpke/core";
import { XWing } from "@hpke/hybridkem-x-wing";

const v = JSON.parse(await readFile(new URL("../vectors.json", import.meta.url), "utf8"));
const suite = new CipherSuite({ kem: new XWing(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
const INFO = new TextEncoder().encode("tend-e2ee-v1");
const b64 = (s) => new Uint8Array(Buffer.from(s, "base64url"));
const enc64 = (b) => Buffer.from(b).toString("base64url");
const utf8 = (s) => new TextEncoder().encode(s);

// Framing of docs/e2ee.md: a field is a 4-byte big-endian length and its bytes.
function frame(parts) {
  const out = [];
  for (const [kind, val] of parts) {
    if (kind === "f") {
      const len = Buffer.alloc(4);
      len.writeUInt32BE(val.length);
      out.push(len, Buffer.from(val));
    } else if (kind === "u16") {
      const b = Buffer.alloc(2);
      b.writeUInt16BE(val);
      out.push(b);
    } else if (kind === "u32") {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(val);
      out.push(b);
    } else {
      const b = Buffer.alloc(8);
      b.writeBigUInt64BE(BigInt(val));
      out.push(b);
    }
  }
  return new Uint8Array(Buffer.concat(out));
}

const head = (label, e) => [["f", utf8(label)], ["f", utf8(e.thread_id)], ["f", utf8(e.sender_device_id)], ["u64", e.sender_seq]];
const contentAAD = (e) => frame(head(e.v === 2 ? "tend-e2ee-v2 content" : "tend-e2ee-v1 content", e));
const fileAAD = (e, ref) => frame([["f", utf8("tend-e2ee-v2 attachment")], ["f", utf8(e.thread_id)],
  ["f", utf8(e.sender_device_id)], ["f", utf8(ref.type)], ["u64", ref.size]]);
const sha256hex = (b) => createHash("sha256").update(b).digest("hex");
const wrapAAD = (e, id) => frame([...head("tend-e2ee-v1 wrap", e), ["f", utf8(id)]]);
function signedBytes(e) {
  const parts = [["f", utf8("tend-e2ee-v1 signature")], ["u16", e.v], ["u16", e.suite.kem], ["u16", e.suite.kdf],
    ["u16", e.suite.aead], ["f", utf8(e.thread_id)], ["f", utf8(e.sender_device_id)], ["u64", e.sender_seq],
    ["f", b64(e.nonce)], ["f", b64(e.ciphertext)]];
  if (e.v === 2) {
    parts.push(["u32", e.attachments.length]);
    for (const id of e.attachments) parts.push(["f", utf8(id)]);
  }
  parts.push(["u32", e.recipients.length]);
  for (const w of [...e.recipients, e.record]) parts.push(["f", utf8(w.id)], ["f", b64(w.enc)], ["f", b64(w.wrapped_key)]);
  return frame(parts);
}

const edPublic = (raw) => createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: enc64(raw) }, format: "jwk" });
const edPrivate = (seed, pub) =>
  createPrivateKey({ key: { kty: "OKP", crv: "Ed25519", d: enc64(seed), x: enc64(pub) }, format: "jwk" });

async function open(e, id, seed, senderPub) {
  assert.ok(verify(null, signedBytes(e), edPublic(senderPub), b64(e.signature)), "signature");
  const w = e.record.id === id ? e.record : e.recipients.find((r) => r.id === id);
  const recipientKey = await suite.kem.deserializePrivateKey(seed);
  const ctx = await suite.createRecipientContext({ recipientKey, enc: b64(w.enc), info: INFO });
  const key = new Uint8Array(await ctx.open(b64(w.wrapped_key), wrapAAD(e, id)));
  const aes = await webcrypto.subtle.importKey("raw", key, "AES-GCM", false, ["decrypt"]);
  const pt = await webcrypto.subtle.decrypt({ name: "AES-GCM", iv: b64(e.nonce), additionalData: contentAAD(e) }, aes,
    b64(e.ciphertext));
  return { key, plaintext: new TextDecoder().decode(pt) };
}

// decryptFile checks an attachment's ciphertext against its reference and
// decrypts it (docs/e2ee.md, "Attachments").
async function decryptFile(e, ref, ct) {
  assert.equal(sha256hex(ct), ref.sha256, "ciphertext SHA-256");
  const aes = await webcrypto.subtle.importKey("raw", b64(ref.key), "AES-GCM", false, ["decrypt"]);
  const file = new Uint8Array(await webcrypto.subtle.decrypt({ name: "AES-GCM", iv: ct.subarray(0, 12),
    additionalData: fileAAD(e, ref) }, aes, ct.subarray(12)));
  assert.equal(file.length, ref.size);
  assert.equal(sha256hex(file), ref.plaintext_sha256);
  return file;
}

async function encryptFile(e, name, type, file) {
  const key = webcrypto.getRandomValues(new Uint8Array(32));
  const nonce = webcrypto.getRandomValues(new Uint8Array(12));
  const ref = { key: enc64(key), name, type, size: file.length, plaintext_sha256: sha256hex(file) };
  const aes = await webcrypto.subtle.importKey("raw", key, "AES-GCM", false, ["encrypt"]);
  const ct = new Uint8Array([...nonce, ...new Uint8Array(await webcrypto.subtle.encrypt(
    { name: "AES-GCM", iv: nonce, additionalData: fileAAD(e, ref) }, aes, file))]);
  ref.sha256 = sha256hex(ct);
  return { ct, ref };
}

test("framing matches the vectors", () => {
  assert.deepEqual(contentAAD(v.envelope), b64(v.content_aad));
  assert.deepEqual(signedBytes(v.envelope), b64(v.signed_bytes));
});

test("fingerprints and the record key id", async () => {
  const fp = (k) => createHash("sha256").update(frame([["f", utf8("tend-e2ee-v1 fingerprint")],
    ["f", b64(k.hpke_public_key)], ["f", k.signing_public_key ? b64(k.signing_public_key) : new Uint8Array()]])).digest();
  for (const k of [...v.recipients, v.record]) {
    assert.equal(fp(k).toString("hex").toUpperCase().match(/.{4}/g).join(" "), k.fingerprint);
    const pub = await suite.kem.deserializePublicKey(b64(k.hpke_public_key));
    assert.deepEqual(new Uint8Array(await suite.kem.serializePublicKey(pub)), b64(k.hpke_public_key));
  }
  assert.equal(fp(v.record).subarray(0, 16).toString("hex"), v.record.id);
});

test("every recipient and the record key open the vector envelope", async () => {
  for (const k of [...v.recipients, v.record]) {
    const { key, plaintext } = await open(v.envelope, k.id, b64(k.hpke_private_key), b64(v.sender.signing_public_key));
    assert.deepEqual(key, b64(v.content_key));
    assert.equal(plaintext, v.plaintext);
  }
});

test("a moved envelope does not open", async () => {
  const moved = { ...v.envelope, sender_seq: v.envelope.sender_seq + 1 };
  await assert.rejects(open(moved, v.recipients[1].id, b64(v.recipients[1].hpke_private_key),
    b64(v.sender.signing_public_key)));
});

test("v2: framing, the file's ciphertext and the content", async () => {
  const x = v.v2;
  const e = x.envelope;
  assert.deepEqual(contentAAD(e), b64(x.content_aad));
  assert.deepEqual(signedBytes(e), b64(x.signed_bytes));
  assert.deepEqual(fileAAD(e, x.attachment), b64(x.file_aad));
  // AES-GCM with the fixed key and nonce is deterministic: recompute it.
  const aes = await webcrypto.subtle.importKey("raw", b64(x.file_key), "AES-GCM", false, ["encrypt"]);
  const ct = new Uint8Array([...b64(x.file_nonce), ...new Uint8Array(await webcrypto.subtle.encrypt(
    { name: "AES-GCM", iv: b64(x.file_nonce), additionalData: b64(x.file_aad) }, aes, b64(x.file)))]);
  assert.deepEqual(ct, b64(x.file_ciphertext));
  assert.equal(sha256hex(ct), x.attachment.sha256);
  for (const k of [...v.recipients, v.record]) {
    const { key, plaintext } = await open(e, k.id, b64(k.hpke_private_key), b64(v.sender.signing_public_key));
    assert.deepEqual(key, b64(x.content_key));
    assert.equal(plaintext, x.content);
    const c = JSON.parse(plaintext);
    assert.equal(c.text, x.text);
    assert.deepEqual(c.attachments.map((a) => a.id), e.attachments);
    assert.deepEqual(await decryptFile(e, c.attachments[0], b64(x.file_ciphertext)), b64(x.file));
  }
  const moved = { ...e, thread_id: v.recipients[0].id };
  await assert.rejects(decryptFile(moved, x.attachment, b64(x.file_ciphertext)));
});

// sealNode completes envelope e (v, suite, ids, sender_seq and, in v2,
// attachments set) with content, sealed to the vectors' keys by the sender.
async function sealNode(e, content) {
  const key = webcrypto.getRandomValues(new Uint8Array(32));
  const nonce = webcrypto.getRandomValues(new Uint8Array(12));
  const aes = await webcrypto.subtle.importKey("raw", key, "AES-GCM", false, ["encrypt"]);
  e.nonce = enc64(nonce);
  e.ciphertext = enc64(new Uint8Array(await webcrypto.subtle.encrypt(
    { name: "AES-GCM", iv: nonce, additionalData: contentAAD(e) }, aes, utf8(content))));
  const wrap = async (id, pub) => {
    const recipientPublicKey = await suite.kem.deserializePublicKey(b64(pub));
    const ctx = await suite.createSenderContext({ recipientPublicKey, info: INFO });
    const wrapped = await ctx.seal(key, wrapAAD(e, id));
    return { id, enc: enc64(ctx.enc), wrapped_key: enc64(new Uint8Array(wrapped)) };
  };
  e.recipients = [];
  for (const k of v.recipients) e.recipients.push(await wrap(k.id, k.hpke_public_key));
  e.record = await wrap(v.record.id, v.record.hpke_public_key);
  e.signature = enc64(sign(null, signedBytes(e), edPrivate(b64(v.sender.signing_private_key),
    b64(v.sender.signing_public_key))));
  return e;
}

test("seal for Go to open", async () => {
  const out = process.env.E2EE_OUT;
  const suiteIDs = { kem: 0x647a, kdf: 1, aead: 2 };
  const text = "Sealed in Node: " + v.plaintext;
  const e = await sealNode({ v: 1, suite: suiteIDs, thread_id: v.thread_id, sender_device_id: v.sender.id, sender_seq: 8 },
    text);
  const back = await open(e, v.recipients[1].id, b64(v.recipients[1].hpke_private_key), b64(v.sender.signing_public_key));
  assert.equal(back.plaintext, text);

  // A version 2 envelope with an attachment encrypted here.
  const e2 = { v: 2, suite: suiteIDs, thread_id: v.thread_id, sender_device_id: v.sender.id, sender_seq: 9 };
  const file = utf8("Attached in Node ✓ " + "x".repeat(300));
  const { ct, ref } = await encryptFile(e2, "node.txt", "text/plain", file);
  ref.id = "0190b5a4-6c2e-7d4f-9a31-0000000000f9";
  e2.attachments = [ref.id];
  await sealNode(e2, JSON.stringify({ text: "With a file from Node", attachments: [{ id: ref.id, key: ref.key,
    sha256: ref.sha256, plaintext_sha256: ref.plaintext_sha256, name: ref.name, type: ref.type, size: ref.size }] }));
  if (out) {
    await writeFile(out, JSON.stringify({ plaintext: text, envelope: e, v2: { envelope: e2, text: "With a file from Node",
      file: enc64(file), file_ciphertext: enc64(ct) } }));
  }
});
