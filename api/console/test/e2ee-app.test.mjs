// A clinician in the triage console and a patient in the patient app, in
// Debian's Chromium (playwright-core), exchange end-to-end encrypted
// messages both ways. Run by TestE2EEConsoleAndAppInBrowser
// (api/console_e2ee_test.go), which checks the result against the server:
// each page's fingerprint is its registered key's, each lists the other's,
// and the database holds neither text.
// Environment: BASE_URL, TOKEN_CLINICIAN, TOKEN_PATIENT, PATIENT_TEXT,
// REPLY_TEXT, CHROMIUM. Prints "RESULT <json>".
import { chromium } from "playwright-core";
import { axe, report } from "./checks.mjs";

const { BASE_URL, TOKEN_CLINICIAN, TOKEN_PATIENT, PATIENT_TEXT, REPLY_TEXT, PATIENT_FILE, REPLY_FILE,
  CHROMIUM = "/usr/bin/chromium" } = process.env;
const WAIT = { timeout: 20000 };

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
const result = { problems: [], fingerprint: {}, lists: {} };
const watch = (page, who) => {
  page.on("pageerror", (e) => result.problems.push(`${who}: page error: ${e.message}`));
  page.on("response", (r) => { if (r.status() >= 400) result.problems.push(`${who}: ${r.request().method()} ${new URL(r.url()).pathname} ${r.status()}`); });
};
try {
  const phone = await (await browser.newContext({ viewport: { width: 390, height: 844 }, locale: "en-GB" })).newPage();
  watch(phone, "app");
  await phone.goto(`${BASE_URL}/app/#token=${encodeURIComponent(TOKEN_PATIENT)}`);
  await phone.locator('#main[data-view="home"][data-ready="true"]').waitFor(WAIT);
  await phone.goto(`${BASE_URL}/app/#/settings`);
  await phone.locator("#e2ee-fingerprint").waitFor(WAIT);
  result.fingerprint.App = await phone.locator("#e2ee-fingerprint").textContent();

  const desk = await (await browser.newContext({ viewport: { width: 1360, height: 1180 }, locale: "en-GB" })).newPage();
  watch(desk, "console");
  await desk.goto(`${BASE_URL}/#token=${encodeURIComponent(TOKEN_CLINICIAN)}`);
  await desk.waitForFunction(() => document.getElementById("e2ee-fingerprint")?.textContent.length === 79, null, WAIT);
  result.fingerprint.Console = await desk.locator("#e2ee-fingerprint").textContent();

  // The patient opens the conversation: everyone has keys, so the app turns
  // it encrypted, and sends.
  await phone.goto(`${BASE_URL}/app/#/messages`);
  await phone.locator('#main[data-view="messages"][data-ready="true"]').waitFor(WAIT);
  await phone.locator("#e2ee-state", { hasText: "End-to-end encrypted" }).waitFor(WAIT);
  // With a photo, encrypted on the phone before upload (PATIENT_FILE,
  // base64url bytes).
  await phone.setInputFiles("#msg-file", { name: "weight.png", mimeType: "image/png", buffer: Buffer.from(PATIENT_FILE, "base64url") });
  await phone.locator("#msg-body").fill(PATIENT_TEXT);
  await phone.getByRole("button", { name: "Send", exact: true }).click();
  await phone.locator("li[data-e2ee=opened]", { hasText: PATIENT_TEXT }).waitFor(WAIT);
  await axe(phone, "the app's encrypted thread");

  // The clinician reads it in the console and answers.
  await desk.click("#nav-messages");
  await desk.locator("#threads-table tbody tr button").first().click(WAIT);
  const view = desk.locator("#messages-thread");
  await view.locator("li[data-e2ee=opened] .msg-body", { hasText: PATIENT_TEXT }).waitFor(WAIT);
  result.lists.Console = await view.locator(".fingerprint-list li").allTextContents();
  const [download] = await Promise.all([desk.waitForEvent("download", WAIT),
    view.locator("li[data-e2ee=opened] .attachments a[data-attachment-id]").first().click()]);
  const chunks = [];
  for await (const c of await download.createReadStream()) chunks.push(c);
  result.consoleGot = { name: download.suggestedFilename(), bytes: Buffer.concat(chunks).toString("base64url") };
  await desk.setInputFiles("#msg-files", { name: "diuretic plan.pdf", mimeType: "application/pdf",
    buffer: Buffer.from(REPLY_FILE, "base64url") });
  await desk.fill("#msg-body", REPLY_TEXT);
  await desk.press("#msg-body", "Enter");
  await view.locator("li[data-e2ee=opened] .msg-body", { hasText: REPLY_TEXT }).waitFor(WAIT);

  // The reply reaches the app, opened there.
  await phone.locator("li[data-e2ee=opened]", { hasText: REPLY_TEXT }).waitFor(WAIT);
  result.appTexts = await phone.locator("li[data-e2ee=opened] .body").allTextContents();
  result.lists.App = await phone.locator("#e2ee-fingerprints li").allTextContents();
  // Each page sealed with its key-wrapping workers, which its policy allows.
  const wrapWorkers = (p) => p.workers().filter((w) => w.url().endsWith("/wrapworker.js")).length;
  result.wrapWorkers = { App: wrapWorkers(phone), Console: wrapWorkers(desk) };
  // The clinician's PDF, decrypted on the phone and offered to save.
  await phone.locator("li[data-e2ee=opened] button", { hasText: "diuretic plan.pdf" }).click();
  const save = phone.locator("li[data-e2ee=opened] .attachment[data-decrypted=true] a[download]");
  await save.waitFor(WAIT);
  const [saved] = await Promise.all([phone.waitForEvent("download", WAIT), save.click()]);
  const parts = [];
  for await (const c of await saved.createReadStream()) parts.push(c);
  result.appGot = { name: saved.suggestedFilename(), bytes: Buffer.concat(parts).toString("base64url") };

  // The phone loses its keys (its key database is deleted): the app revokes
  // the device it registered, registers new keys and says so, and the
  // earlier messages say they were not encrypted for it.
  await phone.evaluate(() => new Promise((resolve, reject) => {
    const r = indexedDB.deleteDatabase("tend-e2ee");
    r.onsuccess = resolve;
    r.onerror = () => reject(r.error);
  }));
  await phone.reload();
  await phone.locator('#main[data-view="messages"][data-ready="true"]').waitFor(WAIT);
  await phone.locator("#e2ee-notice", { hasText: "lost its encryption keys" }).waitFor(WAIT);
  await phone.locator("li[data-e2ee=refused]").nth(1).waitFor(WAIT);
  result.appLost = { notice: await phone.locator("#e2ee-notice").textContent(),
    refused: await phone.locator("li[data-e2ee=refused] .error").allTextContents() };
  result.checks = report;
  console.log(`RESULT ${JSON.stringify(result)}`);
} finally {
  await browser.close();
}
