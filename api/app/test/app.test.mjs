// Drives the patient app at phone size in Debian's Chromium (playwright-core,
// no downloaded browser) and checks every view with axe-core. Run by
// api/app_browser_test.go, which owns the server and the data; the two talk
// over stdin/stdout:
//   script → "MESSAGED"       the patient sent a message with a photo
//   Go     → "READ"           the clinician read it, typed and replied urgently
//   script → "CUFF"           (later) a retake push is next
//   Go     → "POSTED"         the patient's cuff sent a crisis reading
//   script → "RESULT <json>"  what the app showed
// Environment: BASE_URL, TOKEN (the patient's), CHROMIUM, SCREENSHOT (where
// to write the phone screenshot), PHOTO (a PNG to attach).
import { readFile } from "node:fs/promises";
import { nextLine } from "../../console/test/lines.mjs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const { BASE_URL, TOKEN, CHROMIUM = "/usr/bin/chromium", SCREENSHOT, PHOTO, DOSE_ID, BRAND_NAME } = process.env;
const APP = `${BASE_URL}/app/`;
const T = 20000;
const VIEWS = ["home", "log", "messages", "symptoms", "reminders", "readings", "settings"];
const HREF = { home: "#/", log: "#/log", messages: "#/messages", symptoms: "#/symptoms", reminders: "#/reminders",
  readings: "#/readings", settings: "#/settings" };

const axeSource = await readFile(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const result = { axe: {}, overflow: {}, small_targets: {}, titles: [] };

function fail(msg) {
  console.error(`patient app test: ${msg}`);
  console.error(JSON.stringify(result));
  process.exit(1);
}

// axe runs axe-core (injected through the debugging protocol, which the
// page's CSP does not apply to) and returns the violations.
async function axe(page, name) {
  if (!(await page.evaluate(() => typeof globalThis.axe !== "undefined"))) await page.evaluate(`${axeSource}\n;0`);
  const res = await page.evaluate(() => globalThis.axe.run(document, {
    runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"] } }));
  result.axe[name] = res.violations.length;
  for (const v of res.violations) console.log(`axe ${name}: ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
}

// smallTargets counts controls smaller than 48 × 48 CSS px.
async function smallTargets(page, name) {
  result.small_targets[name] = await page.evaluate(() => [...document.querySelectorAll(
    "button, .tabs a, a.big, a.button, select, input[type=text], input[type=password], textarea, summary, label.choice, label.tile")]
    .filter((e) => e.offsetParent !== null)
    .filter((e) => { const r = e.getBoundingClientRect(); return r.height < 47.5 || r.width < 47.5; }).length);
}

async function overflow(page, name) {
  result.overflow[name] = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
}

// open moves to a view with the keyboard: focus its menu link, press Enter.
async function open(page, name) {
  await page.locator(`#nav a[href="${HREF[name]}"]`).focus();
  await page.keyboard.press("Enter");
  await page.locator(`#main[data-view="${name}"][data-ready="true"]`).waitFor({ timeout: T });
  result.titles.push(await page.title());
}

async function ready(page, name) {
  await page.locator(`#main[data-view="${name || "home"}"][data-ready="true"]`).waitFor({ timeout: T });
}

async function typeInto(page, selector, text) {
  await page.locator(selector).focus();
  await page.keyboard.type(text);
}

// logBloodPressure types a reading by keyboard and sends it with Enter.
async function logBloodPressure(page, sys, dia) {
  await page.locator("#f-systolic").fill("");
  await page.locator("#f-diastolic").fill("");
  await typeInto(page, "#f-systolic", String(sys));
  await page.keyboard.press("Tab");
  await page.keyboard.type(String(dia));
  await page.keyboard.press("Enter");
}

async function signInWithLink(page) {
  await page.goto(APP);
  await page.locator("#signin:not([hidden])").waitFor({ timeout: T });
  // The link, in the tab that is already open: only the fragment changes.
  await page.goto(`${APP}#token=${encodeURIComponent(TOKEN)}`);
  await ready(page, "home");
  if (page.url().includes(TOKEN)) fail("the token stayed in the address bar");
  result.open_tab_link = (await page.locator("#nav").isVisible()) ? "signed in" : "not signed in";
  if (BRAND_NAME) {
    // The patient's organisation's branding: its name and logo in the bar.
    await page.locator("#org-logo:not([hidden])").waitFor({ state: "visible", timeout: T }).catch(() => fail("the organisation's logo is not shown"));
    const name = await page.locator("#brand").textContent();
    if (name !== BRAND_NAME) fail(`the bar names ${name}, not the organisation`);
    if (!(await page.locator("#org-logo").evaluate((i) => i.complete && i.naturalWidth === 16 && i.alt.length > 0))) {
      fail("the organisation's logo did not load, or has no text alternative");
    }
  }
}

async function installable(context, page) {
  await page.evaluate(() => navigator.serviceWorker.ready);
  const cdp = await context.newCDPSession(page);
  const { installabilityErrors } = await cdp.send("Page.getInstallabilityErrors");
  const errors = installabilityErrors.map((e) => e.errorId).filter((e) => e !== "in-incognito");
  if (errors.length) console.log(`installability: ${errors.join(", ")}`);
  result.installable = errors.length === 0;
}

async function retake(page) {
  await open(page, "log");
  await logBloodPressure(page, 120, 130);
  const err = page.locator("#f-systolic-error");
  await err.filter({ hasText: "diastolic" }).waitFor({ timeout: T });
  result.field_error = await err.textContent();
  await logBloodPressure(page, 185, 122);
  const countdown = page.locator(".retake .countdown");
  await countdown.waitFor({ timeout: T });
  result.retake_countdown = await countdown.textContent();
  if (SCREENSHOT) await page.screenshot({ path: SCREENSHOT });
  await axe(page, "log");
  await page.locator(".retake button").focus();
  await page.keyboard.press("Enter");
  await logBloodPressure(page, 186, 121);
  await page.locator("#main .result", { hasText: "both readings" }).waitFor({ timeout: T });
  result.retake_answered = await page.locator("#main .result").textContent();
}

// offline logs a weight without a connection, closes the tab, and reopens
// the app online; the first send's answer is lost on the way back, so the
// app sends the reading again.
async function offline(context, page) {
  await open(page, "log");
  await page.locator("label.tile", { hasText: "Weight" }).click();
  await context.setOffline(true);
  await typeInto(page, "#f-value", "81.3");
  await page.keyboard.press("Enter");
  await page.locator("#main .result", { hasText: "Saved on this phone" }).waitFor({ timeout: T });
  result.offline_saved = await page.locator("#main .result").textContent();
  // Opened again without a connection: the service worker's copy of the
  // app starts, still signed in, with the reading waiting.
  await page.reload();
  await ready(page, "log");
  await open(page, "home");
  await page.locator("#queue:not([hidden])").waitFor({ timeout: T });
  result.offline_start = await page.locator("#queue").textContent();
  await page.close();
  await context.setOffline(false);
  let lost = 0;
  await context.route("**/v1/patients/*/readings", async (route) => {
    if (route.request().method() === "POST" && lost === 0) {
      lost++;
      await route.fetch(); // the server stores it …
      await route.abort("connectionreset"); // … and the answer never arrives
      return;
    }
    await route.continue();
  });
  const again = await context.newPage();
  await again.goto(APP);
  await ready(again, "home");
  await again.waitForFunction(() => {
    const q = document.getElementById("queue");
    return q && q.hidden;
  }, null, { timeout: 20000 });
  result.lost_response = lost;
  await context.unroute("**/v1/patients/*/readings");
  return again;
}

async function symptoms(page) {
  await open(page, "symptoms");
  await page.locator("#sym-shortness_of_breath").check();
  await page.locator("#sym-shortness_of_breath-sev").selectOption("6");
  await typeInto(page, "#sym-note", "Worse when I climb the stairs.");
  await page.locator("#main form button[type=submit]").click();
  await page.locator("#main .result", { hasText: "Sent." }).waitFor({ timeout: T });
  await axe(page, "symptoms");
  await open(page, "messages");
  const report = page.locator("li.message", { hasText: "Symptom report" }).last();
  await report.waitFor({ timeout: T });
  result.symptom_in_thread = await report.locator("ul.symptoms li").allTextContents();
}

async function message(page) {
  await page.evaluate(() => {
    const seen = [];
    globalThis.typingSeen = seen;
    new MutationObserver(() => {
      const t = document.querySelector(".typing")?.textContent;
      if (t) seen.push(t);
    }).observe(document.getElementById("main"), { subtree: true, childList: true, characterData: true });
  });
  await typeInto(page, "#msg-body", "My ankle is more swollen today, photo attached.");
  const [chooser] = await Promise.all([page.waitForEvent("filechooser"), page.getByRole("button", { name: "Attach a photo or file" }).click()]);
  await chooser.setFiles(PHOTO);
  await page.locator("#msg-files li", { hasText: "PNG picture" }).waitFor({ timeout: T });
  await page.getByRole("button", { name: "Send", exact: true }).click();
  await page.locator(".composer .result", { hasText: "Sent." }).waitFor({ timeout: T });
  await axe(page, "messages");
  console.log("MESSAGED");
  if ((await nextLine()) !== "READ") fail("the clinician did not read the message");
  // The clinician holds the live stream now: the thread says the team is available.
  await page.locator("#care-team-available", { hasText: "available now" }).waitFor({ timeout: T })
    .catch(() => fail("the thread did not say the care team is available"));
  result.available = await page.locator("#care-team-available").textContent();
  await awayAfterIdle(page);
  const reply = page.locator("li.message.theirs.urgent").last();
  await reply.waitFor({ timeout: T });
  result.urgent_reply = await reply.textContent();
  const mine = page.locator("li.message.mine", { hasText: "photo attached" }).last();
  await mine.locator(".receipt", { hasText: "Read" }).waitFor({ timeout: T });
  result.receipt = await mine.locator(".receipt").textContent();
  result.typing = (await page.evaluate(() => globalThis.typingSeen))[0] || "";
  await mine.getByRole("button", { name: /Show PNG picture/ }).click();
  const img = mine.locator("img");
  await img.waitFor({ timeout: T });
  result.photo_shown = await img.evaluate((i) => i.complete && i.naturalWidth > 0 && i.src.startsWith("blob:"));
}

async function reminders(page) {
  await open(page, "reminders");
  // The dose the test left pending: the schedule's own doses of the day
  // (its 08:00, before 08:00) are listed too.
  const dose = page.locator(`li.dose[data-id="${DOSE_ID}"]`, { hasText: "Furosemide, 40 mg" });
  await dose.waitFor({ timeout: T });
  await axe(page, "reminders");
  await dose.getByRole("button", { name: /^Taken/ }).focus();
  await page.keyboard.press("Enter");
  await dose.locator(".dose-status", { hasText: "Taken" }).waitFor({ timeout: T });
  result.dose = await dose.locator(".dose-status").textContent();
  await page.locator("#adh-30", { hasText: "1 of 1" }).waitFor({ timeout: T });
  result.adherence = [await page.locator("#adh-7").textContent(), await page.locator("#adh-30").textContent()];
}

async function readings(page) {
  await open(page, "readings");
  await page.locator("#chart-desc").waitFor({ timeout: T });
  result.chart = await page.locator("#chart-desc").textContent();
  await axe(page, "readings");
}

// swPush dispatches a synthetic push in the service worker, as the browser
// would, waits (up to 10 s) for the notification it shows and taps it. It
// returns the notification's title.
async function swPush(sw, payload) {
  return sw.evaluate(async (data) => {
    for (const n of await self.registration.getNotifications()) n.close();
    self.dispatchEvent(new PushEvent("push", { data }));
    let shown = [];
    for (let i = 0; i < 100 && shown.length === 0; i++) {
      shown = await self.registration.getNotifications();
      if (shown.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    if (shown.length === 0) return "";
    self.dispatchEvent(new NotificationEvent("notificationclick", { notification: shown[0] }));
    return shown[0].title;
  }, JSON.stringify(payload));
}

// push: a message push (its text would name the patient: the worker shows
// its own words) opens the thread.
async function push(context, page) {
  await open(page, "home");
  const sw = context.serviceWorkers()[0] || (await context.waitForEvent("serviceworker", { timeout: T }));
  result.push_title = await swPush(sw, { type: "care_team_message", title: "Sam Lee: BP 185/122", body: "secret",
    data: { thread_id: "t", message_id: "m" } });
  if (!result.push_title) fail("the push showed no notification");
  await ready(page, "messages");
  result.push_view = await page.evaluate(() => location.hash);
}

// retakePush: the cuff's high pulse asks for a retake, and its push opens
// the app on the request, with its countdown.
async function retakePush(context, page) {
  await open(page, "home");
  console.log("CUFF");
  if ((await nextLine()) !== "POSTED") fail("the cuff's reading was not posted");
  if (!(await swPush(context.serviceWorkers()[0], { type: "retake", data: {} }))) fail("the retake push showed no notification");
  await ready(page, "retake");
  const card = page.locator(".retake", { hasText: "pulse" });
  await card.waitFor({ timeout: T });
  result.push_retake = await card.locator(".countdown").textContent();
}

async function everyView(page) {
  for (const v of VIEWS) {
    await open(page, v);
    await smallTargets(page, v);
    if (v === "home" || v === "settings") await axe(page, v);
  }
  await page.locator("label.choice", { hasText: "High contrast" }).click();
  await open(page, "home");
  await axe(page, "high-contrast");
  await open(page, "settings");
  await page.locator("label.choice", { hasText: "200 %" }).click();
  for (const v of VIEWS) {
    await open(page, v);
    await overflow(page, v);
  }
}

// units logs a temperature in °F after choosing °F in Settings.
async function units(page) {
  await open(page, "settings");
  await page.locator("label.choice", { hasText: "°F" }).click();
  await open(page, "log");
  await page.locator("label.tile", { hasText: "Temperature" }).click();
  result.fahrenheit_hint = await page.locator("#f-value-hint").textContent();
  await typeInto(page, "#f-value", "100.4");
  await page.keyboard.press("Enter");
  await page.locator("#main .result", { hasText: "Saved" }).waitFor({ timeout: T });
  result.fahrenheit_saved = await page.locator("#main .result").textContent();
}

// desktop checks two views at a desktop size, then returns to the phone's.
async function desktop(page) {
  await page.setViewportSize({ width: 1280, height: 800 });
  for (const v of ["home", "messages"]) {
    await open(page, v);
    await overflow(page, `desktop-${v}`);
    await axe(page, `desktop-${v}`);
  }
  await page.setViewportSize({ width: 390, height: 844 });
}

// awayAfterIdle: after the server's idle time without input (short in this
// test) the app tells the server the patient is away, and online at the
// next key press; each time the Go side asks what the clinician sees of
// the patient in their thread ("AWAY" → "SEEN away", "BACK" → "SEEN online").
async function awayAfterIdle(page) {
  const told = (state, since) => page.waitForFunction(([want, t]) => document.body.dataset.presence === want &&
    Number(document.body.dataset.presenceAt) > t, [state, since], { timeout: T });
  const input = await page.evaluate(() => { document.dispatchEvent(new KeyboardEvent("keydown", { key: "Shift" })); return Date.now(); });
  await told("away", input).catch(() => fail("the app did not report the patient away after the idle time"));
  result.idle_ms = Number(await page.evaluate(() => document.body.dataset.presenceAt)) - input;
  console.log("AWAY");
  result.away_seen = await nextLine();
  const press = await page.evaluate(() => Date.now());
  await page.keyboard.press("Shift");
  await told("online", press).catch(() => fail("a key press did not report the patient online again"));
  console.log("BACK");
  result.back_seen = await nextLine();
}

// idleLock sets a lock code, lets the app see an hour without use (the
// time of last use moved back), and unlocks it.
async function idleLock(page) {
  await open(page, "settings");
  await typeInto(page, "#lock-code", "2468");
  await page.keyboard.press("Enter");
  await page.locator(".card .note", { hasText: "Lock code saved" }).waitFor({ timeout: T });
  await page.evaluate(() => {
    localStorage.setItem("tend.app.active", String(Date.now() - 3600 * 1000));
    document.dispatchEvent(new Event("visibilitychange"));
  });
  await page.locator("#lockscreen:not([hidden])").waitFor({ timeout: T });
  result.locked = await page.evaluate(() => ({ title: document.title, main: document.getElementById("main").childElementCount,
    nav: document.getElementById("nav").hidden }));
  await axe(page, "locked");
  await typeInto(page, "#unlock-code", "1357");
  await page.keyboard.press("Enter");
  await page.locator("#unlock-msg", { hasText: "not right" }).waitFor({ timeout: T });
  await page.locator("#unlock-code").fill("");
  await typeInto(page, "#unlock-code", "2468");
  await page.keyboard.press("Enter");
  await ready(page, "settings");
  result.unlocked = await page.locator("#nav").isVisible();
}

// subscribe turns notifications on. Headless Chromium has no push service,
// so the page's PushManager is replaced (before the app loads) by one that
// records the application server key and returns a subscription with a
// real P-256 key; the app registers it as a device with the API.
async function subscribe(page) {
  await open(page, "settings");
  await page.locator("#push-toggle").click();
  await page.locator("#push-toggle + p", { hasText: "Notifications are on." }).waitFor({ timeout: T });
  result.push_key = await page.evaluate(() => globalThis.appServerKey);
  result.push_devices = await page.evaluate(async (token) => {
    const res = await fetch("/v1/me/devices", { headers: { Authorization: `Bearer ${token}` } });
    return (await res.json()).items.length;
  }, TOKEN);
}

async function fakePushManager(context) {
  await context.addInitScript(() => {
    let sub = null;
    const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    PushManager.prototype.subscribe = async function (opts) {
      globalThis.appServerKey = b64(opts.applicationServerKey);
      const kp = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"]);
      const p256dh = b64(await crypto.subtle.exportKey("raw", kp.publicKey));
      const auth = b64(crypto.getRandomValues(new Uint8Array(16)));
      const endpoint = "http://127.0.0.1:9/push/app-test";
      sub = { endpoint, toJSON: () => ({ endpoint, keys: { p256dh, auth } }), unsubscribe: async () => { sub = null; return true; } };
      return sub;
    };
    PushManager.prototype.getSubscription = async function () { return sub; };
  });
}

async function signOut(context, page) {
  // A second tab of the app is signed in already, and signs out with the first.
  const other = await context.newPage();
  await other.goto(APP);
  await ready(other, "home");
  await open(page, "settings");
  await page.locator("#signout").click();
  await page.locator("#signin:not([hidden])").waitFor({ timeout: T });
  await other.locator("#signin:not([hidden])").waitFor({ timeout: T });
  result.second_tab = await other.locator("#signin-msg").textContent();
  await other.close();
  result.signed_out = await page.evaluate(async () => ({
    indexeddb: (await indexedDB.databases()).map((d) => d.name),
    storage: Object.keys(localStorage).filter((k) => k !== "tend.app.prefs"),
    caches: await caches.keys(),
  }));
  await overflow(page, "signin");
  await smallTargets(page, "signin");
  await axe(page, "signin");
}

async function signOn(page) {
  await page.locator("#sso").click();
  await ready(page, "home");
  result.oidc = (await page.locator("#nav").isVisible()) && !page.url().includes("code=") ? "signed in" : "not signed in";
}

async function main() {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
  try {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true,
      locale: "en-GB", timezoneId: "America/Chicago" });
    await context.grantPermissions(["notifications"], { origin: BASE_URL });
    await fakePushManager(context);
    let page = await context.newPage();
    page.on("pageerror", (e) => console.log(`page error: ${e.message}`));
    await signInWithLink(page);
    await installable(context, page);
    await retake(page);
    page = await offline(context, page);
    page.on("pageerror", (e) => console.log(`page error: ${e.message}`));
    await symptoms(page);
    await message(page);
    await reminders(page);
    await readings(page);
    await push(context, page);
    await retakePush(context, page);
    await units(page);
    await everyView(page);
    await desktop(page);
    await idleLock(page);
    await subscribe(page);
    await signOut(context, page);
    await signOn(page);
  } finally {
    await browser.close();
  }
  console.log(`RESULT ${JSON.stringify(result)}`);
  process.exit(0);
}

main().catch((err) => fail(err.stack || String(err)));
