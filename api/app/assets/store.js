// What the app keeps on the phone, in IndexedDB: the outbox of readings not
// yet accepted by the server, and the retake requests waiting for a second
// reading. Both belong to the signed-in patient; sign-out deletes the whole
// database (wipe).

const DB = "tend-app";
const VERSION = 1;

let opening = null;

function open() {
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      const req = indexedDB.open(DB, VERSION);
      req.onupgradeneeded = () => {
        const db = req.result;
        db.createObjectStore("outbox", { keyPath: "reading.source_id" });
        db.createObjectStore("retakes", { keyPath: "reading_id" });
      };
      req.onsuccess = () => {
        const db = req.result;
        // Another tab deleting the database (sign-out) closes this one.
        db.onversionchange = () => {
          db.close();
          opening = null;
        };
        resolve(db);
      };
      req.onerror = () => {
        opening = null;
        reject(req.error);
      };
    });
  }
  return opening;
}

// tx runs fn(store) in one transaction and resolves when it has committed,
// so that a write is on disk before the app goes on (a reading is never
// lost when the tab closes after "Saved").
async function tx(name, mode, fn) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const t = db.transaction(name, mode, { durability: "strict" });
    let out;
    const r = fn(t.objectStore(name));
    if (r) r.onsuccess = () => { out = r.result; };
    t.oncomplete = () => resolve(out);
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error);
  });
}

export const outbox = {
  // add keeps a reading to send: {reading, patient_id, queued_at, error?}.
  add: (item) => tx("outbox", "readwrite", (s) => s.put(item)),
  all: () => tx("outbox", "readonly", (s) => s.getAll()),
  remove: (sourceIDs) => tx("outbox", "readwrite", (s) => { for (const id of sourceIDs) s.delete(id); }),
  put: (items) => tx("outbox", "readwrite", (s) => { for (const it of items) s.put(it); }),
};

export const retakes = {
  // add keeps a retake request: {reading_id, rule_id, kind, retake_by}.
  add: (items) => tx("retakes", "readwrite", (s) => { for (const it of items) s.put(it); }),
  all: () => tx("retakes", "readonly", (s) => s.getAll()),
  remove: (ids) => tx("retakes", "readwrite", (s) => { for (const id of ids) s.delete(id); }),
};

// wipe deletes the database: every queued reading and retake request.
export async function wipe() {
  if (opening) {
    try {
      (await opening).close();
    } catch {
      // never opened
    }
    opening = null;
  }
  await new Promise((resolve) => {
    const req = indexedDB.deleteDatabase(DB);
    req.onsuccess = req.onerror = req.onblocked = () => resolve();
  });
}
