// Package e2ee is Tend's end-to-end encryption of conversation messages: the
// envelope, its wire format and the cryptography that seals and opens it. It
// is pure (no network, database, clock, logging or files) and imports only the
// standard library, so every client written in Go and the server share one
// definition, and docs/e2ee.md describes the same bytes for everyone else.
//
// A message is encrypted once under a fresh AES-256-GCM content key; the key is
// wrapped with HPKE (RFC 9180, KEM MLKEM768-X25519 "X-Wing", HKDF-SHA256,
// AES-256-GCM) to every recipient device and to the organisation's record key;
// the sender device signs the whole envelope with Ed25519. The thread, the
// sender device and the sender's own sequence number are bound as associated
// data, so an envelope moved to another thread or position fails to open.
//
//	env, err := e2ee.Seal(e2ee.SealParams{ThreadID: t, SenderDevice: d, SenderSeq: 1,
//		Recipients: devices, Record: record, SigningKey: sk}, []byte("hello"))
//	plaintext, err := e2ee.Open(env, e2ee.OpenParams{ThreadID: t, RecipientID: me,
//		PrivateKey: mySeed, SenderKey: senderEd25519})
//
// A file is encrypted on the device under a key of its own (EncryptFile), its
// ciphertext uploaded, and its reference sealed in a version 2 envelope
// (SealParams.Attachments); the recipient opens the content (OpenContent) and
// checks and decrypts the downloaded ciphertext (DecryptFile).
//
//	ct, ref, err := e2ee.EncryptFile(t, d, "scan.pdf", "application/pdf", file)
//	// upload ct as application/vnd.tend.encrypted; ref.ID = the answer's id
//	c, err := e2ee.OpenContent(env, params)
//	file, err := e2ee.DecryptFile(env, c.Attachments[0], downloaded)
package e2ee
