// Runs api/console/assets/e2ee.js in Debian's Chromium (playwright-core,
// never a downloaded browser) on the page BASE_URL serves: opens the envelope
// Go sealed (IN, a JSON file: {thread_id, recipient: {id, hpke_private_key},
// sender_signing_public_key, envelope, seal: {...}}) and seals one back.
// Prints "RESULT <json>" with what it opened and the envelope it sealed.
import { readFile } from "node:fs/promises";
import { chromium } from "playwright-core";

const { BASE_URL, CHROMIUM = "/usr/bin/chromium", IN } = process.env;
const input = JSON.parse(await readFile(IN, "utf8"));
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
try {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(BASE_URL + "/");
  const result = await page.evaluate(async (input) => {
    const m = await import("/console/assets/e2ee.js");
    const opened = await m.open(input.envelope, { threadId: input.thread_id, recipientId: input.recipient.id,
      privateKey: m.b64(input.recipient.hpke_private_key), senderKey: m.b64(input.sender_signing_public_key) });
    let moved = "opened";
    try {
      await m.open({ ...input.envelope, sender_seq: input.envelope.sender_seq + 1 }, { threadId: input.thread_id,
        recipientId: input.recipient.id, privateKey: m.b64(input.recipient.hpke_private_key),
        senderKey: m.b64(input.sender_signing_public_key) });
    } catch (e) {
      moved = e.message;
    }
    // Version 2: the vector envelope with an attachment, opened and its
    // file decrypted; and a file sealed here for Go.
    const v2 = input.v2;
    const c2 = await m.openContent(v2.envelope, { threadId: input.thread_id, recipientId: input.recipient.id,
      privateKey: m.b64(input.recipient.hpke_private_key), senderKey: m.b64(input.sender_signing_public_key) });
    const file2 = await m.decryptFile(v2.envelope, c2.attachments[0], m.b64(v2.file_ciphertext));
    let swapped = "opened";
    try {
      await m.decryptFile(v2.envelope, c2.attachments[0], m.b64(v2.file_ciphertext).subarray(1));
    } catch (e) {
      swapped = e.message;
    }
    const s = input.seal;
    const signingKey = await m.importSigningKey(m.b64(s.signing_private_key), m.b64(s.signing_public_key));
    const t0 = performance.now();
    const sealed = await m.seal({ threadId: input.thread_id, senderDevice: s.sender_device_id, senderSeq: s.sender_seq,
      recipients: s.recipients.map((r) => ({ id: r.id, publicKey: m.b64(r.public_key) })),
      record: { id: s.record.id, publicKey: m.b64(s.record.public_key) }, signingKey }, s.text);
    const seal_ms = performance.now() - t0;
    const enc = await m.encryptFile(input.thread_id, s.sender_device_id, "from-chromium.bin", "application/octet-stream",
      new TextEncoder().encode(s.file_text));
    enc.ref.id = s.file_id;
    const sealed2 = await m.seal({ threadId: input.thread_id, senderDevice: s.sender_device_id, senderSeq: s.sender_seq + 1,
      recipients: s.recipients.map((r) => ({ id: r.id, publicKey: m.b64(r.public_key) })),
      record: { id: s.record.id, publicKey: m.b64(s.record.public_key) }, signingKey, attachments: [enc.ref] }, s.text);
    // With bench: seal a text of bench.bytes to bench.recipients, bench.n
    // times, and report each time (the figure docs/e2ee.md quotes).
    const times = [];
    if (input.bench) {
      const b = input.bench;
      const rs = b.recipients.map((r) => ({ id: r.id, publicKey: m.b64(r.public_key) }));
      const text = "x".repeat(b.bytes);
      for (let i = 0; i < b.n; i++) {
        const t = performance.now();
        await m.seal({ threadId: input.thread_id, senderDevice: s.sender_device_id, senderSeq: 2 + i, recipients: rs,
          record: { id: s.record.id, publicKey: m.b64(s.record.public_key) }, signingKey }, text);
        times.push(performance.now() - t);
      }
    }
    return { opened, moved, sealed, seal_ms, times, v2: { text: c2.text, name: c2.attachments[0].name,
      file: m.enc64(file2), swapped, sealed: sealed2, file_ciphertext: m.enc64(enc.ciphertext) } };
  }, input);
  // The key-wrapping pool's workers (wrappool.js) that sealing started.
  result.workers = page.workers().filter((w) => w.url().endsWith("/wrapworker.js")).length;
  if (errors.length) throw new Error("page errors: " + errors.join("; "));
  console.log("RESULT " + JSON.stringify(result));
} finally {
  await browser.close();
}
