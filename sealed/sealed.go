// Package sealed encrypts records at rest with AES-256-GCM under named keys,
// so keys can rotate: each ciphertext is stored with the id of the key that
// sealed it, the first key of a Keyring seals, and every key still opens.
//
// Associated data binds a ciphertext to its place (for a message body: the
// purpose, thread id and message id), so a ciphertext copied into another
// row does not open there:
//
//	ring, err := sealed.ParseKeyring(os.Getenv("TEND_ENCRYPTION_KEYS"))
//	...
//	aad := sealed.AAD("message.body", threadID, messageID)
//	keyID, ct := ring.Seal(body, aad)
//	// store keyID and ct; later:
//	body, err := ring.Open(keyID, ct, aad)
//
// The package uses only the standard library's crypto and encoding: it does
// no I/O and never logs, and its errors never contain key material.
package sealed

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Limits of a key text.
const (
	// KeySize is the length of every key: AES-256.
	KeySize = 32
	// MaxIDLen bounds a key id. A 32-byte key is 44 characters of base64, so
	// a key pasted where an id belongs is never a valid id and never echoed.
	MaxIDLen = 32
	// MaxKeys bounds how many keys one keyring holds.
	MaxKeys = 64
)

// version is the first byte of every ciphertext, so the format can change.
const version byte = 1

// Errors from Open. Neither says which check failed beyond this.
var (
	// ErrUnknownKey means the ciphertext names a key the keyring lacks.
	ErrUnknownKey = errors.New("sealed: unknown key id")
	// ErrOpen means the ciphertext does not authenticate: it was changed,
	// sealed for other associated data, or sealed by another key of that id.
	ErrOpen = errors.New("sealed: ciphertext does not authenticate")
)

// Keyring holds the keys that open ciphertexts; the first one seals. It is
// safe for concurrent use.
type Keyring struct {
	ids   []string
	aeads map[string]cipher.AEAD
}

// ParseKeyring parses "id:base64key,id:base64key,…": each key exactly 32
// bytes in standard base64, each id 1 to 32 characters of A–Z, a–z, 0–9, '_'
// and '-', ids unique. The first key is current. Spaces and newlines around
// entries are ignored. Errors name the entry by position (and by id when the
// id is valid) and never contain key material.
func ParseKeyring(text string) (*Keyring, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, errors.New("sealed: no keys: want id:base64key[,id:base64key…]")
	}
	entries := strings.Split(text, ",")
	if len(entries) > MaxKeys {
		return nil, fmt.Errorf("sealed: %d keys, at most %d", len(entries), MaxKeys)
	}
	k := &Keyring{aeads: make(map[string]cipher.AEAD, len(entries))}
	var errs []error
	for i, e := range entries {
		aead, id, err := parseEntry(strings.TrimSpace(e))
		if err != nil {
			errs = append(errs, fmt.Errorf("sealed: key entry %d: %w", i+1, err))
			continue
		}
		if _, dup := k.aeads[id]; dup {
			errs = append(errs, fmt.Errorf("sealed: key entry %d: id %q repeats an earlier entry", i+1, id))
			continue
		}
		k.ids = append(k.ids, id)
		k.aeads[id] = aead
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return k, nil
}

func parseEntry(e string) (cipher.AEAD, string, error) {
	id, b64, ok := strings.Cut(e, ":")
	switch {
	case e == "":
		return nil, "", errors.New("is empty")
	case !ok:
		return nil, "", errors.New("has no ':' between id and key")
	case !ValidID(id):
		return nil, "", fmt.Errorf("id must be 1 to %d characters of A-Z a-z 0-9 _ -", MaxIDLen)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		// The decoder's error is safe too, but say it in our words.
		return nil, "", fmt.Errorf("key %q is not standard base64", id)
	}
	defer clear(raw)
	if len(raw) != KeySize {
		return nil, "", fmt.Errorf("key %q is %d bytes, want %d", id, len(raw), KeySize)
	}
	aead, err := newAEAD(raw)
	if err != nil {
		return nil, "", fmt.Errorf("key %q: %w", id, err)
	}
	return aead, id, nil
}

// newAEAD is AES-256-GCM with random nonces under a 32-byte key.
func newAEAD(raw []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	return aead, nil
}

// seal is the ciphertext format of Seal: the version byte, then the AEAD's
// nonce, encrypted bytes and tag.
func seal(aead cipher.AEAD, plaintext, aad []byte) []byte {
	out := make([]byte, 1, 1+len(plaintext)+aead.Overhead())
	out[0] = version
	return aead.Seal(out, nil, plaintext, aad)
}

// open opens what seal made, or fails with ErrOpen.
func open(aead cipher.AEAD, ciphertext, aad []byte) ([]byte, error) {
	if len(ciphertext) < 1+aead.Overhead() || ciphertext[0] != version {
		return nil, ErrOpen
	}
	pt, err := aead.Open(nil, nil, ciphertext[1:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// ValidID reports whether id is a valid key id.
func ValidID(id string) bool {
	if id == "" || len(id) > MaxIDLen {
		return false
	}
	for _, c := range []byte(id) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Current returns the id of the key that seals.
func (k *Keyring) Current() string { return k.ids[0] }

// IDs returns every key id, current first.
func (k *Keyring) IDs() []string { return append([]string(nil), k.ids...) }

// NeedsRotation reports whether a ciphertext sealed under keyID should be
// re-sealed: its key is not the current one (or not in the keyring at all).
func (k *Keyring) NeedsRotation(keyID string) bool { return keyID != k.ids[0] }

// Seal encrypts plaintext under the current key, bound to aad, and returns
// the key's id and the ciphertext (a version byte, a random 96-bit nonce, the
// encrypted bytes and a 128-bit tag: 29 bytes longer than plaintext). One key
// must not seal more than 2³² records; rotate well before.
func (k *Keyring) Seal(plaintext, aad []byte) (keyID string, ciphertext []byte) {
	id := k.ids[0]
	return id, seal(k.aeads[id], plaintext, aad)
}

// Open decrypts a ciphertext sealed under keyID with the same aad. It fails
// with ErrUnknownKey or ErrOpen; it never returns unauthenticated bytes.
func (k *Keyring) Open(keyID string, ciphertext, aad []byte) ([]byte, error) {
	aead, ok := k.aeads[keyID]
	if !ok {
		return nil, ErrUnknownKey
	}
	return open(aead, ciphertext, aad)
}

// String describes the keyring by its ids only, so printing or logging a
// Keyring never shows key material.
func (k *Keyring) String() string {
	return fmt.Sprintf("sealed.Keyring{current: %s, keys: %d}", k.ids[0], len(k.ids))
}

// GoString is String, for %#v.
func (k *Keyring) GoString() string { return k.String() }

// Generate returns a new random key as keyring text, "id:base64key". Put it
// first in the key list to make it current; keep the old keys after it until
// every record is re-sealed.
func Generate(id string) (string, error) {
	if !ValidID(id) {
		return "", fmt.Errorf("sealed: id must be 1 to %d characters of A-Z a-z 0-9 _ -", MaxIDLen)
	}
	raw := make([]byte, KeySize)
	defer clear(raw)
	rand.Read(raw) // never fails; the runtime crashes if the OS cannot supply randomness
	return id + ":" + base64.StdEncoding.EncodeToString(raw), nil
}

// AAD builds associated data from parts, each length-prefixed so no two
// different lists encode alike ("ab","c" differs from "a","bc"). Start with a
// purpose ("message.body", "attachment") so one record's ciphertext never
// opens as another kind of record.
func AAD(parts ...string) []byte {
	n := 0
	for _, p := range parts {
		n += binary.MaxVarintLen64 + len(p)
	}
	out := make([]byte, 0, n)
	for _, p := range parts {
		out = binary.AppendUvarint(out, uint64(len(p)))
		out = append(out, p...)
	}
	return out
}

// Key is one AES-256-GCM key outside a keyring: a data key that belongs to
// one owner (a patient), stored only sealed under a keyring (Wrap) and
// destroyed with its owner, so that what it sealed opens nowhere after. It
// is safe for concurrent use.
type Key struct {
	aead cipher.AEAD
}

// NewKey returns a new random data key and its raw bytes, for wrapping.
// Clear the bytes once wrapped.
func NewKey() (*Key, []byte) {
	raw := make([]byte, KeySize)
	rand.Read(raw) // never fails
	k, err := KeyFrom(raw)
	if err != nil {
		panic(err) // unreachable: the size is right
	}
	return k, raw
}

// KeyFrom makes a Key of raw (32 bytes), as unwrapped.
func KeyFrom(raw []byte) (*Key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("sealed: data key is %d bytes, want %d", len(raw), KeySize)
	}
	aead, err := newAEAD(raw)
	if err != nil {
		return nil, fmt.Errorf("sealed: data key: %w", err)
	}
	return &Key{aead: aead}, nil
}

// Seal encrypts plaintext under k, bound to aad, in the format of
// Keyring.Seal.
func (k *Key) Seal(plaintext, aad []byte) []byte { return seal(k.aead, plaintext, aad) }

// Open decrypts a ciphertext sealed by k with the same aad, or fails with
// ErrOpen.
func (k *Key) Open(ciphertext, aad []byte) ([]byte, error) { return open(k.aead, ciphertext, aad) }

// String never shows key material.
func (k *Key) String() string { return "sealed.Key{}" }

// GoString is String, for %#v.
func (k *Key) GoString() string { return k.String() }
