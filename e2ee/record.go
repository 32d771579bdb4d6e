package e2ee

import (
	"crypto/hpke"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// RecordKey is an organisation's record key pair as `tend records keygen`
// writes it to a file kept offline. The server is configured with the
// public half only (TEND_RECORD_PUBLIC_KEY); every encrypted message is also
// wrapped to it so that the organisation's record is kept.
type RecordKey struct {
	KEM        uint16 `json:"kem"`
	ID         string `json:"id"`
	PrivateKey Bytes  `json:"private_key"` // the 32-byte X-Wing seed
	PublicKey  Bytes  `json:"public_key"`
}

// GenerateRecordKey makes a record key pair from crypto/rand.
func GenerateRecordKey() (*RecordKey, error) {
	priv, err := hpke.MLKEM768X25519().GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("generate record key: %w", err)
	}
	seed, err := priv.Bytes()
	if err != nil {
		return nil, fmt.Errorf("serialize record key: %w", err)
	}
	pub := priv.PublicKey().Bytes()
	return &RecordKey{KEM: KEMID, ID: RecordKeyID(pub), PrivateKey: seed, PublicKey: pub}, nil
}

// ParseRecordKey reads a record key file and checks that its halves, id and
// KEM agree.
func ParseRecordKey(data []byte) (*RecordKey, error) {
	var k RecordKey
	if err := json.Unmarshal(data, &k); err != nil {
		return nil, errors.New("not a record key file (JSON with kem, id, private_key, public_key)")
	}
	if k.KEM != KEMID {
		return nil, fmt.Errorf("record key: kem %d is not MLKEM768-X25519 (%d)", k.KEM, KEMID)
	}
	pub, err := HPKEPublicFromPrivate(k.PrivateKey)
	if err != nil {
		return nil, errors.New("record key: private_key is not a 32-byte X-Wing seed")
	}
	if string(pub) != string(k.PublicKey) || k.ID != RecordKeyID(pub) {
		return nil, errors.New("record key: public_key or id does not match private_key")
	}
	return &k, nil
}

// ParseRecordPublicKey reads a record public key as TEND_RECORD_PUBLIC_KEY
// carries it: unpadded base64url of 1,216 bytes.
func ParseRecordPublicKey(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, errors.New("not unpadded base64url")
	}
	if len(b) != PublicKeySize {
		return nil, fmt.Errorf("%d bytes, want %d (an MLKEM768-X25519 public key)", len(b), PublicKeySize)
	}
	if _, err := hpke.MLKEM768X25519().NewPublicKey(b); err != nil {
		return nil, errors.New("not an MLKEM768-X25519 public key")
	}
	return b, nil
}
