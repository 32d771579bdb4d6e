package webpush

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// headerSize is the aes128gcm header before the record: salt (16), record
// size (4), key id length (1) and the key id, the sender's uncompressed
// P-256 public key (65).
const headerSize = 16 + 4 + 1 + 65

// encrypt returns the aes128gcm body (RFC 8188, keyed as RFC 8291 says) of
// payload for the subscription whose public key is ua and authentication
// secret auth: one record whose plaintext is the payload, the final-record
// delimiter 0x02 and zero padding, sized so that the body is size bytes
// (BodySize). Every message gets a fresh sender key pair and salt.
func encrypt(payload []byte, ua *ecdh.PublicKey, auth []byte, size int) ([]byte, error) {
	plainLen := size - headerSize - 16 // the GCM tag
	if len(payload)+1 > plainLen {
		return nil, fmt.Errorf("webpush: payload of %d bytes does not fit a body of %d", len(payload), size)
	}
	as, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("webpush: sender key: %w", err)
	}
	shared, err := as.ECDH(ua)
	if err != nil {
		return nil, fmt.Errorf("webpush: key agreement: %w", err)
	}
	asPub, uaPub := as.PublicKey().Bytes(), ua.Bytes()

	body := make([]byte, headerSize, size)
	salt := body[:16]
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("webpush: salt: %w", err)
	}
	binary.BigEndian.PutUint32(body[16:20], uint32(size))
	body[20] = byte(len(asPub))
	copy(body[21:], asPub)

	// RFC 8291 §3.4: the input keying material binds both public keys.
	info := make([]byte, 0, 14+len(uaPub)+len(asPub))
	info = append(append(append(info, "WebPush: info\x00"...), uaPub...), asPub...)
	ikm, err := hkdf.Key(sha256.New, shared, auth, string(info), 32)
	if err != nil {
		return nil, fmt.Errorf("webpush: derive keys: %w", err)
	}
	// RFC 8188 §2.2 and §2.3: content-encryption key and nonce.
	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, fmt.Errorf("webpush: derive keys: %w", err)
	}
	cek, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, fmt.Errorf("webpush: derive keys: %w", err)
	}
	nonce, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, fmt.Errorf("webpush: derive keys: %w", err)
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, fmt.Errorf("webpush: cipher: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("webpush: cipher: %w", err)
	}
	plain := make([]byte, plainLen) // zero padding after the delimiter
	copy(plain, payload)
	plain[len(payload)] = 0x02 // the last (and only) record
	return gcm.Seal(body, nonce, plain, nil), nil
}
