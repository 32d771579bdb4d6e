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
// administration pages as an admin (operators.mjs). Every page and state is
// checked with axe-core and for layout at 390×844, 768×1024 and 1360×1180
// (checks.mjs).
// Environment: BASE_URL, TOKEN_A, TOKEN_B (clinicians of teams A and B),
// CHROMIUM (the browser), SCREENSHOT (where to write the screenshot),
// EXPECT_MODE ("stream" or "polling": how the consoles must get updates).
import { readFile } from "node:fs/promises";
import { lines, nextLine } from "./lines.mjs";
import { chromium } from "playwright-core";
import { axe, DESKTOP, everywhere, layout, PHONE, report } from "./checks.mjs";
import { adminPages, leadBroadcast, openSection } from "./operators.mjs";

const { BASE_URL, TOKEN_A, TOKEN_B, CHROMIUM = "/usr/bin/chromium", SCREENSHOT, EXPECT_MODE = "polling",
  TOKEN_ADMIN, PATIENT_TEXT, REPLY_TEXT, TOKEN_LEAD, TEAM_A, GONE_USER, BRAND_NAME } = process.env;
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

// openConsole opens the console from a #token= link in a new browser
// context, and records every API answer of 400 or more (none is expected
// on a normal load, except the refused stream in the polling run).
async function openConsole(browser, token, { viewport = DESKTOP } = {}) {
  const context = await browser.newContext({ viewport, locale: "en-GB", timezoneId: "UTC" });
  const page = await context.newPage();
  const problems = [];
  const refused = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("response", (r) => {
    const path = new URL(r.url()).pathname;
    if (r.status() >= 400 && !(EXPECT_MODE === "polling" && path === "/v1/stream")) refused.push(`${r.request().method()} ${path} ${r.status()}`);
  });
  // 401, 403 and 404 answers can be part of a test step (a refused token, a
  // missing endpoint); the page shows them itself.
  page.on("console", (m) => { if (m.type() === "error" && !/status of (401|403|404)/.test(m.text())) problems.push(`console: ${m.text()}`); });
  await page.goto(`${BASE_URL}/#token=${encodeURIComponent(token)}`);
  await page.locator("#queue[data-refreshes], #section-messages:not([hidden]), #section-patients:not([hidden])").first()
    .waitFor({ state: "attached", timeout: 15000 });
  check(page.url() === `${BASE_URL}/`, `the token stayed in the address bar: ${page.url().replace(token, "<token>")}`);
  check(!(await page.evaluate(() => location.hash)), "the fragment was not removed");
  check(await page.evaluate((t) => sessionStorage.getItem("tend.token") === t, token), "the token is not kept in sessionStorage");
  check((await page.title()) === "Tend triage console", `unexpected page title ${await page.title()}`);
  if (await page.locator("#queue[data-refreshes]").count()) {
    await page.locator(`#live[data-mode="${EXPECT_MODE}"]`).waitFor({ state: "attached", timeout: 15000 }).catch(async () =>
      fail(`the console is not in ${EXPECT_MODE} mode: ${await page.locator("#live").textContent()}`));
  }
  await page.waitForLoadState("networkidle").catch(() => {});
  check(refused.length === 0, `a normal load got error answers: ${refused.join(", ")}`);
  if (BRAND_NAME) {
    // The organisation's branding: its name and logo in the header, its
    // colour as the band along the top.
    await page.locator("#org-logo:not([hidden])").waitFor({ state: "visible", timeout: 5000 }).catch(() => fail("the organisation's logo is not shown"));
    check((await page.locator("#org-name").textContent()) === BRAND_NAME, `the header names ${await page.locator("#org-name").textContent()}`);
    check(await page.locator("#org-logo").evaluate((i) => i.complete && i.naturalWidth === 16 && i.alt === "Northside Heart logo"),
      "the logo did not load, or has no text alternative");
    check(await page.evaluate(() => document.documentElement.classList.contains("branded") &&
      getComputedStyle(document.querySelector("header.top")).borderTopColor === "rgb(11, 83, 148)"), "the organisation's colour is not shown");
  }
  await page.evaluate(() => { window.__sameDocument = true; }); // survives only without a reload
  return { context, page, problems };
}

const count = (page, u) => page.locator(`#counts [data-urgency="${u}"] .count-n`).textContent().then(Number);

// signInAndLoading checks the sign-in page, and the loading state while the
// API is slow (every /v1/alerts answer held back 1.5 s).
async function signInAndLoading(browser, result) {
  const context = await browser.newContext({ viewport: PHONE, locale: "en-GB", timezoneId: "UTC" });
  const page = await context.newPage();
  await page.goto(`${BASE_URL}/`);
  await page.locator("#signin-form").waitFor();
  await everywhere(page, "sign-in page");
  await page.route("**/v1/alerts?*", async (route) => {
    await new Promise((r) => setTimeout(r, 1500));
    await route.continue();
  });
  await page.locator("#token").fill(TOKEN_A);
  await page.locator("#token").press("Enter");
  await page.locator("#queue-loading:not([hidden])").waitFor({ timeout: 3000 }).catch(() => fail("no loading state while the queue loads"));
  result.loading_text = await page.locator("#queue-loading").textContent();
  check((await page.locator("#queue li").count()) === 0, "rows shown before the queue loaded");
  await axe(page, "queue loading");
  await layout(page, "queue loading at 390×844", { targets: true });
  await page.locator("#queue[data-refreshes]").waitFor({ state: "attached", timeout: 10000 });
  check(await page.locator("#queue-loading").isHidden(), "the loading state stayed after the queue loaded");
  await context.close();
}

// filters narrows the queue by patient name, urgency and team, then clears them.
async function filters(page, id, laterPatient) {
  const row = page.locator(`#queue li[data-alert-id="${id}"]`);
  await page.locator("#filter-patient").fill(laterPatient);
  await row.waitFor({ state: "detached", timeout: 2000 }).catch(() => fail("the patient-name filter kept another patient's row"));
  await page.locator("#filter-patient").fill("sam");
  await row.waitFor({ timeout: 2000 }).catch(() => fail("the patient-name filter hid the patient's row"));
  await page.locator("#filter-urgency").selectOption("low");
  await row.waitFor({ state: "detached", timeout: 5000 }).catch(() => fail("the urgency filter kept a critical row"));
  await page.locator("#queue-empty", { hasText: "No alerts match these filters." }).waitFor({ timeout: 5000 });
  await axe(page, "queue filtered to nothing");
  await page.locator("#filter-urgency").selectOption("");
  await page.locator("#filter-team").selectOption({ index: 1 });
  await page.locator("#filter-status").selectOption("open");
  await row.waitFor({ timeout: 5000 }).catch(() => fail("the team and state filters hid the team's open alert"));
  await page.locator("#filter-team").selectOption("");
  await page.locator("#filter-status").selectOption("");
  await page.locator("#filter-patient").fill("");
  await row.waitFor({ timeout: 5000 });
}

// units: glucose in the locale's unit (mmol/L for en-GB) at 0.1, and in
// mg/dL (whole numbers) once the user prefers it.
async function units(page, result) {
  const glucose = page.locator("#queue .value", { hasText: "Glucose" }).first();
  await glucose.waitFor({ timeout: 5000 }).catch(() => fail("no glucose alert in the queue"));
  result.glucose = [await glucose.textContent()];
  await page.locator("#prefs summary").click();
  await page.locator("#pref-glucose").selectOption("mg/dL");
  result.glucose.push(await glucose.textContent());
  await everywhere(page, "queue with the units open");
  await page.locator("#pref-glucose").selectOption("mmol/L");
  await page.locator("#prefs summary").click();
  check(result.glucose[0] === "Glucose 3.4 mmol/L" && result.glucose[1] === "Glucose 62 mg/dL", `glucose units: ${result.glucose}`);
}

// alertPane checks the open alert: the value that fired, the plot and its
// ranges, the tabs (each checked), and the assignee chosen by name.
async function alertPane(page, id, result) {
  const fired = page.locator("#detail-summary .fired");
  await fired.waitFor({ timeout: 10000 });
  result.fired_text = await fired.textContent();
  await page.locator("#plot canvas").first().waitFor({ timeout: 10000 });
  result.plot_caption = await page.locator("#plot-caption").textContent();
  check(/Threshold/.test(result.plot_caption), `the plot shows no threshold: ${result.plot_caption}`);
  check(/Fired on SpO₂ 72 %/.test(result.plot_caption), `the caption does not state the value that fired: ${result.plot_caption}`);
  result.legend = await page.locator("#plot .u-legend").innerText();
  check(/Threshold: below/.test(result.legend) && !result.legend.includes("--"), `the legend needs hovering: ${result.legend}`);
  check((await page.locator("#plot-caption").getAttribute("data-range")) === "24h", "the range chosen from the data is not 24 hours");
  await page.getByRole("button", { name: "7 days" }).focus();
  await page.keyboard.press("Enter");
  await page.locator('#plot-caption[data-range="7d"]').waitFor({ timeout: 2000 });
  await page.getByRole("button", { name: "24 hours" }).click();
  await everywhere(page, "alert: trend", { settle: () => page.waitForTimeout(100) });

  // Tabs with the keyboard: Trend → Reminders → Details (the conversation is beside them).
  await page.locator("#tab-trend").focus();
  await page.keyboard.press("ArrowRight");
  check(await page.evaluate(() => document.activeElement?.id === "tab-reminders"), "ArrowRight did not move to the Reminders tab");
  await page.locator('#reminders[data-loaded="true"]').waitFor({ timeout: 10000 }).catch(async () =>
    fail(`reminders not shown: ${await page.locator("#reminders-error").textContent()}`));
  result.reminders = {
    schedules: await page.locator("#schedules tbody tr").evaluateAll((rs) => rs.map((r) => r.innerText.replace(/\s+/g, " "))),
    doses: await page.locator("#doses li[data-status]").evaluateAll((ls) => ls.map((l) => l.dataset.status)),
  };
  await everywhere(page, "alert: reminders");
  await page.keyboard.press("ArrowRight");
  await page.locator("#panel-details:not([hidden])").waitFor({ timeout: 2000 });
  await everywhere(page, "alert: details");

  // Assign to a person chosen by name.
  await page.getByLabel("Care-team member").selectOption({ label: "Dr Ada Osei (you)" });
  await page.locator("#assign-form button[type=submit]").focus();
  await page.keyboard.press("Enter");
  await page.locator(`#queue li[data-alert-id="${id}"] .assignee`, { hasText: "Assigned to you" }).waitFor({ timeout: 5000 }).catch(async () =>
    fail(`assign: ${await page.locator("#action-error").textContent()}`));
  result.assigned = await page.locator("#detail-facts").innerText();
  await page.locator("#tab-trend").click();
}

// triage: the keyboard-only walk (open, acknowledge, resolve) and the checks
// of the alert pane on the way.
async function triage(a, id, result) {
  const row = a.page.locator(`#queue li[data-alert-id="${id}"]`);
  result.row_text = (await row.innerText()).replace(/\s+/g, " ");
  check(result.row_text.includes("Sam Lee") && result.row_text.includes("SpO₂ 72 %"), `the row does not name the patient and value: ${result.row_text}`);
  check(/Unassigned/.test(result.row_text), `the row does not say it is unassigned: ${result.row_text}`);
  await everywhere(a.page, "queue");
  await row.locator("button").focus();
  await a.page.keyboard.press("Enter");
  await a.page.locator("#detail-facts[data-status]").waitFor({ state: "attached", timeout: 10000 });
  check(await a.page.evaluate(() => document.activeElement?.id === "detail-heading"), "focus did not move to the alert's heading");
  await alertPane(a.page, id, result);

  // Acknowledge: Enter in the note submits.
  await a.page.locator("#ack-note").focus();
  await a.page.keyboard.type("Calling the patient now");
  await a.page.keyboard.press("Enter");
  await a.page.locator('#detail-facts[data-status="acknowledged"]').waitFor({ state: "attached", timeout: 10000 }).catch(async () =>
    fail(`not acknowledged in the console: ${await a.page.locator("#action-error").textContent()}`));
  result.ack_message = await a.page.locator("#action-result").textContent();
  await a.page.locator(`#queue li[data-alert-id="${id}"][data-status="acknowledged"]`).waitFor({ timeout: 5000 });
  result.history = await a.page.locator("#events").innerText();
  check(/Acknowledged by you/.test(result.history), `the history does not name who acknowledged: ${result.history}`);

  // Resolve with the keyboard: type-ahead picks the disposition, Enter in the note submits.
  await a.page.locator("#disposition").focus();
  await a.page.keyboard.type("Called");
  check((await a.page.locator("#disposition").inputValue()) === "called_patient", "type-ahead did not choose the disposition");
  await a.page.keyboard.press("Tab");
  await a.page.keyboard.type("Reached her; readings back to normal");
  await a.page.keyboard.press("Enter");
  const outcome = a.page.locator("#action-error:not(:empty), #detail-facts[data-status=resolved]");
  await outcome.first().waitFor({ state: "attached", timeout: 10000 });
  result.resolve_error = await a.page.locator("#action-error").textContent();
  result.resolved = (await a.page.locator("#detail-facts").getAttribute("data-status")) === "resolved";
  check(result.resolved !== !!result.resolve_error, "resolve both succeeded and failed");
}

// phoneAlert shows the open alert on a phone: the queue gives way to it, the
// conversation is a tab, and the screenshot is taken.
async function phoneAlert(page, shot) {
  await page.setViewportSize(PHONE);
  await page.locator("#tab-thread").waitFor({ state: "visible", timeout: 2000 }).catch(() => fail("no Conversation tab on a phone"));
  // The tab shows by CSS as the width changes; the panel is hidden by the
  // page's media-query listener, which may run a moment later.
  await page.locator("#panel-thread").waitFor({ state: "hidden", timeout: 2000 }).catch(() => {});
  check(await page.locator("#panel-thread").isHidden(), "the conversation is not behind its tab on a phone");
  await page.locator("#tab-trend").focus();
  await page.keyboard.press("ArrowRight");
  await page.locator("#panel-thread:not([hidden])").waitFor({ timeout: 2000 });
  await layout(page, "alert: conversation tab at 390×844", { targets: true });
  await axe(page, "alert: conversation tab at 390×844");
  await page.locator("#tab-trend").click();
  if (shot) {
    await page.locator("#detail-heading").scrollIntoViewIfNeeded();
    await page.screenshot({ path: shot.replace(/\.png$/, "-phone.png") });
  }
  await page.setViewportSize(DESKTOP);
}

// teamPage: a clinician who leads no team opens the care-team page (no
// editor, no broadcast) and their team's member list, with each member's
// presence; a member who comes back online shows as online without a
// reload (with the stream; without it, once the list is opened again).
async function teamPage(page, result) {
  await openSection(page, "teams", check);
  const row = page.locator(`#teams-table tr[data-team-id="${TEAM_A}"]`);
  await row.waitFor({ timeout: 5000 }).catch(async () => fail(`care teams: ${await page.locator("#teams-error").textContent()}`));
  check((await row.getByRole("button", { name: /^(Edit|Broadcast) / }).count()) === 0,
    "a clinician who leads no team is offered the team editor or a broadcast");
  const members = row.getByRole("button", { name: "Members of Cardiology RPM" });
  await members.focus();
  await page.keyboard.press("Enter");
  const rows = page.locator("#team-members-table tbody tr");
  await page.locator(`#team-members-table tr[data-user-id="${GONE_USER}"]`).waitFor({ timeout: 5000 });
  check(await page.evaluate(() => document.activeElement?.id === "team-members-heading"), "focus did not move to the member list");
  result.team = { rows: await rows.evaluateAll((rs) => rs.map((r) => ({ id: r.dataset.userId, state: r.dataset.presence,
    text: r.innerText.replace(/\s+/g, " ").trim() }))) };
  await everywhere(page, "care-team members with their presence");
  console.log("TEAM");
  check((await nextLine()) === "CONNECTED", "expected CONNECTED");
  if (EXPECT_MODE !== "stream") await members.click();
  const back = page.locator(`#team-members-table tr[data-user-id="${GONE_USER}"][data-presence="online"]`);
  await back.waitFor({ timeout: APPEAR_MS + 1000 }).catch(() => fail("the member who came back online is not shown online"));
  result.team.back = await back.innerText();
}

// idleAway: without input for the idle time, the console tells the server
// its user is away; at the next key press, online again. The Go side reads
// the server's state at each step.
async function idleAway(page, result) {
  const reported = (state, after) => page.waitForFunction(([s, t]) => document.body.dataset.presence === s &&
    Number(document.body.dataset.presenceAt) > t, [state, after], { timeout: 15000 });
  // The last input: a key press, timed in the page.
  const input = await page.evaluate(() => { document.dispatchEvent(new KeyboardEvent("keydown", { key: "Shift" })); return Date.now(); });
  await reported("away", input).catch(() => fail("the console did not report its user away after the idle time"));
  result.team.idle_ms = Number(await page.evaluate(() => document.body.dataset.presenceAt)) - input;
  console.log("AWAY");
  check((await nextLine()) === "OK", "expected OK");
  const press = await page.evaluate(() => Date.now());
  await page.keyboard.press("Shift");
  await reported("online", press).catch(() => fail("a key press after idling did not report the user online"));
  console.log("BACK");
  check((await nextLine()) === "OK", "expected OK");
}

// darkAndCalm checks the queue in the dark colour scheme with reduced motion.
async function darkAndCalm(page, result) {
  await page.emulateMedia({ colorScheme: "dark", reducedMotion: "reduce" });
  const got = await page.evaluate(() => ({
    bg: getComputedStyle(document.body).backgroundColor,
    transition: getComputedStyle(document.querySelector("#queue .row") || document.body).transitionDuration,
    animation: getComputedStyle(document.querySelector(".loading") || document.body, "::before").animationName,
  }));
  const [r, g, b] = got.bg.match(/\d+/g).map(Number);
  check(r + g + b < 120, `the dark scheme is not dark: ${got.bg}`);
  check(got.transition === "0s", `transitions run under reduced motion: ${got.transition}`);
  result.dark = got;
  await everywhere(page, "dark, reduced motion");
  await page.emulateMedia({ colorScheme: "light", reducedMotion: "no-preference" });
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
    if (TOKEN_ADMIN) await signInAndLoading(browser, result); // once (the polling run)
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
    if (TOKEN_ADMIN) {
      await filters(a.page, id, "Kim Park");
      await units(a.page, result);
    }
    await triage(a, id, result);

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
    result.thread.presence = await a.page.locator("#thread-presence").textContent();
    // The voice note plays inline: its player loads the file and the browser reads its length.
    const player = msg.locator("audio[data-attachment-id][controls]");
    await player.waitFor({ state: "attached", timeout: 5000 }).catch(() => fail("the voice note has no inline player"));
    await a.page.waitForFunction((id) => {
      const m = document.querySelector(`#thread-messages li[data-message-id="${id}"] audio[data-attachment-id]`);
      return m && m.readyState >= 1 && Number.isFinite(m.duration);
    }, messageID, { timeout: 10000 }).catch(() => fail("the inline player did not load the voice note's metadata"));
    result.thread.audio_duration = await player.evaluate((m) => m.duration);
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

    await everywhere(a.page, "alert: conversation with messages");
    if (SCREENSHOT) {
      // The screenshot shows the alert, not the error of an endpoint the
      // server may not have yet.
      await a.page.locator("#action-error").evaluate((e) => { e.textContent = ""; });
      await a.page.locator("#queue-heading").focus();
      await a.page.screenshot({ path: SCREENSHOT, fullPage: true });
    }
    await phoneAlert(a.page, SCREENSHOT);

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
    await everywhere(a.page, "messages");
    await teamPage(a.page, result);
    await idleAway(a.page, result);
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
    // B's patient has written nothing: their thread is listed only when asked for.
    result.thread.b_default = await b.page.locator("#threads-table tbody tr").count();
    await b.page.getByLabel("Show conversations without messages").check();
    result.thread.b_threads = await b.page.locator("#threads-table tbody tr").evaluateAll((rs) => rs.map((r) => r.dataset.threadId));
    result.thread.b_threads_loaded = true;
    check(!(await b.page.content()).includes(result.thread.id), "team B's page mentions team A's patient thread");
    check(!(await b.page.content()).includes(REPLY_TEXT.slice(0, 20)), "team B's page shows the reply");
    check(!(await b.page.content()).includes(PATIENT_TEXT.slice(0, 20)), "team B's page shows the patient's message");

    // A sign-in link opened in a tab that already shows the console signs
    // that tab in with the link's token, without a reload.
    await b.page.evaluate((t) => { location.hash = `#token=${encodeURIComponent(t)}`; }, TOKEN_A);
    await b.page.locator("#whoami", { hasText: "Dr Ada Osei" }).waitFor({ timeout: 5000 }).catch(() =>
      fail("a #token= link in an open tab was ignored"));
    check(!(await b.page.evaluate(() => location.hash)) && await b.page.evaluate(() => window.__sameDocument === true),
      "the link's token stayed in the address bar, or the page reloaded");
    result.token_link = await b.page.locator("#whoami").textContent();

    const pages = [a, b];
    const helpers = { check, fail };
    if (TOKEN_ADMIN) pages.push(await adminPages(openConsole, browser, TOKEN_ADMIN, result, helpers));
    if (TOKEN_LEAD) pages.push(await leadBroadcast(openConsole, browser, TOKEN_LEAD, result, helpers));
    await darkAndCalm(a.page, result);
    for (const c of pages) {
      check(await c.page.evaluate(() => window.__sameDocument === true), "a page reloaded");
      check(c.problems.length === 0, c.problems.join("; "));
    }
  } finally {
    await browser.close();
  }
  result.checks = report;
  console.log(`RESULT ${JSON.stringify(result)}`);
  lines.close();
}

main().catch((e) => fail(e.stack || String(e)));
