// The patient app's service worker. It keeps the app's own files (never an
// API answer) so the app opens without a connection, and it shows Web Push
// notifications. A push carries only a type and ids: the words shown are
// this file's own, never the payload's, so no notification can carry
// anything about the patient. Tapping one opens the view it concerns.

const SHELL = "tend-app-shell-v2";
const FILES = [
  "./", "config.json", "manifest.webmanifest", "brand.css", "icons/icon-192.png",
  "assets/app.css", "assets/app.js", "assets/session.js", "assets/store.js", "assets/outbox.js", "assets/units.js",
  "assets/lock.js", "assets/prefs.js", "assets/dom.js", "assets/push.js", "assets/stream.js", "assets/home.js",
  "assets/log.js", "assets/retake.js", "assets/thread.js", "assets/symptoms.js", "assets/reminders.js", "assets/charts.js",
  "assets/settings.js", "../console/assets/api.js", "../console/assets/live.js", "../console/assets/thread.js",
  "../console/assets/format.js", "../console/assets/presence.js", "../console/assets/brand.js", "../console/assets/keys.js", "../console/assets/e2ee.js",
  "../console/assets/wrappool.js", "../console/assets/wrapworker.js", "../console/assets/x25519.js",
  "../console/assets/secure.js", "../console/assets/securepanel.js", "../console/vendor/hpke.js",
];

// Notification words and the view each push type opens.
const PUSHES = {
  message: { title: "New message", body: "Open the app to read it.", view: "#/messages" },
  care_team_message: { title: "New message from your care team", body: "Open the app to read it.", view: "#/messages" },
  retake: { title: "Please measure again", body: "Rest for a few minutes, then measure again.", view: "#/retake" },
  reminder: { title: "Reminder", body: "Open the app to see what is due.", view: "#/reminders" },
  safety: { title: "Your care team has been alerted",
    body: "If you have chest pain or trouble breathing, call emergency services.", view: "#/" },
};
const OTHER = { title: "Tend", body: "Open the app.", view: "#/" };

// extend keeps the worker alive for p. A push dispatched by a test (not by
// the browser) cannot be extended; the work still runs.
function extend(event, p) {
  try {
    event.waitUntil(p);
  } catch {
    // an untrusted (synthetic) event
  }
  return p;
}

self.addEventListener("install", (event) => {
  extend(event, caches.open(SHELL).then((c) => c.addAll(FILES)).then(() => self.skipWaiting()).catch(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  extend(event, caches.keys()
    .then((names) => Promise.all(names.filter((n) => n !== SHELL).map((n) => caches.delete(n))))
    .then(() => self.clients.claim()));
});

// Network first for the app's files (they are small and change with an
// upgrade), the kept copy when offline. Everything else — the API above
// all — goes to the network untouched and is never stored.
self.addEventListener("fetch", (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== self.location.origin) return;
  if (!url.pathname.startsWith("/app/") && !url.pathname.startsWith("/console/assets/") && url.pathname !== "/console/vendor/hpke.js") return;
  event.respondWith(fetch(req).then((res) => {
    if (res.ok && !url.search) {
      const copy = res.clone();
      caches.open(SHELL).then((c) => c.put(req, copy));
    }
    return res;
  }).catch(async () => (await caches.match(req, { ignoreSearch: true })) || (await caches.match("./")) || Response.error()));
});

function parse(data) {
  try {
    return data ? data.json() : {};
  } catch {
    return {};
  }
}

self.addEventListener("push", (event) => {
  const msg = parse(event.data);
  const kind = PUSHES[msg.type] || OTHER;
  extend(event, self.registration.showNotification(kind.title, {
    body: kind.body, tag: msg.data?.message_id || msg.data?.alert_id || msg.type || "tend", icon: "icons/icon-192.png",
    data: { view: kind.view },
  }));
});

// openView shows view in an open window of the app (asking the page to
// switch) or opens one.
async function openView(view) {
  const wins = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const win = wins.find((w) => new URL(w.url).pathname.startsWith(new URL("./", self.location).pathname));
  if (win) {
    win.postMessage({ type: "open", view });
    try {
      await win.focus();
    } catch {
      // focusing needs the tap's user activation
    }
    return win;
  }
  return self.clients.openWindow(new URL("./" + view, self.location).href);
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const view = event.notification.data?.view || "#/";
  extend(event, openView(view));
});
