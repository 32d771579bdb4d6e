// X25519 by WebCrypto for the X-Wing KEM of ../vendor/hpke.js. The bundle
// computes X-Wing's X25519 half in JavaScript with BigInt arithmetic, which
// is most of a key wrap's time (two X25519 per wrap against one ML-KEM
// encapsulation); browsers have X25519 built into WebCrypto, which gives
// the same bytes (RFC 7748) far faster. nativeX25519 swaps it in for one
// KEM instance; where WebCrypto lacks X25519, or refuses an input, the
// bundle's own code answers (and raises the bundle's own errors).

const PKCS8_X25519 = Uint8Array.of(0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04,
  0x20); // PKCS #8 for an X25519 private key (RFC 8410), before its 32 bytes
const X25519 = { name: "X25519" };

const isBase = (u) => u.length === 32 && u[0] === 9 && u.every((b, i) => i === 0 || b === 0);

function fromB64url(s) {
  const t = s.replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(t + "=".repeat((4 - (t.length % 4)) % 4)), (c) => c.charCodeAt(0));
}

// x25519 is X25519(scalar, u): the public key of scalar when u is the base
// point, the shared secret otherwise.
async function x25519(scalar, u) {
  const pkcs8 = new Uint8Array(48);
  pkcs8.set(PKCS8_X25519);
  pkcs8.set(scalar, 16);
  const base = isBase(u);
  const priv = await crypto.subtle.importKey("pkcs8", pkcs8, X25519, base, ["deriveBits"]);
  pkcs8.fill(0);
  if (base) return fromB64url((await crypto.subtle.exportKey("jwk", priv)).x);
  const pub = await crypto.subtle.importKey("raw", u, X25519, true, []);
  return new Uint8Array(await crypto.subtle.deriveBits({ name: "X25519", public: pub }, priv, 256));
}

// nativeX25519 makes kem (an XWing of ../vendor/hpke.js) compute X25519
// with WebCrypto. It changes nothing when kem has no X25519 part of the
// shape it expects (another version of the bundle).
export function nativeX25519(kem) {
  const part = kem._x25519;
  if (typeof part?.derive !== "function" || !globalThis.crypto?.subtle) return;
  const inJS = part.derive.bind(part);
  let native = true;
  part.derive = async (sk, pk) => {
    if (native && sk.length === 32 && pk.length === 32) {
      try {
        return await x25519(sk, pk);
      } catch (e) {
        if (e?.name === "NotSupportedError") native = false; // no X25519 in this WebCrypto
      }
    }
    return inJS(sk, pk);
  };
}
