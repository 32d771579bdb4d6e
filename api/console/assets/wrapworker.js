// A Web Worker of the key-wrapping pool (wrappool.js): it wraps a message's
// content key to the public keys it is given (HPKE base mode with
// MLKEM768-X25519, docs/e2ee.md "Sealing", step 4) with e2ee.js's wrapKey,
// off the page's thread. It holds nothing between messages.
import { wrapKey } from "./e2ee.js";

self.onmessage = async ({ data: { id, key, jobs } }) => {
  try {
    // All at once: each encapsulation awaits WebCrypto between its parts.
    const wraps = await Promise.all(jobs.map(({ publicKey, aad }) => wrapKey(key, publicKey, aad)));
    self.postMessage({ id, wraps });
  } catch (e) {
    self.postMessage({ id, error: e instanceof Error ? e.message : String(e) });
  }
};
