// The service worker (installability, offline start, Web Push) and the
// push subscription: the app subscribes with the server's VAPID key and
// registers the subscription as a device (POST /v1/me/devices); sign-out
// removes both.

const DEVICE = "tend.app.device";

// registerWorker registers sw.js for /app/; onOpen(view) is called when a
// notification the patient tapped asks this window to show a view.
export function registerWorker(onOpen) {
  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker.addEventListener("message", (ev) => {
    if (ev.data?.type === "open" && typeof ev.data.view === "string" && ev.data.view.startsWith("#/")) onOpen(ev.data.view);
  });
  navigator.serviceWorker.register("sw.js", { scope: "./" }).catch(() => {
    // no worker (a private window, an old browser): the app still works online
  });
}

export function pushSupported(config) {
  return !!config.vapid_public_key && "serviceWorker" in navigator && "PushManager" in globalThis && "Notification" in globalThis;
}

export function pushEnabled() {
  return !!localStorage.getItem(DEVICE);
}

function keyBytes(b64url) {
  const b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0));
}

// enablePush asks for permission, subscribes and registers the device. It
// resolves with a sentence for the patient.
export async function enablePush(ctx) {
  if (!pushSupported(ctx.config)) return "Notifications are not available on this phone or server.";
  const perm = await Notification.requestPermission();
  if (perm !== "granted") return "Notifications are blocked. You can allow them in your browser's settings.";
  const reg = await navigator.serviceWorker.ready;
  let sub = await reg.pushManager.getSubscription();
  if (!sub) {
    sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(ctx.config.vapid_public_key) });
  }
  const json = sub.toJSON();
  const dev = await ctx.api.post("/v1/me/devices", { platform: "webpush",
    subscription: { endpoint: json.endpoint, keys: { p256dh: json.keys.p256dh, auth: json.keys.auth } } });
  localStorage.setItem(DEVICE, dev.id);
  return "Notifications are on.";
}

export async function disablePush(ctx) {
  const id = localStorage.getItem(DEVICE);
  const reg = await navigator.serviceWorker?.getRegistration();
  const sub = await reg?.pushManager?.getSubscription();
  if (sub) await sub.unsubscribe();
  if (id) await ctx.api.del(`/v1/me/devices/${encodeURIComponent(id)}`);
  localStorage.removeItem(DEVICE);
  return "Notifications are off.";
}
