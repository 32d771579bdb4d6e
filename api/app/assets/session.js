// Signing in and out. A session is the patient's bearer token (an access
// token, or an ID token from the organisation's sign-in) and the patient id
// it acts for, kept in localStorage so that an installed app stays signed
// in, and shared by every tab of the app: a sign-in link opened in another
// tab, or sign-out in one, reaches all of them (the storage event).
// Sign-out forgets the token, the queued readings and retake requests
// (IndexedDB), the app's caches and push subscription, and every setting
// that names the patient.

import { Api, ApiError } from "../../console/assets/api.js";
import { wipe } from "./store.js";
import { forgetKeys } from "../../console/assets/keys.js";

const KEY = "tend.app.session";
const OIDC_KEY = "tend.app.oidc"; // per tab: the sign-in under way

export { ApiError };

// loadConfig reads config.json (the server's VAPID key, sign-on provider,
// idle lock and branding).
export async function loadConfig() {
  try {
    const res = await fetch("config.json", { cache: "no-cache" });
    if (res.ok) return await res.json();
  } catch {
    // offline: the service worker's copy, or the defaults
  }
  return { name: "Tend", idle_lock_seconds: 300, vapid_public_key: "", api_base: "" };
}

// api builds the API client for a token; base is config.api_base ("" on
// the same origin as tend).
// A 401 from any call means the sign-in ended (a revoked token, an expired
// ID token): the app hears it as the "tend:signed-out" event.
export function api(token, base = "") {
  const f = async (path, init) => {
    const res = await globalThis.fetch(path.startsWith("/v1/") ? base + path : path, init);
    if (res.status === 401 && path.startsWith("/v1/")) dispatchEvent(new CustomEvent("tend:signed-out"));
    return res;
  };
  return new Api(token, f);
}

// drop forgets the token but keeps what the phone holds for the patient
// (readings waiting, retake requests): signing in again as the same
// patient sends them.
export function drop() {
  localStorage.removeItem(KEY);
}

export function current() {
  try {
    const s = JSON.parse(localStorage.getItem(KEY) || "null");
    return s && s.token ? s : null;
  } catch {
    return null;
  }
}

// tokenFromFragment returns the token of a sign-in link (#token=…) and
// removes it from the address bar and the history at once.
export function tokenFromFragment() {
  const m = /^#token=([^&]+)/.exec(location.hash);
  if (!m) return "";
  history.replaceState(null, "", location.pathname + "#/");
  return decodeURIComponent(m[1]);
}

// identify finds which patient the token acts for, from the caller's
// threads: a patient has one with each of their care teams, all about
// them. Anyone else (staff see team channels, or threads about several
// patients) is refused.
export async function identify(client) {
  const threads = await client.get("/v1/threads?limit=100");
  const items = threads?.items || [];
  const ids = new Set(items.map((t) => t.patient_id).filter(Boolean));
  if (items.some((t) => t.kind !== "patient") || ids.size !== 1) {
    throw new Error("This app is for patients. Care teams use the console.");
  }
  return [...ids][0];
}

// signIn checks a token with the API and keeps the session. A different
// patient than the one signed in before starts from a clean phone.
export async function signIn(token, base, how = "token") {
  const client = api(token, base);
  const patientID = await identify(client);
  const before = current();
  if (before && before.patient_id !== patientID) await forget(before, base);
  localStorage.setItem(KEY, JSON.stringify({ token, patient_id: patientID, how, at: Date.now() }));
  return { token, patient_id: patientID, how };
}

// forget removes everything the app kept for a session: the token, the
// push subscription (and its device on the server, while the token still
// works), queued readings, retake requests, caches and per-patient
// settings. Units, text size and contrast stay: they are the phone's.
export async function forget(session, base = "") {
  const device = localStorage.getItem("tend.app.device");
  try {
    const reg = await navigator.serviceWorker?.getRegistration?.();
    const sub = await reg?.pushManager?.getSubscription();
    if (sub) await sub.unsubscribe();
  } catch {
    // no push here
  }
  if (session && device) {
    try {
      await api(session.token, base).del(`/v1/me/devices/${encodeURIComponent(device)}`);
    } catch {
      // the token may no longer work: the device is dropped by the push service later
    }
  }
  await forgetKeys(api(session?.token || "", base)).catch(() => {});
  for (const k of [KEY, "tend.app.device", "tend.app.lock", "tend.app.active", "tend.app.threads"]) localStorage.removeItem(k);
  sessionStorage.clear();
  await wipe();
  if (globalThis.caches) {
    for (const name of await caches.keys()) await caches.delete(name);
  }
}

// OpenID Connect sign-in: authorization code with PKCE, against the
// provider the API trusts. The ID token it returns is the bearer token.

function b64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function random() {
  return b64url(crypto.getRandomValues(new Uint8Array(32)));
}

function redirectURI() {
  return location.origin + location.pathname;
}

async function discover(issuer) {
  const res = await fetch(issuer.replace(/\/$/, "") + "/.well-known/openid-configuration", { cache: "no-store" });
  if (!res.ok) throw new Error("The sign-in service is not available. Please try again later.");
  return res.json();
}

// startOIDC sends the browser to the provider's sign-in page.
export async function startOIDC(oidc) {
  const meta = await discover(oidc.issuer);
  const verifier = random(), state = random(), nonce = random();
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem(OIDC_KEY, JSON.stringify({ verifier, state, nonce }));
  const q = new URLSearchParams({ response_type: "code", client_id: oidc.client_id, redirect_uri: redirectURI(),
    scope: "openid", state, nonce, code_challenge: challenge, code_challenge_method: "S256" });
  location.assign(`${meta.authorization_endpoint}?${q}`);
}

// finishOIDC completes a sign-in when the provider sent the browser back
// (?code=…&state=…): it exchanges the code for an ID token, checks the
// state and nonce, and removes the code from the address bar. It returns
// the ID token, or "" when this page load is no such return.
export async function finishOIDC(oidc) {
  const q = new URLSearchParams(location.search);
  if (!q.has("code") && !q.has("error")) return "";
  history.replaceState(null, "", location.pathname + "#/");
  const pending = JSON.parse(sessionStorage.getItem(OIDC_KEY) || "null");
  sessionStorage.removeItem(OIDC_KEY);
  if (q.has("error") || !pending || q.get("state") !== pending.state || !oidc) {
    throw new Error("The sign-in did not complete. Please try again.");
  }
  const meta = await discover(oidc.issuer);
  const res = await fetch(meta.token_endpoint, {
    method: "POST", cache: "no-store", credentials: "omit",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "authorization_code", code: q.get("code"), redirect_uri: redirectURI(),
      client_id: oidc.client_id, code_verifier: pending.verifier }),
  });
  const body = res.ok ? await res.json() : null;
  const idToken = body?.id_token;
  if (!idToken) throw new Error("The sign-in did not complete. Please try again.");
  const claims = JSON.parse(atob(idToken.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
  if (claims.nonce !== pending.nonce) throw new Error("The sign-in did not complete. Please try again.");
  return idToken;
}
