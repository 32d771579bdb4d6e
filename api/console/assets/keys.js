// This browser's end-to-end encryption keys (docs/e2ee.md, "Device keys")
// and what it remembers about other devices. Everything lives in
// IndexedDB, per signed-in user: the X-Wing seed (bytes: WebCrypto has no
// X-Wing), the Ed25519 signing key as a non-extractable WebCrypto key, the
// fingerprints pinned at first sight, each thread's sender sequence and the
// sender sequences already accepted. Private keys never leave this origin's
// storage; the server gets the public halves only.

import { enc64, fingerprint, generateDeviceKeys, loadPrivateKey } from "./e2ee.js";

const DB_NAME = "tend-e2ee";
const STORES = ["devices", "state"];

function request(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

let opened = null;

function db() {
  opened ??= (async () => {
    const r = indexedDB.open(DB_NAME, 1);
    r.onupgradeneeded = () => { for (const s of STORES) if (!r.result.objectStoreNames.contains(s)) r.result.createObjectStore(s); };
    const conn = await request(r);
    // Another tab deleting the database (the app's sign-out) closes this one.
    conn.onversionchange = () => {
      conn.close();
      opened = null;
    };
    return conn;
  })();
  return opened;
}

async function get(store, key) {
  return request((await db()).transaction(store).objectStore(store).get(key));
}

async function put(store, key, value) {
  const tx = (await db()).transaction(store, "readwrite");
  tx.objectStore(store).put(value, key);
  await new Promise((resolve, reject) => {
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
  });
}

// Device is this browser's registered device for one user.
export class Device {
  constructor(rec) {
    Object.assign(this, rec);
    this.privateKey = null;
  }

  // key is the X-Wing private key, derived once from the seed.
  async key() {
    this.privateKey ??= await loadPrivateKey(this.hpkeSeed);
    return this.privateKey;
  }

  // state reads a value this device keeps about others (pins, sequences).
  state(key) {
    return get("state", `${this.user_id}|${key}`);
  }

  setState(key, value) {
    return put("state", `${this.user_id}|${key}`, value);
  }
}

// NO_KEYS and REVOKED are the plain words a user gets when this browser
// starts over with new keys.
export const NO_KEYS = "This browser had no encryption keys of yours (they were cleared, or this is a new browser), " +
  "so it has registered new ones. Encrypted messages sent before now were not encrypted for it and cannot be read here.";
export const REVOKED = "This browser's encryption keys were revoked, or the server no longer knows them, so it has " +
  "registered new ones. Encrypted messages sent to the old keys cannot be read here.";

export const LOST = "This browser lost its encryption keys, so it has revoked its old device and registered new keys. " +
  "Older messages cannot be opened on this device: they were encrypted for the lost keys, which no new message is " +
  "encrypted to.";

// lastDevice keeps, apart from the keys, the id of the device this browser
// registered for a user, so that a browser whose keys are gone (storage
// cleared, database lost) can still revoke the device it leaves behind.
const lastKey = (userID) => `tend-e2ee-device|${userID}`;
const lastDevice = {
  get: (userID) => { try { return localStorage.getItem(lastKey(userID)); } catch { return null; } },
  set: (userID, id) => { try { localStorage.setItem(lastKey(userID), id); } catch { /* storage refused: nothing to revoke later */ } },
  clear: () => {
    try {
      for (const k of Object.keys(localStorage)) if (k.startsWith("tend-e2ee-device|")) localStorage.removeItem(k);
    } catch { /* storage refused */ }
  },
};

// ensureDevice returns this browser's device for the signed-in user
// (userID), registering new keys (named label) when it has none or the
// server no longer lists them as current; notice says plainly what
// happened, if anything did. A browser that lost its keys revokes the
// device it registered before (known by its id, kept apart from the keys),
// so that it no longer counts towards the user's devices nor receives new
// messages. The patient app uses it too.
export async function ensureDevice(api, userID, label) {
  const registered = (await api.get("/v1/me/e2ee-devices")).items || [];
  const stored = await get("devices", userID);
  if (stored && registered.some((d) => d.id === stored.id && !d.revoked_at)) {
    lastDevice.set(userID, stored.id);
    return { device: new Device(stored), notice: "" };
  }
  const old = stored ? null : lastDevice.get(userID);
  const lost = old && registered.some((d) => d.id === old && !d.revoked_at);
  if (lost) await api.del(`/v1/me/e2ee-devices/${encodeURIComponent(old)}`);
  const notice = stored ? REVOKED : lost ? LOST : registered.some((d) => !d.revoked_at) ? NO_KEYS : "";
  const k = await generateDeviceKeys();
  const d = await api.post("/v1/me/e2ee-devices", { label, hpke_public_key: enc64(k.hpkePublic),
    signing_public_key: enc64(k.signingPublic) });
  const fp = await fingerprint(k.hpkePublic, k.signingPublic);
  if (d.fingerprint !== fp) throw new Error(`the server recorded the fingerprint ${d.fingerprint} for this browser's keys, whose fingerprint is ${fp}`);
  const rec = { user_id: userID, id: d.id, ...k, fingerprint: fp };
  await put("devices", userID, rec);
  lastDevice.set(userID, d.id);
  return { device: new Device(rec), notice };
}

// forgetKeys revokes this browser's devices (best effort: the token may no
// longer work) and deletes everything kept here, keys included. The patient
// app calls it on sign-out, which forgets everything on the phone.
export async function forgetKeys(api) {
  lastDevice.clear();
  if (!(await indexedDB.databases?.() || []).some((d) => d.name === DB_NAME)) return;
  const all = await request((await db()).transaction("devices").objectStore("devices").getAll());
  for (const d of all) await api.del(`/v1/me/e2ee-devices/${encodeURIComponent(d.id)}`).catch(() => {});
  (await db()).close();
  opened = null;
  await new Promise((resolve) => {
    const r = indexedDB.deleteDatabase(DB_NAME);
    r.onsuccess = r.onerror = r.onblocked = () => resolve();
  });
}
