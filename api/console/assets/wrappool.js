// The pool of Web Workers (wrapworker.js) that wrap a message's content key
// to its recipients' keys: the ML-KEM encapsulations are nearly all of a
// seal's time in JavaScript, so e2ee.js's seal spreads them over one worker
// per core instead of running them on the page's thread. The workers start
// at the first seal (or at warmUp) and are reused. Where workers are not
// available, or one fails, the wraps run on the page's thread instead.

const SIZE = Math.max(1, Math.min(globalThis.navigator?.hardwareConcurrency || 2, 8));

let pool = null; // the workers, each {worker, pending: Map(id → {resolve, reject})}
let nextID = 0;

// warmUp starts the workers ahead of the first seal (a page that is about
// to send encrypted messages), so that seal does not wait for them.
export function warmUp() {
  if (pool !== null) return;
  pool = [];
  if (typeof Worker === "undefined") return;
  try {
    for (let i = 0; i < SIZE; i++) pool.push(start());
  } catch {
    pool = []; // not allowed here: the page's thread does the work
  }
}

function start() {
  const w = { worker: new Worker(new URL("./wrapworker.js", import.meta.url), { type: "module", name: "tend-e2ee-wrap" }),
    pending: new Map() };
  w.worker.onmessage = ({ data }) => {
    const p = w.pending.get(data.id);
    if (!p) return;
    w.pending.delete(data.id);
    if (data.error) p.reject(new Error(data.error));
    else p.resolve(data.wraps);
  };
  w.worker.onerror = (ev) => {
    ev.preventDefault();
    retire(w, new Error("the key-wrapping worker failed: " + (ev.message || "it did not start")));
  };
  return w;
}

// retire takes a failed worker out of the pool, failing what it was given
// (its callers then wrap on the page's thread).
function retire(w, err) {
  pool = pool.filter((x) => x !== w);
  w.worker.terminate();
  for (const p of w.pending.values()) p.reject(err);
  w.pending.clear();
}

function run(w, key, jobs) {
  return new Promise((resolve, reject) => {
    const id = ++nextID;
    w.pending.set(id, { resolve, reject });
    w.worker.postMessage({ id, key, jobs });
  });
}

// wrapAll wraps key to each job ({publicKey, aad}) and returns, in the same
// order, each {enc, wrappedKey}: the jobs are split evenly over the
// workers; a share whose worker fails is wrapped here by here(key,
// publicKey, aad).
export async function wrapAll(key, jobs, here) {
  warmUp();
  const workers = pool.slice(0, jobs.length);
  const onThread = (share) => Promise.all(share.map(({ publicKey, aad }) => here(key, publicKey, aad)));
  if (workers.length === 0) return onThread(jobs);
  const shares = workers.map((_, i) => jobs.filter((_, j) => j % workers.length === i));
  const done = await Promise.all(shares.map((share, i) => run(workers[i], key, share).catch(() => onThread(share))));
  return jobs.map((_, j) => done[j % workers.length][Math.floor(j / workers.length)]);
}
