package e2ee

import (
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// DeviceKeys are one device's key pairs: HPKE (X-Wing) to receive content
// keys and Ed25519 to sign envelopes. The private halves never leave the
// device.
type DeviceKeys struct {
	HPKEPrivate []byte             // 32-byte X-Wing seed
	HPKEPublic  []byte             // 1,216 bytes
	Signing     ed25519.PrivateKey // 64 bytes (seed and public key)
}

// SigningPublic returns the Ed25519 public key.
func (k *DeviceKeys) SigningPublic() ed25519.PublicKey {
	return k.Signing.Public().(ed25519.PublicKey)
}

// GenerateDeviceKeys makes a device's key pairs from crypto/rand.
func GenerateDeviceKeys() (*DeviceKeys, error) {
	priv, err := hpke.MLKEM768X25519().GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("generate hpke key: %w", err)
	}
	seed, err := priv.Bytes()
	if err != nil {
		return nil, fmt.Errorf("serialize hpke key: %w", err)
	}
	_, sk, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	return &DeviceKeys{HPKEPrivate: seed, HPKEPublic: priv.PublicKey().Bytes(), Signing: sk}, nil
}

// HPKEPublicFromPrivate returns the X-Wing public key of a 32-byte seed.
func HPKEPublicFromPrivate(seed []byte) ([]byte, error) {
	priv, err := hpke.MLKEM768X25519().NewPrivateKey(seed)
	if err != nil {
		return nil, fmt.Errorf("hpke private key: %w", err)
	}
	return priv.PublicKey().Bytes(), nil
}

// CheckPublicKeys validates a device's public keys as registered: an X-Wing
// public key the KEM accepts and a 32-byte Ed25519 key.
func CheckPublicKeys(hpkePub, signingPub []byte) error {
	if len(hpkePub) != PublicKeySize {
		return fieldErr("hpke_public_key", "must be %d bytes", PublicKeySize)
	}
	if _, err := hpke.MLKEM768X25519().NewPublicKey(hpkePub); err != nil {
		return fieldErr("hpke_public_key", "is not an MLKEM768-X25519 public key")
	}
	if len(signingPub) != SigningKeySize {
		return fieldErr("signing_public_key", "must be %d bytes", SigningKeySize)
	}
	return nil
}

// Fingerprint is the SHA-256 of a device's two public keys (framed with a
// label), the value people compare out of band. The record key's fingerprint
// has no signing key (signingPub empty).
func Fingerprint(hpkePub, signingPub []byte) []byte {
	var b []byte
	b = appendField(b, []byte("tend-e2ee-v1 fingerprint"))
	b = appendField(b, hpkePub)
	b = appendField(b, signingPub)
	sum := sha256.Sum256(b)
	return sum[:]
}

// FormatFingerprint spells a fingerprint for people: 16 groups of four
// uppercase hex digits.
func FormatFingerprint(fp []byte) string {
	h := strings.ToUpper(hex.EncodeToString(fp))
	groups := make([]string, 0, len(h)/4)
	for i := 0; i+4 <= len(h); i += 4 {
		groups = append(groups, h[i:i+4])
	}
	return strings.Join(groups, " ")
}

// RecordKeyID is the id an envelope names the record key by: the first 16
// bytes of its fingerprint in lowercase hex.
func RecordKeyID(recordPub []byte) string {
	return hex.EncodeToString(Fingerprint(recordPub, nil)[:16])
}
