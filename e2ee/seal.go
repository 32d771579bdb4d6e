package e2ee

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"errors"
	"fmt"
)

// Labels that separate the uses of one key or one byte string.
const (
	hpkeInfo       = "tend-e2ee-v1"
	contentLabel   = "tend-e2ee-v1 content"
	contentLabel2  = "tend-e2ee-v2 content"
	fileLabel      = "tend-e2ee-v2 attachment"
	wrapLabel      = "tend-e2ee-v1 wrap"
	signatureLabel = "tend-e2ee-v1 signature"
)

// Errors of Open. They say what failed, never why in more detail: a client
// shows each plainly.
var (
	ErrNotForMe      = errors.New("e2ee: the envelope holds no key for this device")
	ErrWrongThread   = errors.New("e2ee: the envelope belongs to another thread")
	ErrBadSignature  = errors.New("e2ee: the envelope's signature does not verify")
	ErrCannotUnwrap  = errors.New("e2ee: the content key cannot be unwrapped with this key")
	ErrCannotDecrypt = errors.New("e2ee: the content does not decrypt")
	// ErrBadContent: a version 2 envelope's content opened but is not a
	// well-formed Content, or lists other attachments than the envelope.
	ErrBadContent = errors.New("e2ee: the content is malformed or does not match the envelope's attachments")
)

// Recipient is a public key to wrap a content key to: a device (ID its device
// id) or the record key (ID its key id).
type Recipient struct {
	ID        string
	PublicKey []byte
}

// SealParams say who sends a message, where, and to whom.
type SealParams struct {
	ThreadID     string
	SenderDevice string
	SenderSeq    uint64
	Recipients   []Recipient // every current device of every participant, the sender's included
	Record       Recipient   // the organisation's record key
	SigningKey   ed25519.PrivateKey
	// Attachments are the encrypted files the message carries (EncryptFile,
	// then uploaded, ID set to the server's id): with any, the envelope is
	// version 2 and its content a Content; without, version 1 (the text).
	Attachments []FileRef
}

// Seal encrypts plaintext (the message's text) under a fresh content key,
// wraps it to every recipient and the record key, and signs the envelope.
// With attachments it seals a version 2 envelope whose content is a Content
// holding the text and each attachment's reference and key.
func Seal(p SealParams, plaintext []byte) (*Envelope, error) {
	key := make([]byte, ContentKeySize)
	nonce := make([]byte, NonceSize)
	rand.Read(key)
	rand.Read(nonce)
	return sealWith(p, key, nonce, plaintext)
}

// sealWith is Seal with the content key and nonce given (the test vectors).
func sealWith(p SealParams, key, nonce, plaintext []byte) (*Envelope, error) {
	e := &Envelope{
		Version: Version, Suite: Suite{KEM: KEMID, KDF: KDFID, AEAD: AEADID},
		ThreadID: p.ThreadID, SenderDevice: p.SenderDevice, SenderSeq: p.SenderSeq, Nonce: nonce,
	}
	if len(p.Attachments) > 0 {
		content, ids, err := encodeContent(string(plaintext), p.Attachments)
		if err != nil {
			return nil, err
		}
		e.Version, e.Attachments, plaintext = Version2, ids, content
	}
	if len(plaintext) > MaxPlaintext {
		return nil, fieldErr("plaintext", "longer than %d bytes", MaxPlaintext)
	}
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	e.Ciphertext = gcm.Seal(nil, nonce, plaintext, e.contentAAD())
	for _, r := range p.Recipients {
		w, err := e.wrap(r, key)
		if err != nil {
			return nil, err
		}
		e.Recipients = append(e.Recipients, w)
	}
	if e.Record, err = e.wrap(p.Record, key); err != nil {
		return nil, err
	}
	e.Signature = ed25519.Sign(p.SigningKey, e.SignedBytes())
	if err := Check(e); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return e, nil
}

func (e *Envelope) wrap(r Recipient, key []byte) (Wrap, error) {
	pub, err := hpke.MLKEM768X25519().NewPublicKey(r.PublicKey)
	if err != nil {
		return Wrap{}, fmt.Errorf("recipient %s: public key: %w", r.ID, err)
	}
	enc, s, err := hpke.NewSender(pub, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte(hpkeInfo))
	if err != nil {
		return Wrap{}, fmt.Errorf("recipient %s: hpke: %w", r.ID, err)
	}
	wrapped, err := s.Seal(e.wrapAAD(r.ID), key)
	if err != nil {
		return Wrap{}, fmt.Errorf("recipient %s: wrap: %w", r.ID, err)
	}
	return Wrap{ID: r.ID, Enc: enc, WrappedKey: wrapped}, nil
}

// OpenParams say who opens an envelope and what they expect of it.
type OpenParams struct {
	ThreadID    string            // the thread the client fetched the envelope from
	RecipientID string            // this device's id, or the record key's id
	PrivateKey  []byte            // this device's (or the record key's) 32-byte X-Wing seed
	SenderKey   ed25519.PublicKey // the sender device's registered signing key
}

// Open verifies an envelope's signature with the sender's key and decrypts it
// with this device's (or the record's) private key. It returns the text: a
// version 1 envelope's content, or a version 2 envelope's Content.Text
// (OpenContent returns its attachments too).
func Open(e *Envelope, p OpenParams) ([]byte, error) {
	c, err := OpenContent(e, p)
	if err != nil {
		return nil, err
	}
	return []byte(c.Text), nil
}

// OpenContent is Open returning the whole content: the text and, for a
// version 2 envelope, the attachments, checked against the envelope's list.
func OpenContent(e *Envelope, p OpenParams) (*Content, error) {
	pt, err := openContent(e, p)
	if err != nil {
		return nil, err
	}
	if e.Version == Version {
		return &Content{Text: string(pt), Attachments: []FileRef{}}, nil
	}
	return decodeContent(pt, e.Attachments)
}

func openContent(e *Envelope, p OpenParams) ([]byte, error) {
	if err := Check(e); err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	if e.ThreadID != p.ThreadID {
		return nil, ErrWrongThread
	}
	if len(p.SenderKey) != ed25519.PublicKeySize || !ed25519.Verify(p.SenderKey, e.SignedBytes(), e.Signature) {
		return nil, ErrBadSignature
	}
	w, ok := e.wrapFor(p.RecipientID)
	if !ok {
		return nil, ErrNotForMe
	}
	priv, err := hpke.MLKEM768X25519().NewPrivateKey(p.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("open: private key: %w", err)
	}
	r, err := hpke.NewRecipient(w.Enc, priv, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte(hpkeInfo))
	if err != nil {
		return nil, ErrCannotUnwrap
	}
	key, err := r.Open(e.wrapAAD(w.ID), w.WrappedKey)
	if err != nil {
		return nil, ErrCannotUnwrap
	}
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	pt, err := gcm.Open(nil, e.Nonce, e.Ciphertext, e.contentAAD())
	if err != nil {
		return nil, ErrCannotDecrypt
	}
	return pt, nil
}

func (e *Envelope) wrapFor(id string) (Wrap, bool) {
	if e.Record.ID == id {
		return e.Record, true
	}
	for _, w := range e.Recipients {
		if w.ID == id {
			return w, true
		}
	}
	return Wrap{}, false
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("content key: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("content key: %w", err)
	}
	return gcm, nil
}

// contentAAD binds the content to its thread, sender device and sender
// sequence (and, by its label, to the envelope's version).
func (e *Envelope) contentAAD() []byte {
	label := contentLabel
	if e.Version == Version2 {
		label = contentLabel2
	}
	b := appendField(nil, []byte(label))
	b = appendField(b, []byte(e.ThreadID))
	b = appendField(b, []byte(e.SenderDevice))
	return appendUint64(b, e.SenderSeq)
}

// wrapAAD binds a wrapped content key to the same and to its recipient.
func (e *Envelope) wrapAAD(recipientID string) []byte {
	b := appendField(nil, []byte(wrapLabel))
	b = appendField(b, []byte(e.ThreadID))
	b = appendField(b, []byte(e.SenderDevice))
	b = appendUint64(b, e.SenderSeq)
	return appendField(b, []byte(recipientID))
}

// SignedBytes is what the sender's Ed25519 signature covers: every field of
// the envelope but the signature, framed as docs/e2ee.md describes.
func (e *Envelope) SignedBytes() []byte {
	b := appendField(nil, []byte(signatureLabel))
	b = appendUint16(b, uint16(e.Version))
	b = appendUint16(b, e.Suite.KEM)
	b = appendUint16(b, e.Suite.KDF)
	b = appendUint16(b, e.Suite.AEAD)
	b = appendField(b, []byte(e.ThreadID))
	b = appendField(b, []byte(e.SenderDevice))
	b = appendUint64(b, e.SenderSeq)
	b = appendField(b, e.Nonce)
	b = appendField(b, e.Ciphertext)
	if e.Version == Version2 {
		b = appendUint32(b, uint32(len(e.Attachments)))
		for _, id := range e.Attachments {
			b = appendField(b, []byte(id))
		}
	}
	b = appendUint32(b, uint32(len(e.Recipients)))
	for _, w := range e.Recipients {
		b = w.append(b)
	}
	return e.Record.append(b)
}

func (w Wrap) append(b []byte) []byte {
	b = appendField(b, []byte(w.ID))
	b = appendField(b, w.Enc)
	return appendField(b, w.WrappedKey)
}
