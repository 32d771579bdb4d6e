package e2ee

import (
	"fmt"
	"strings"
)

// The one cipher suite of versions 1 and 2. An envelope naming any other is
// refused.
const (
	Version  = 1      // envelope version 1: the sealed content is the text
	Version2 = 2      // envelope version 2: the sealed content is a Content (text and attachments)
	KEMID    = 0x647a // MLKEM768-X25519 (X-Wing), draft-ietf-hpke-pq
	KDFID    = 0x0001 // HKDF-SHA256
	AEADID   = 0x0002 // AES-256-GCM, for the HPKE wrap and for the content
)

// Sizes of version 1's binary fields, in bytes.
const (
	PublicKeySize     = 1216 // an X-Wing public key
	PrivateKeySize    = 32   // an X-Wing private key: its seed
	EncSize           = 1120 // an X-Wing encapsulated key
	ContentKeySize    = 32   // the AES-256-GCM content key
	WrappedKeySize    = ContentKeySize + 16
	NonceSize         = 12
	SignatureSize     = 64 // Ed25519
	SigningKeySize    = 32 // an Ed25519 public key
	MaxPlaintext      = 64 << 10
	MaxCiphertextSize = MaxPlaintext + 16
	MaxRecipients     = 500
	MaxAttachments    = 10        // attachments of one version 2 envelope
	MaxSenderSeq      = 1<<53 - 1 // the largest integer every JSON reader keeps exact
)

// Suite names the HPKE cipher suite of an envelope.
type Suite struct {
	KEM  uint16 `json:"kem"`
	KDF  uint16 `json:"kdf"`
	AEAD uint16 `json:"aead"`
}

// Wrap is the content key sealed with HPKE to one recipient: a device (ID is
// its device id) or the organisation's record key (ID is its key id).
type Wrap struct {
	ID         string `json:"id"`
	Enc        Bytes  `json:"enc"`
	WrappedKey Bytes  `json:"wrapped_key"`
}

// Envelope is an encrypted message as clients post it and the server stores
// and relays it. Its JSON form is the wire format (docs/e2ee.md).
type Envelope struct {
	Version      int    `json:"v"`
	Suite        Suite  `json:"suite"`
	ThreadID     string `json:"thread_id"`
	SenderDevice string `json:"sender_device_id"`
	// SenderSeq numbers the sender device's messages in the thread from 1,
	// strictly increasing. It is chosen by the sender (the server's thread
	// sequence is not known before the server stores the message) and bound
	// as associated data, so a replayed or reordered envelope is evident.
	SenderSeq  uint64 `json:"sender_seq"`
	Nonce      Bytes  `json:"nonce"`
	Ciphertext Bytes  `json:"ciphertext"`
	// Attachments (version 2 only) are the ids of the encrypted attachments
	// the sealed content references, in its order: the server checks that
	// each is an encrypted attachment the sender uploaded to this thread, and
	// the signature covers them. Empty in version 1.
	Attachments []string `json:"attachments,omitempty"`
	Recipients  []Wrap   `json:"recipients"`
	Record      Wrap     `json:"record"`
	Signature   Bytes    `json:"signature"`
}

// FieldError is a problem with one field of an envelope or key.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Check validates an envelope's shape: version, suite, identifiers and the
// size of every binary field. It does not verify the signature (the server
// does not know which keys a client trusts) nor open anything. Problems are
// *FieldError.
func Check(e *Envelope) error {
	switch {
	case e.Version != Version && e.Version != Version2:
		return fieldErr("v", "must be %d or %d", Version, Version2)
	case e.Suite.KEM != KEMID:
		return fieldErr("suite.kem", "unsupported KEM id (want %d, MLKEM768-X25519)", KEMID)
	case e.Suite.KDF != KDFID:
		return fieldErr("suite.kdf", "unsupported KDF id (want %d, HKDF-SHA256)", KDFID)
	case e.Suite.AEAD != AEADID:
		return fieldErr("suite.aead", "unsupported AEAD id (want %d, AES-256-GCM)", AEADID)
	case !IsID(e.ThreadID):
		return fieldErr("thread_id", "must be a lowercase UUID")
	case !IsID(e.SenderDevice):
		return fieldErr("sender_device_id", "must be a lowercase UUID")
	case e.SenderSeq == 0 || e.SenderSeq > MaxSenderSeq:
		return fieldErr("sender_seq", "must be between 1 and 2^53-1")
	case len(e.Nonce) != NonceSize:
		return fieldErr("nonce", "must be %d bytes", NonceSize)
	case len(e.Ciphertext) < 16 || len(e.Ciphertext) > MaxCiphertextSize:
		return fieldErr("ciphertext", "must be 16 to %d bytes", MaxCiphertextSize)
	case len(e.Recipients) == 0 || len(e.Recipients) > MaxRecipients:
		return fieldErr("recipients", "must list 1 to %d devices", MaxRecipients)
	case len(e.Signature) != SignatureSize:
		return fieldErr("signature", "must be %d bytes", SignatureSize)
	}
	if err := checkAttachmentIDs(e); err != nil {
		return err
	}
	seen := make(map[string]bool, len(e.Recipients))
	for i, w := range e.Recipients {
		field := func() string { return fmt.Sprintf("recipients[%d]", i) } // spelt out only for an error
		if !IsID(w.ID) {
			return fieldErr(field()+".id", "must be a lowercase UUID")
		}
		if seen[w.ID] {
			return fieldErr(field()+".id", "is listed twice")
		}
		seen[w.ID] = true
		if !wrapOK(w) {
			return checkWrap(field(), w)
		}
	}
	if !IsKeyID(e.Record.ID) {
		return fieldErr("record.id", "must be a record key id (32 lowercase hex digits)")
	}
	return checkWrap("record", e.Record)
}

// checkAttachmentIDs checks the attachment list: none in version 1, at most
// MaxAttachments distinct lowercase UUIDs in version 2.
func checkAttachmentIDs(e *Envelope) error {
	if e.Version == Version && len(e.Attachments) > 0 {
		return fieldErr("attachments", "are carried by version %d envelopes only", Version2)
	}
	if len(e.Attachments) > MaxAttachments {
		return fieldErr("attachments", "at most %d per message", MaxAttachments)
	}
	seen := make(map[string]int, len(e.Attachments))
	for i, id := range e.Attachments {
		if !IsID(id) {
			return fieldErr(fmt.Sprintf("attachments[%d]", i), "must be a lowercase UUID")
		}
		if j, ok := seen[id]; ok {
			return fieldErr(fmt.Sprintf("attachments[%d]", i), "repeats attachments[%d]", j)
		}
		seen[id] = i
	}
	return nil
}

// wrapOK reports whether checkWrap accepts w.
func wrapOK(w Wrap) bool { return len(w.Enc) == EncSize && len(w.WrappedKey) == WrappedKeySize }

func checkWrap(field string, w Wrap) error {
	if len(w.Enc) != EncSize {
		return fieldErr(field+".enc", "must be %d bytes", EncSize)
	}
	if len(w.WrappedKey) != WrappedKeySize {
		return fieldErr(field+".wrapped_key", "must be %d bytes", WrappedKeySize)
	}
	return nil
}

// IsID reports whether s is a UUID in its canonical lowercase form, the
// spelling every thread and device id takes in an envelope.
func IsID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isLowerHex(c) {
				return false
			}
		}
	}
	return true
}

// IsKeyID reports whether s has the form of a record key id.
func IsKeyID(s string) bool {
	return len(s) == 32 && strings.IndexFunc(s, func(c rune) bool { return !isLowerHex(c) }) < 0
}

func isLowerHex(c rune) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }
