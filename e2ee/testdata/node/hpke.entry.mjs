// The entry of api/console/vendor/hpke.js: the parts of @hpke/core and
// @hpke/hybridkem-x-wing that api/console/assets/e2ee.js uses, bundled into
// one ECMAScript module by `make hpke-bundle` (esbuild, pinned here).
export { Aes256Gcm, CipherSuite, HkdfSha256 } from "@hpke/core";
export { XWing } from "@hpke/hybridkem-x-wing";
