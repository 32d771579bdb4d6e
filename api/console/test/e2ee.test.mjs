// Drives end-to-end encryption in the triage console in Debian's Chromium
// (playwright-core). Run by api/console_e2ee_test.go, which owns the server
// and plays the patient's device with Go's package e2ee; they talk over
// stdin/stdout:
//   script → "FINGERPRINT <fp>"  the console registered keys and shows fp
//   Go     → "PATIENT_WROTE"      the patient encrypted the thread and sent PATIENT_TEXT
//   script → "SENT"               the console opened it and sent REPLY_TEXT
//                                 (after one 409: the keys it first got
//                                 lacked the patient's device)
//   Go     → "CHECKED"            the patient opened the reply
//   script → "RESULT <json>"      what the console showed
// In between it plays a compromised server with page.route: a forged
// signature, a replayed envelope and a swapped key, each of which the
// console must refuse and say so; then it loses its keys (IndexedDB
// cleared) and must say that plainly.
// Environment: BASE_URL, TOKEN (a clinician of the patient's team),
// THREAD (the patient's thread), PATIENT_TEXT, REPLY_TEXT, SWAP_KEY (another
// X-Wing public key, base64url), CHROMIUM.
import { lines, nextLine } from "./lines.mjs";
import { chromium } from "playwright-core";
import { axe, layout, PHONE, report } from "./checks.mjs";

const { BASE_URL, TOKEN, THREAD, PATIENT_TEXT, REPLY_TEXT, SWAP_KEY, REPLY_FILE, CHROMIUM = "/usr/bin/chromium" } = process.env;
const WAIT = { timeout: 20000 };

function check(cond, msg) {
  if (!cond) {
    console.error(`console e2ee test: ${msg}`);
    process.exit(1);
  }
}

async function expectLine(want) {
  const got = await nextLine();
  check(got === want, `expected ${want} from the test, got ${got}`);
}

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
const result = { swap: {}, lost: {} };
try {
  const context = await browser.newContext({ viewport: { width: 1360, height: 1180 }, locale: "en-GB", timezoneId: "UTC" });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  // Every refused call is recorded: only the 409 of the stale keys is expected.
  page.on("console", (m) => { if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console: ${m.text()}`); });
  page.on("response", (r) => {
    if (r.status() >= 400) result.refusedCalls = [...(result.refusedCalls || []), `${r.request().method()} ${new URL(r.url()).pathname} ${r.status()}`];
  });
  await page.goto(`${BASE_URL}/#token=${encodeURIComponent(TOKEN)}`);

  // 1. The console generates and registers this browser's keys, and shows
  // their fingerprint.
  const fp = page.locator("#e2ee-fingerprint");
  await page.waitForFunction(() => document.getElementById("e2ee-fingerprint")?.textContent.length === 79, null, WAIT)
    .catch(async (err) => {
      check(false, `no fingerprint shown (${err.message}); notice ${await page.locator("#e2ee-notice").textContent()}; ${problems.join("; ")}`);
    });
  result.fingerprint = await fp.textContent();
  result.signingExtractable = await page.evaluate(async () => {
    const db = await new Promise((res, rej) => { const r = indexedDB.open("tend-e2ee"); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
    const rec = await new Promise((res) => { const all = db.transaction("devices").objectStore("devices").getAll(); all.onsuccess = () => res(all.result[0]); });
    return rec.signingKey.extractable;
  });
  console.log(`FINGERPRINT ${result.fingerprint}`);
  await expectLine("PATIENT_WROTE");

  // 2. The patient's encrypted message opens in the console; the thread
  // lists each device's fingerprint. The first keys the console fetches
  // lack the patient's device (a stale list): the server's 409 carries the
  // current keys and the console re-wraps to them.
  let staleOnce = false;
  await page.route(`**/v1/threads/${THREAD}/keys`, async (route) => {
    const res = await route.fetch();
    const keys = await res.json();
    if (staleOnce) {
      staleOnce = false;
      keys.devices = keys.devices.filter((d) => d.user_id === keys.devices.find((x) => x.label === "Triage console")?.user_id);
    }
    await route.fulfill({ response: res, json: keys });
  });
  await page.click("#nav-messages");
  const row = page.locator(`#threads-table tr[data-thread-id="${THREAD}"] button`);
  await row.click(WAIT);
  const view = page.locator("#messages-thread");
  await view.locator("li[data-e2ee=opened] .msg-body", { hasText: PATIENT_TEXT }).waitFor(WAIT);
  // The patient's encrypted attachment decrypts here and is saved under
  // its sealed name.
  const [download] = await Promise.all([page.waitForEvent("download", WAIT),
    view.locator("li[data-e2ee=opened] .attachments a[data-attachment-id]").first().click()]);
  result.patientName = download.suggestedFilename();
  const chunks = [];
  for await (const c of await download.createReadStream()) chunks.push(c);
  result.patientFile = Buffer.concat(chunks).toString("base64url");
  result.encryptedState = await view.locator(".e2ee-state").textContent();
  result.fingerprints = await view.locator(".fingerprint-list li").evaluateAll((els) => els.map((e) => ({ id: e.dataset.deviceId,
    text: e.textContent })));
  await axe(page, "an encrypted thread");
  await page.setViewportSize(PHONE);
  await page.click("#e2ee-key summary");
  await layout(page, "an encrypted thread at 390×844");
  await page.click("#e2ee-key summary");
  await page.setViewportSize({ width: 1360, height: 1180 });

  staleOnce = true;
  let answers = [];
  page.on("response", (r) => { if (r.url().endsWith(`/v1/threads/${THREAD}/envelopes`)) answers.push(r.status()); });
  await page.setInputFiles("#msg-files", { name: "leaflet.txt", mimeType: "text/plain", buffer: Buffer.from(REPLY_FILE) });
  await page.fill("#msg-body", REPLY_TEXT);
  await page.press("#msg-body", "Enter");
  await view.locator("li[data-e2ee=opened] .msg-body", { hasText: REPLY_TEXT }).waitFor(WAIT);
  result.envelopeAnswers = answers;
  // The console sealed with its key-wrapping workers, which its policy allows.
  result.wrapWorkers = page.workers().filter((w) => w.url().endsWith("/wrapworker.js")).length;
  console.log("SENT");
  await expectLine("CHECKED");

  // 3. A compromised server: it forges a signature and replays an
  // envelope in the messages it lists.
  await page.route(`**/v1/threads/${THREAD}/messages*`, async (route) => {
    const res = await route.fetch();
    const body = await res.json();
    const original = (body.items || []).find((m) => m.kind === "encrypted" && m.sender_role === "patient");
    if (original) {
      const top = Math.max(...body.items.map((m) => m.seq));
      const sig = original.envelope.signature;
      const forged = { ...original, id: crypto.randomUUID(), seq: top + 1,
        envelope: { ...original.envelope, signature: (sig[0] === "A" ? "B" : "A") + sig.slice(1) } };
      const replayed = { ...original, id: crypto.randomUUID(), seq: top + 2 };
      body.items.push(forged, replayed);
    }
    await route.fulfill({ response: res, json: body });
  });
  await row.click();
  await view.locator("li[data-e2ee=opened]").nth(1).waitFor(WAIT);
  await page.waitForFunction(() => document.querySelectorAll("#messages-thread li[data-e2ee=refused]").length === 2, null, WAIT);
  result.refused = await view.locator("li[data-e2ee=refused] .error").allTextContents();
  result.shownTexts = await view.locator("li .msg-body").allTextContents();
  await page.unroute(`**/v1/threads/${THREAD}/messages*`);

  // 4. It swaps the patient's key: the console refuses to encrypt to it
  // and marks the device.
  await page.unroute(`**/v1/threads/${THREAD}/keys`);
  await page.route(`**/v1/threads/${THREAD}/keys`, async (route) => {
    const res = await route.fetch();
    const keys = await res.json();
    for (const d of keys.devices) if (d.label !== "Triage console") d.hpke_public_key = SWAP_KEY;
    await route.fulfill({ response: res, json: keys });
  });
  answers = [];
  await page.fill("#msg-body", "This must never be sent");
  await page.press("#msg-body", "Enter");
  await view.locator("p.error[role=alert]", { hasText: "changed since this browser first saw them" }).waitFor(WAIT);
  result.swap.error = await view.locator("p.error[role=alert]").textContent();
  result.swap.marked = await view.locator(".fingerprint-list li[data-changed=true]").count();
  result.swap.answers = answers;
  await page.unroute(`**/v1/threads/${THREAD}/keys`);

  // 5. The browser loses its keys (its key database is deleted): it
  // revokes its old device, registers new keys and says so; the messages
  // sent to the old keys are unreadable here, and say why.
  await page.evaluate(() => new Promise((resolve, reject) => {
    const r = indexedDB.deleteDatabase("tend-e2ee");
    r.onsuccess = resolve;
    r.onerror = () => reject(r.error);
  }));
  const page2 = page;
  await page2.reload();
  await page2.locator("#e2ee-notice:not([hidden])").waitFor(WAIT);
  result.lost.notice = await page2.locator("#e2ee-notice").textContent();
  result.lost.fingerprint = await page2.locator("#e2ee-fingerprint").textContent();
  await page2.click("#nav-messages");
  await page2.locator(`#threads-table tr[data-thread-id="${THREAD}"] button`).click(WAIT);
  await page2.locator("#messages-thread li[data-e2ee=refused]").first().waitFor(WAIT);
  result.lost.messages = await page2.locator("#messages-thread li[data-e2ee=refused] .error").allTextContents();
  result.problems = problems;
  result.checks = report;
  console.log(`RESULT ${JSON.stringify(result)}`);
} finally {
  await browser.close();
  lines.close();
}
