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

const { BASE_URL, TOKEN_CLINICIAN, TOKEN_PATIENT, PATIENT_TEXT, REPLY_TEXT, CHROMIUM = "/usr/bin/chromium" } = process.env;
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
  result.checks = report;
  console.log(`RESULT ${JSON.stringify(result)}`);
} finally {
  await browser.close();
}
