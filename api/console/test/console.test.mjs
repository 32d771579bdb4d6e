// Drives the triage console in Debian's Chromium (playwright-core, no
// downloaded browser). Run by api/console_test.go, which owns the server and
// the data; the two talk over stdin/stdout:
//   script → "READY"            both consoles are open and showing the queue
//   Go     → "POSTED <a> <b>"    critical readings were posted for team A
//                                (alert a), then for team B (alert b)
//   script → "THREAD <id>"       A's alert pane shows the patient's thread <id>
//   Go     → "POSTING"           the patient is about to post (after typing)
//   Go     → "MESSAGED <m> <n>"  the patient posted message m with an n-byte PNG
//   script → "RESULT <json>"     what the consoles showed
// With TOKEN_ADMIN (and DISABLE_USER, TEAM_A) it also drives the
// administration pages as an admin.
// Environment: BASE_URL, TOKEN_A, TOKEN_B (clinicians of teams A and B),
// CHROMIUM (the browser), SCREENSHOT (where to write the screenshot),
// EXPECT_MODE ("stream" or "polling": how the consoles must get updates).
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const { BASE_URL, TOKEN_A, TOKEN_B, CHROMIUM = "/usr/bin/chromium", SCREENSHOT, EXPECT_MODE = "polling",
  TOKEN_ADMIN, DISABLE_USER, TEAM_A, PATIENT_TEXT, REPLY_TEXT, BROADCAST_TEXT, TOKEN_LEAD, LEAD_BROADCAST_TEXT } = process.env;
const APPEAR_MS = 2000;

function fail(msg) {
  console.error(`console test: ${msg}`);
  process.exit(1);
}

function check(cond, msg) {
  if (!cond) fail(msg);
}

// The committed uPlot files must be the pinned release's (no source map
// reference): the console has no build step, so this is its currency check.
async function checkVendored() {
  for (const f of ["uPlot.iife.min.js", "uPlot.min.css"]) {
    const strip = (s) => s.replace(/\n?\/[/*][#@] sourceMappingURL=.*$/m, "");
    const pinned = strip(await readFile(new URL(`./node_modules/uplot/dist/${f}`, import.meta.url), "utf8"));
    const committed = await readFile(new URL(`../vendor/${f}`, import.meta.url), "utf8");
    check(committed === pinned, `api/console/vendor/${f} differs from npm uplot's dist/${f}: copy it again`);
    check(!committed.includes("sourceMappingURL"), `api/console/vendor/${f} refers to a source map`);
  }
}

const lines = createInterface({ input: process.stdin });
const nextLine = (() => {
  const queue = [];
  const waiting = [];
  lines.on("line", (l) => (waiting.length ? waiting.shift()(l) : queue.push(l)));
  lines.on("close", () => waiting.forEach((w) => w(null)));
  return () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => waiting.push(r)));
})();

async function openConsole(browser, token) {
  const context = await browser.newContext({ viewport: { width: 1360, height: 1180 }, locale: "en-GB", timezoneId: "UTC" });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  // 401, 403 and 404 answers are expected (a refused token, the admin probe,
  // a missing endpoint); the page shows them itself.
  page.on("console", (m) => { if (m.type() === "error" && !/status of (401|403|404)/.test(m.text())) problems.push(`console: ${m.text()}`); });
  await page.goto(`${BASE_URL}/#token=${encodeURIComponent(token)}`);
  await page.locator("#queue[data-refreshes]").waitFor({ state: "attached", timeout: 15000 });
  check(page.url() === `${BASE_URL}/`, `the token stayed in the address bar: ${page.url().replace(token, "<token>")}`);
  check(!(await page.evaluate(() => location.hash)), "the fragment was not removed");
  check(await page.evaluate((t) => sessionStorage.getItem("tend.token") === t, token), "the token is not kept in sessionStorage");
  check((await page.title()) === "Tend triage console", `unexpected page title ${await page.title()}`);
  await page.locator(`#live[data-mode="${EXPECT_MODE}"]`).waitFor({ state: "attached", timeout: 15000 }).catch(async () =>
    fail(`the console is not in ${EXPECT_MODE} mode: ${await page.locator("#live").textContent()}`));
  await page.evaluate(() => { window.__sameDocument = true; }); // survives only without a reload
  return { context, page, problems };
}

const count = (page, u) => page.locator(`#counts [data-urgency="${u}"] .count-n`).textContent().then(Number);

// openSection moves to an administration page with the keyboard.
async function openSection(page, name) {
  await page.locator(`#nav-${name}`).focus();
  await page.keyboard.press("Enter");
  await page.locator(`#section-${name}`).waitFor({ state: "visible", timeout: 5000 });
  check(await page.evaluate((n) => document.activeElement?.id === `${n}-heading`, name), `focus did not move to the ${name} heading`);
}

// adminPages signs in as an admin and uses every administration page; what
// it did is checked through the API by the Go side.
async function adminPages(browser, result) {
  const c = await openConsole(browser, TOKEN_ADMIN);
  const { page } = c;
  const out = {};
  await page.locator("#nav-users").waitFor({ state: "visible", timeout: 5000 });

  // Users: disable one; issue a token with an expiry, then revoke it.
  await openSection(page, "users");
  const row = page.locator(`#users-table tr[data-user-id="${DISABLE_USER}"]`);
  await row.waitFor({ timeout: 5000 });
  await row.getByRole("button", { name: "Tokens of Dr Cal Temp" }).click();
  await page.locator("#token-expiry").selectOption("7d");
  await page.getByRole("button", { name: "Issue token" }).click();
  await page.locator("#new-token:not([hidden])").waitFor({ timeout: 5000 }).catch(async () =>
    fail(`issue a token: ${await page.locator("#users-error").textContent()}`));
  out.token_issued = (await page.locator("#new-token-value").inputValue()).startsWith("tend_");
  // The user's first token (from the test's setup) and the new one: revoke the new one.
  const tokenRow = page.locator('#tokens-table tr[data-revoked="false"]', { hasText: "Valid" }).filter({ hasNotText: "Never" }).first();
  await tokenRow.getByRole("button", { name: /^Revoke token / }).click();
  await page.locator('#tokens-table tbody tr[data-revoked="true"]').waitFor({ timeout: 5000 });
  out.token_revoked = (await page.locator('#tokens-table tr[data-revoked="true"]').count()) === 1;
  await row.getByRole("button", { name: "Disable Dr Cal Temp" }).focus();
  await page.keyboard.press("Enter");
  await page.locator(`#users-table tr[data-user-id="${DISABLE_USER}"][data-disabled="true"]`).waitFor({ timeout: 5000 }).catch(async () =>
    fail(`disable: ${await page.locator("#users-error").textContent()}`));
  out.disabled = true;

  // Care teams: edit team A's escalation policy.
  await openSection(page, "teams");
  await page.locator(`#teams-table tr[data-team-id="${TEAM_A}"]`).waitFor({ timeout: 5000 }).catch(async () =>
    fail(`care teams: ${await page.locator("#teams-error").textContent()}`));
  await page.locator(`#teams-table tr[data-team-id="${TEAM_A}"]`).getByRole("button", { name: /^Edit / }).click();
  await page.locator("#team-form:not([hidden])").waitFor({ timeout: 5000 });
  await page.getByLabel("Acknowledge critical within").fill("7m");
  await page.getByLabel(/^Levels, in order/).fill("on_call, all");
  await page.getByRole("button", { name: "Save team" }).click();
  await page.locator("#teams-result:not(:empty)").waitFor({ timeout: 5000 }).catch(async () =>
    fail(`save team: ${await page.locator("#teams-error").textContent()}`));
  out.team_saved = TEAM_A;

  // Broadcast to team A's patients, and follow it until it completes.
  await page.locator("#broadcast-form:not([hidden])").waitFor({ timeout: 5000 });
  await page.getByLabel("Message to every patient of the team").fill(BROADCAST_TEXT);
  await page.getByRole("button", { name: "Send broadcast" }).click();
  await page.locator('#broadcast-form[data-status="completed"]').waitFor({ timeout: 30000 }).catch(async () =>
    fail(`broadcast: ${await page.locator("#broadcast-progress").textContent()} ${await page.locator("#broadcast-error").textContent()}`));
  out.broadcast = { id: await page.locator("#broadcast-form").getAttribute("data-broadcast-id"),
    progress: await page.locator("#broadcast-progress").textContent() };

  // Rules: disable one, change a parameter, backtest, evaluation errors.
  await openSection(page, "rules");
  await page.locator('#rules-table tr[data-rule-id="no-weight-36h"]').waitFor({ timeout: 5000 }).catch(async () =>
    fail(`rules: ${await page.locator("#rules-error").textContent()}`));
  await page.getByRole("button", { name: "Disable no-weight-36h" }).click();
  await page.locator('#rules-table tr[data-rule-id="no-weight-36h"][data-enabled="false"]').waitFor({ timeout: 5000 }).catch(async () =>
    fail(`disable rule: ${await page.locator("#rules-error").textContent()}`));
  out.rule_disabled = "no-weight-36h";
  await page.getByRole("button", { name: "Edit the parameters of bp-crisis" }).click();
  await page.locator("#param-systolic_max").fill("185");
  await page.getByRole("button", { name: "Save parameters" }).click();
  await page.locator("#rules-result", { hasText: "Saved bp-crisis as v" }).waitFor({ timeout: 5000 }).catch(async () =>
    fail(`save parameters: ${await page.locator("#rules-error").textContent()}`));
  out.params_saved = "bp-crisis";
  await page.locator("#backtest-rule").selectOption("spo2-critical");
  const since = await page.locator("#backtest-since").inputValue();
  await page.getByRole("button", { name: "Run backtest" }).click();
  await page.locator('#backtest-facts[data-rule="spo2-critical"]').waitFor({ timeout: 30000 }).catch(async () =>
    fail(`backtest: ${await page.locator("#rules-error").textContent()}`));
  out.backtest_rule = "spo2-critical";
  out.backtest_since = `${since}T00:00:00.000Z`;
  out.backtest_alerts = Number(await page.locator("#backtest-facts").getAttribute("data-alerts"));
  check(/Alerts it would have raised/.test(await page.locator("#backtest-result").innerText()), "the backtest result is not shown");
  check((await page.locator("#rule-errors tbody tr").count()) > 0, "the evaluation errors table is empty (not even its note)");

  // Audit: read-only, in order.
  await openSection(page, "audit");
  await page.locator("#audit-table tbody tr").first().waitFor({ timeout: 5000 }).catch(async () =>
    fail(`audit: ${await page.locator("#audit-error").textContent()}`));
  out.audit_ids = await page.locator("#audit-table tbody tr").evaluateAll((rs) => rs.map((r) => r.dataset.auditId));
  check((await page.locator("#section-audit button, #section-audit input").count()) <= 3, "the audit view has editing controls");

  // Jobs: the dashboard opens in a new tab, signed in by its cookie.
  await openSection(page, "jobs");
  const [popup] = await Promise.all([page.context().waitForEvent("page"), page.getByRole("button", { name: "Open the job dashboard" }).click()]);
  await popup.waitForLoadState("domcontentloaded");
  check(popup.url() === `${BASE_URL}/riverui/`, `the dashboard opened at ${popup.url()}`);
  out.jobs_title = await popup.title();
  out.jobs_states = await popup.evaluate(() => fetch("/riverui/api/states").then((r) => r.status));
  await popup.close();

  check(page.url() === `${BASE_URL}/`, `the address changed: ${page.url()}`);
  check((await page.title()) === "Tend triage console", "the title changed");
  result.admin = out;
  return c;
}

// leadBroadcast signs in as a lead of team A (no admin) and broadcasts to
// the team's patients from the care-team page.
async function leadBroadcast(browser, result) {
  const c = await openConsole(browser, TOKEN_LEAD);
  const { page } = c;
  await page.locator("#nav-teams").waitFor({ state: "visible", timeout: 5000 }).catch(() =>
    fail("a lead has no care-team page"));
  check(await page.locator("#nav-users").isHidden(), "a lead sees the users page");
  await openSection(page, "teams");
  const row = page.locator(`#teams-table tr[data-team-id="${TEAM_A}"]`);
  await row.waitFor({ timeout: 5000 }).catch(async () =>
    fail(`lead's care teams: ${await page.locator("#teams-error").textContent()}`));
  check((await row.getByRole("button", { name: /^Edit / }).count()) === 0, "a lead is offered the team editor");
  await row.getByRole("button", { name: /^Broadcast to the patients of / }).click();
  check(await page.evaluate(() => document.activeElement?.id === "broadcast-body"), "focus did not move to the broadcast's text");
  await page.keyboard.type(LEAD_BROADCAST_TEXT);
  await page.getByRole("button", { name: "Send broadcast" }).click();
  await page.locator('#broadcast-form[data-status="completed"]').waitFor({ timeout: 30000 }).catch(async () =>
    fail(`lead's broadcast: ${await page.locator("#broadcast-progress").textContent()} ${await page.locator("#broadcast-error").textContent()}`));
  result.lead_broadcast = { id: await page.locator("#broadcast-form").getAttribute("data-broadcast-id"),
    progress: await page.locator("#broadcast-progress").textContent() };
  return c;
}

async function main() {
  check(BASE_URL && TOKEN_A && TOKEN_B, "BASE_URL, TOKEN_A and TOKEN_B must be set");
  await checkVendored();
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  const result = {};
  try {
    const a = await openConsole(browser, TOKEN_A);
    const b = await openConsole(browser, TOKEN_B);
    const criticalBefore = await count(a.page, "critical");
    result.live_mode = EXPECT_MODE;
    console.log("READY");

    const posted = await nextLine();
    check(posted?.startsWith("POSTED "), `expected POSTED, got ${posted}`);
    const [id, laterB] = posted.slice("POSTED ".length).trim().split(" ");
    const started = Date.now();
    const row = a.page.locator(`#queue li[data-alert-id="${id}"]`);
    await row.waitFor({ state: "visible", timeout: APPEAR_MS }).catch(() =>
      fail(`the new alert did not appear in team A's console within ${APPEAR_MS} ms`));
    result.appeared_ms = Date.now() - started;
    check(await a.page.evaluate(() => window.__sameDocument === true), "the page reloaded");
    check((await row.getAttribute("data-urgency")) === "critical", "the row is not marked critical");
    check(/critical/i.test(await row.locator(".badge").textContent()), "the urgency is not written out on the row");
    check((await count(a.page, "critical")) === criticalBefore + 1, "the critical count did not go up by one");

    // Keyboard only: focus the row, open it with Enter.
    await row.locator("button").focus();
    await a.page.keyboard.press("Enter");
    await a.page.locator("#detail-facts[data-status]").waitFor({ timeout: 10000 });
    await a.page.locator("#plot canvas").first().waitFor({ timeout: 10000 });
    result.plot_caption = await a.page.locator("#plot-caption").textContent();
    check(/Threshold/.test(result.plot_caption), `the plot shows no threshold: ${result.plot_caption}`);
    result.legend = await a.page.locator("#plot .u-legend").innerText();

    // The patient's reminders: schedules with adherence, recent doses.
    await a.page.locator('#reminders[data-loaded="true"]').waitFor({ timeout: 10000 }).catch(async () =>
      fail(`reminders not shown: ${await a.page.locator("#reminders-error").textContent()}`));
    result.reminders = {
      schedules: await a.page.locator("#schedules tbody tr").evaluateAll((rs) => rs.map((r) => r.innerText.replace(/\s+/g, " "))),
      doses: await a.page.locator("#doses li[data-status]").evaluateAll((ls) => ls.map((l) => l.dataset.status)),
    };

    // Acknowledge from the console.
    await a.page.locator("#ack-note").fill("Calling the patient now");
    await a.page.locator("#ack-note").press("Enter");
    await a.page.locator('#detail-facts[data-status="acknowledged"]').waitFor({ timeout: 10000 }).catch(async () =>
      fail(`not acknowledged in the console: ${await a.page.locator("#action-error").textContent()}`));
    result.ack_message = await a.page.locator("#action-result").textContent();
    await a.page.locator(`#queue li[data-alert-id="${id}"][data-status="acknowledged"]`).waitFor({ timeout: 5000 });

    // Resolve with a disposition: done, or the API's own error text shown.
    await a.page.locator("#disposition").selectOption("called_patient");
    await a.page.locator("#resolve-form button[type=submit]").click();
    const outcome = a.page.locator("#action-error:not(:empty), #detail-facts[data-status=resolved]");
    await outcome.first().waitFor({ timeout: 10000 });
    result.resolve_error = await a.page.locator("#action-error").textContent();
    result.resolved = (await a.page.locator("#detail-facts").getAttribute("data-status")) === "resolved";
    check(result.resolved !== !!result.resolve_error, "resolve both succeeded and failed");

    // The patient's thread in the alert pane: the symptom report as a list;
    // the patient's message appears without a reload; the reply is sent
    // with the keyboard.
    const thread = a.page.locator("#thread");
    await a.page.locator('#thread[data-loaded="true"]').waitFor({ timeout: 10000 }).catch(async () =>
      fail(`the thread view did not load: ${await a.page.locator("#thread .error").textContent()}`));
    result.thread = { id: await thread.getAttribute("data-thread-id") };
    result.thread.symptoms = await a.page.locator('#thread-messages li[data-kind="symptom_report"] .symptoms li').allTextContents();
    console.log(`THREAD ${result.thread.id}`);
    check((await nextLine()) === "POSTING", "expected POSTING");
    const postingAt = Date.now();
    if (EXPECT_MODE === "stream") {
      await a.page.locator("#thread-typing:not(:empty)").waitFor({ timeout: APPEAR_MS }).catch(() =>
        fail("the patient's typing was not shown"));
      result.thread.typing = await a.page.locator("#thread-typing").textContent();
    }
    const messaged = await nextLine();
    check(messaged?.startsWith("MESSAGED "), `expected MESSAGED, got ${messaged}`);
    const [messageID] = messaged.slice("MESSAGED ".length).split(" ");
    const msg = a.page.locator(`#thread-messages li[data-message-id="${messageID}"]`);
    await msg.waitFor({ state: "visible", timeout: Math.max(1, APPEAR_MS - (Date.now() - postingAt)) }).catch(() =>
      fail(`the patient's message did not appear in the thread view within ${APPEAR_MS} ms`));
    result.thread.appeared_ms = Date.now() - postingAt;
    check(await a.page.evaluate(() => window.__sameDocument === true), "the page reloaded");
    result.thread.role = await msg.locator(".msg-role").textContent();
    result.thread.body = await msg.locator(".msg-body").textContent();
    check((await msg.locator(".msg-body *").count()) === 0, "message text was inserted as HTML");
    result.thread.attachment = await msg.locator("a[data-attachment-id]").textContent();
    // The attachment link downloads the file with the token (keyboard: Enter on the link).
    await msg.locator("a[data-attachment-id]").focus();
    const [download] = await Promise.all([a.page.waitForEvent("download", { timeout: 5000 }), a.page.keyboard.press("Enter")])
      .catch(async () => fail(`the attachment did not download: ${await a.page.locator("#thread .error").textContent()}`));
    result.thread.download = download.suggestedFilename();
    // Shown means read: the read mark reaches the patient's message.
    const seq = await msg.getAttribute("data-seq");
    await a.page.locator(`#thread[data-read-up-to="${seq}"]`).waitFor({ state: "attached", timeout: 5000 })
      .catch(() => fail("the patient's message was not marked read"));
    await thread.getByLabel(/^Reply to the thread/).focus();
    await a.page.keyboard.type(REPLY_TEXT);
    await a.page.keyboard.press("Enter");
    await a.page.locator("#thread .result", { hasText: "Sent." }).waitFor({ timeout: 5000 }).catch(async () =>
      fail(`reply: ${await a.page.locator("#thread .error").textContent()}`));
    result.thread.sent = await a.page.locator("#thread .result").textContent();
    check((await a.page.locator("#thread-messages li.msg-staff .msg-body", { hasText: REPLY_TEXT }).count()) === 1,
      "the reply is not shown in the thread");
    check((await a.page.title()) === "Tend triage console" && a.page.url() === `${BASE_URL}/`, "the title or address changed");

    if (SCREENSHOT) {
      // The screenshot shows the acknowledged alert, not the error of an
      // endpoint the server may not have yet.
      await a.page.locator("#action-error").evaluate((e) => { e.textContent = ""; });
      await a.page.locator("#queue-heading").focus();
      // Tall enough for the alert pane to show the thread under the plot.
      await a.page.setViewportSize({ width: 1360, height: 1900 });
      await a.page.screenshot({ path: SCREENSHOT, fullPage: true });
      await a.page.setViewportSize({ width: 1360, height: 1180 });
    }

    // A's Messages section lists the thread, read, and opens it with the keyboard.
    await a.page.locator("#nav-messages").focus();
    await a.page.keyboard.press("Enter");
    const listed = a.page.locator(`#threads-table tr[data-thread-id="${result.thread.id}"]`);
    await listed.waitFor({ timeout: 5000 }).catch(async () =>
      fail(`A's Messages section does not list the thread: ${await a.page.locator("#messages-error").textContent()}`));
    result.thread.listed_unread = await listed.getAttribute("data-unread");
    await listed.getByRole("button", { name: /^Open / }).focus();
    await a.page.keyboard.press("Enter");
    await a.page.locator(`#messages-thread[data-thread-id="${result.thread.id}"][data-loaded="true"]`).waitFor({ timeout: 5000 });
    check(await a.page.evaluate(() => document.activeElement?.id === "msg-heading"), "focus did not move to the thread's heading");
    check((await a.page.locator(`#msg-messages li[data-message-id="${messageID}"] .msg-body`).textContent()) === PATIENT_TEXT,
      "the Messages section's thread does not show the patient's message");
    await a.page.locator("#nav-queue").click();

    // Team B's console shows team B's alert posted after team A's, so it
    // refreshed while A's existed, and it never showed A's.
    await b.page.locator(`#queue li[data-alert-id="${laterB}"]`).waitFor({ timeout: 10000 }).catch(() =>
      fail("team B's console did not show team B's new alert"));
    result.b_rows = await b.page.locator("#queue li").evaluateAll((ls) => ls.map((l) => l.dataset.alertId));
    check(!result.b_rows.includes(id), "team B's console shows team A's alert");
    check(!(await b.page.content()).includes(id), "team B's page mentions team A's alert");

    // Sign out, a refused token, then signing in through the form.
    await b.page.locator("#sign-out").click();
    await b.page.locator("#signin-form").waitFor();
    check(await b.page.evaluate(() => sessionStorage.getItem("tend.token") === null), "sign-out kept the token");
    check(await b.page.locator("#workspace").isHidden(), "sign-out left the queue on screen");
    await b.page.locator("#token").fill("tend_not-a-real-token");
    await b.page.locator("#token").press("Enter");
    await b.page.locator("#signin-error:not(:empty)").waitFor({ timeout: 5000 });
    await b.page.locator("#token").fill(TOKEN_B);
    await b.page.getByRole("button", { name: "Sign in" }).click();
    await b.page.locator(`#queue li[data-alert-id="${laterB}"]`).waitFor({ timeout: 5000 });
    check(b.page.url() === `${BASE_URL}/`, "signing in changed the address");

    // B's Messages section lists B's own patient's thread, never A's.
    await b.page.locator("#nav-messages").focus();
    await b.page.keyboard.press("Enter");
    await b.page.locator("#section-messages").waitFor({ state: "visible", timeout: 5000 });
    await b.page.locator('#threads-table[data-loaded="true"]').waitFor({ timeout: 5000 }).catch(async () =>
      fail(`B's messages: ${await b.page.locator("#messages-error").textContent()}`));
    result.thread.b_threads = await b.page.locator("#threads-table tbody tr").evaluateAll((rs) => rs.map((r) => r.dataset.threadId));
    result.thread.b_threads_loaded = true;
    check(!(await b.page.content()).includes(result.thread.id), "team B's page mentions team A's patient thread");
    check(!(await b.page.content()).includes(REPLY_TEXT.slice(0, 20)), "team B's page shows the reply");
    check(!(await b.page.content()).includes(PATIENT_TEXT.slice(0, 20)), "team B's page shows the patient's message");

    const pages = [a, b];
    if (TOKEN_ADMIN) pages.push(await adminPages(browser, result));
    if (TOKEN_LEAD) pages.push(await leadBroadcast(browser, result));
    for (const c of pages) {
      check(await c.page.evaluate(() => window.__sameDocument === true), "a page reloaded");
      check(c.problems.length === 0, c.problems.join("; "));
    }
  } finally {
    await browser.close();
  }
  console.log(`RESULT ${JSON.stringify(result)}`);
  lines.close();
}

main().catch((e) => fail(e.stack || String(e)));
