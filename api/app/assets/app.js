// The patient app's shell: sign-in, the views behind the menu (routes in the
// address bar's fragment, "#/log", never with anything about the patient),
// the outbox, the live stream, the idle lock, the away report (the
// console's: after the server's idle time without input the patient is
// away, online again at the next) and the service worker.

import * as session from "./session.js";
import { applyBranding } from "../../console/assets/brand.js";
import { Sender } from "./outbox.js";
import { Stream } from "./stream.js";
import { IdleReporter } from "../../console/assets/presence.js";
import { IdleWatch, idleLimit, isIdle, lastActive, touch, hasCode, checkCode } from "./lock.js";
import { prefs, applyLook } from "./prefs.js";
import { h, errorText } from "./dom.js";
import { registerWorker } from "./push.js";
import { ensureDevice } from "../../console/assets/keys.js";
import * as home from "./home.js";
import * as log from "./log.js";
import * as thread from "./thread.js";
import * as symptoms from "./symptoms.js";
import * as reminders from "./reminders.js";
import * as charts from "./charts.js";
import * as settings from "./settings.js";

const VIEWS = {
  "": { title: "Home", mod: home },
  log: { title: "Log a reading", mod: log },
  retake: { title: "Measure again", mod: log },
  messages: { title: "Messages", mod: thread },
  symptoms: { title: "How I feel", mod: symptoms },
  reminders: { title: "Medicines and reminders", mod: reminders },
  readings: { title: "My readings", mod: charts },
  settings: { title: "Settings", mod: settings },
};

const app = {
  config: null,
  session: null,
  ctx: null,
  cleanup: null,
  locked: false,
  gen: 0,
};

const $ = (id) => document.getElementById(id);

function route() {
  const m = /^#\/([a-z]*)/.exec(location.hash);
  return m && VIEWS[m[1]] ? m[1] : "";
}

function announce(text) {
  const live = $("announce");
  live.textContent = "";
  setTimeout(() => { live.textContent = text; }, 50);
}

// show renders the view named by the address bar's fragment.
async function show() {
  if (!app.ctx || app.locked) return;
  const name = route();
  const view = VIEWS[name];
  app.cleanup?.();
  app.cleanup = null;
  document.title = `${view.title} – ${app.config.name}`;
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.getAttribute("href") === `#/${name}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const main = $("main");
  main.replaceChildren(h("p", { class: "note", text: "Loading…" }));
  main.dataset.ready = "false";
  main.dataset.view = name || "home";
  // A view renders apart and is shown only if no later navigation started
  // meanwhile, so a slow view never lands on top of the next one.
  const gen = ++app.gen;
  const box = h("div", { class: "view" });
  let cleanup = null;
  try {
    cleanup = (await view.mod.render(app.ctx, box, { retake: name === "retake" })) || null;
  } catch (err) {
    box.append(h("p", { class: "error", role: "alert", text: errorText(err) }));
  }
  if (gen !== app.gen || !app.ctx || app.locked) {
    cleanup?.();
    return;
  }
  app.cleanup = cleanup;
  main.replaceChildren(box);
  main.dataset.ready = "true";
  const title = $("view-title");
  if (title && app.focusView) title.focus();
  app.focusView = true;
}

function setNet() {
  const net = $("net");
  net.textContent = navigator.onLine ? "" : "Offline: readings you log are kept on this phone and sent when you are back online.";
  net.hidden = navigator.onLine;
}

// start runs the app for a session.
async function start(s) {
  stop();
  app.session = s;
  const api = session.api(s.token, app.config.api_base);
  const events = new EventTarget();
  const sender = new Sender(api, s.patient_id, {
    onAuth: expired,
    onSent: (result) => events.dispatchEvent(new CustomEvent("sent", { detail: result })),
    onChange: () => events.dispatchEvent(new CustomEvent("outbox")),
  });
  const stream = new Stream(api);
  app.ctx = { api, patientID: s.patient_id, config: app.config, prefs, sender, stream, events, announce,
    nav: (view) => { location.hash = `#/${view}`; }, signOut, device: phoneKeys(api) };
  app.idle = new IdleWatch(() => idleLimit(app.config, prefs()), idle);
  $("signin").hidden = true;
  $("nav").hidden = false;
  $("main").hidden = false;
  if (isIdle(lastActive(), Date.now(), idleLimit(app.config, prefs()))) {
    await idle();
  } else {
    touch();
  }
  app.idle.start();
  app.away = new IdleReporter(api);
  app.away.start();
  stream.start();
  sender.flush();
  app.focusView = false;
  await show();
}

// phoneKeys finds or registers this phone's end-to-end encryption keys
// (docs/e2ee.md): {device, notice}, or {device: null, notice} saying why
// there are none.
async function phoneKeys(api) {
  try {
    const me = await api.get("/v1/me");
    brand(api, me.organisation);
    return await ensureDevice(api, me.user.id, "Patient app");
  } catch (err) {
    return { device: null, notice: `This phone has no encryption keys, so it cannot read or write encrypted messages: ${errorText(err)}` };
  }
}

// brand shows the patient's organisation's branding (undone on sign-out).
async function brand(api, org) {
  app.unbrand?.();
  const undo = await applyBranding(api, org, { nameId: "brand", logoId: "org-logo" });
  if (app.session) app.unbrand = undo;
  else undo();
}

function stop() {
  app.unbrand?.();
  app.unbrand = null;
  app.cleanup?.();
  app.cleanup = null;
  app.ctx?.sender.stop();
  app.ctx?.stream.stop();
  app.idle?.stop();
  app.away?.stop();
  app.away = null;
  app.ctx = null;
}

// signOut forgets everything (with a warning when readings are unsent).
async function signOut(reason = "You are signed out.") {
  const s = app.session;
  stop();
  await session.forget(s, app.config.api_base);
  signedOut(reason);
}

// expired handles a sign-in the server no longer accepts.
function expired() {
  if (!app.session) return;
  session.drop();
  signedOut("Your sign-in has ended. Please sign in again.");
}

// signedOut shows the sign-in form (the session is already gone, here or
// in another tab).
function signedOut(message) {
  stop();
  app.session = null;
  app.locked = false;
  $("lockscreen").hidden = true;
  $("nav").hidden = true;
  $("main").hidden = true;
  $("main").replaceChildren();
  $("signin").hidden = false;
  document.title = `Sign in – ${app.config.name}`;
  $("signin-msg").textContent = message || "";
  $("token").value = "";
  $("signin-title").focus();
}

// idle locks the app: with a lock code the patient unlocks it, without
// one the app signs out.
async function idle() {
  if (app.locked || !app.session) return;
  if (!hasCode()) {
    await signOut("You were signed out because the app was not used for a while.");
    return;
  }
  app.locked = true;
  app.cleanup?.();
  app.cleanup = null;
  $("main").replaceChildren();
  $("main").hidden = true;
  $("nav").hidden = true;
  $("lockscreen").hidden = false;
  document.title = `Locked – ${app.config.name}`;
  $("unlock-code").value = "";
  $("lock-title").focus();
}

async function unlock(ev) {
  ev.preventDefault();
  const out = await checkCode($("unlock-code").value);
  if (out === "ok") {
    app.locked = false;
    $("lockscreen").hidden = true;
    $("nav").hidden = false;
    $("main").hidden = false;
    touch();
    await show();
  } else if (out === "wrong") {
    $("unlock-msg").textContent = "That code is not right. Please try again.";
    $("unlock-code").focus();
  } else {
    await signOut("You were signed out after too many wrong codes.");
  }
}

async function signInWith(token, how) {
  const msg = $("signin-msg");
  msg.textContent = "Signing in…";
  try {
    const s = await session.signIn(token, app.config.api_base, how);
    msg.textContent = "";
    touch();
    await start(s);
  } catch (err) {
    msg.textContent = err.status === 401 ? "This sign-in code is not valid or has expired." : errorText(err);
  }
}

function wireSignIn() {
  $("signin-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = $("token").value.trim();
    if (t) signInWith(t, "token");
    else $("signin-msg").textContent = "Please enter your sign-in code.";
  });
  const sso = $("sso");
  if (app.config.oidc) {
    sso.hidden = false;
    sso.addEventListener("click", () => session.startOIDC(app.config.oidc).catch((err) => {
      $("signin-msg").textContent = errorText(err);
    }));
  }
  $("unlock-form").addEventListener("submit", unlock);
  $("lock-signout").addEventListener("click", () => signOut());
  $("skip").addEventListener("click", (ev) => {
    ev.preventDefault();
    ($("view-title") || $("main")).focus();
  });
}

// onFragment handles a sign-in link opened in this tab while it is open.
function onFragment() {
  const token = session.tokenFromFragment();
  if (token) signInWith(token, "link");
  else show();
}

// onStorage follows sign-in and sign-out in the app's other tabs.
function onStorage(ev) {
  if (ev.key !== "tend.app.session" && ev.key !== null) return;
  const s = session.current();
  if (!s) {
    if (app.session) signedOut("You signed out in another window.");
  } else if (!app.session || s.token !== app.session.token) {
    start(s);
  }
}

async function main() {
  app.config = await session.loadConfig();
  applyLook(prefs());
  $("brand").textContent = app.config.name;
  if (app.config.color) document.querySelector('meta[name="theme-color"]')?.setAttribute("content", app.config.color);
  document.title = app.config.name;
  wireSignIn();
  setNet();
  addEventListener("online", setNet);
  addEventListener("offline", setNet);
  addEventListener("hashchange", onFragment);
  addEventListener("storage", onStorage);
  addEventListener("tend:signed-out", expired);
  registerWorker((view) => { location.hash = view; });
  let token = session.tokenFromFragment();
  try {
    token = token || (await session.finishOIDC(app.config.oidc));
  } catch (err) {
    signedOut(errorText(err));
    return;
  }
  if (token) {
    signedOut("");
    await signInWith(token, token.split(".").length === 3 ? "oidc" : "link");
    return;
  }
  const s = session.current();
  if (s) await start(s);
  else signedOut("");
}

main();
