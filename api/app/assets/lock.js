// The idle lock, for phones that are shared: after a time without use (the
// server's idle_lock_seconds, or a shorter time the patient chose) the app
// hides everything. With a lock code the patient unlocks it; without one,
// or after five wrong codes, the app signs out. The time of last use is kept
// in localStorage, so reopening the app after the limit locks it too.

const ACTIVE = "tend.app.active";
const CODE = "tend.app.lock";
const ITERATIONS = 150000;

// idleLimit is the lock time in ms: the patient's choice when shorter than
// the server's.
export function idleLimit(config, prefs) {
  const server = (config.idle_lock_seconds || 300) * 1000;
  const mine = Number(prefs.lock_minutes || 0) * 60000;
  return mine > 0 ? Math.min(mine, server) : server;
}

// isIdle says whether the last use (ms) is longer ago than limit.
export function isIdle(last, now, limit) {
  return Number.isFinite(last) && now - last >= limit;
}

export function touch(now = Date.now()) {
  localStorage.setItem(ACTIVE, String(now));
}

export function lastActive() {
  const v = Number(localStorage.getItem(ACTIVE));
  return v > 0 ? v : NaN;
}

async function derive(code, salt) {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(code), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations: ITERATIONS }, key, 256);
  return btoa(String.fromCharCode(...new Uint8Array(bits)));
}

export function hasCode() {
  return !!localStorage.getItem(CODE);
}

// setCode keeps a salted PBKDF2 hash of the lock code, never the code.
export async function setCode(code) {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  localStorage.setItem(CODE, JSON.stringify({ salt: btoa(String.fromCharCode(...salt)), hash: await derive(code, salt), tries: 0 }));
}

export function clearCode() {
  localStorage.removeItem(CODE);
}

// checkCode resolves "ok", "wrong" or "locked-out" (five wrong codes).
export async function checkCode(code) {
  const saved = JSON.parse(localStorage.getItem(CODE) || "null");
  if (!saved) return "locked-out";
  const salt = Uint8Array.from(atob(saved.salt), (c) => c.charCodeAt(0));
  if ((await derive(code, salt)) === saved.hash) {
    localStorage.setItem(CODE, JSON.stringify({ ...saved, tries: 0 }));
    return "ok";
  }
  saved.tries = (saved.tries || 0) + 1;
  localStorage.setItem(CODE, JSON.stringify(saved));
  return saved.tries >= 5 ? "locked-out" : "wrong";
}

// IdleWatch calls onIdle once the app has been unused for limit() ms.
export class IdleWatch {
  constructor(limit, onIdle) {
    this.limit = limit;
    this.onIdle = onIdle;
    this.bump = () => touch();
    this.check = () => {
      if (isIdle(lastActive(), Date.now(), this.limit())) this.onIdle();
    };
  }

  start() {
    for (const ev of ["pointerdown", "keydown", "input", "scroll"]) addEventListener(ev, this.bump, { passive: true, capture: true });
    document.addEventListener("visibilitychange", this.check);
    this.timer = setInterval(this.check, 5000);
  }

  stop() {
    for (const ev of ["pointerdown", "keydown", "input", "scroll"]) removeEventListener(ev, this.bump, { capture: true });
    document.removeEventListener("visibilitychange", this.check);
    clearInterval(this.timer);
  }
}
