// Package devicekeys is a client device's registered end-to-end encryption
// keys as read back (type, columns, scanner): identity registers and revokes
// them, messaging reads a thread's current devices to check an envelope
// against. Both read the same rows; their statements stay in their rooms.
package devicekeys

import (
	"encoding/hex"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/e2ee"
)

// Device is one client device's public keys (docs/e2ee.md). The private
// halves never reach the server.
type Device struct {
	ID     uuid.UUID `json:"id"`
	UserID uuid.UUID `json:"user_id"`
	// Label is the user's name for the device ("Ward laptop").
	Label string `json:"label"`
	// HPKEPublicKey is the MLKEM768-X25519 key content keys are wrapped to.
	HPKEPublicKey e2ee.Bytes `json:"hpke_public_key"`
	// SigningPublicKey is the Ed25519 key the device signs envelopes with.
	SigningPublicKey e2ee.Bytes `json:"signing_public_key"`
	// Fingerprint is the SHA-256 of both keys, in 16 groups of four hex
	// digits, for people to compare out of band.
	Fingerprint string     `json:"fingerprint"`
	CreatedAt   time.Time  `json:"created_at"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
}

// Columns are a device's columns, of table alias d.
const Columns = `d.id, d.user_id, d.label, d.hpke_public_key, d.signing_public_key, d.fingerprint, d.created_at, d.revoked_at`

// Scan reads a row of Columns; lead are the destinations of columns
// selected before them, if any.
func Scan(r pgx.Row, lead ...any) (Device, error) {
	var d Device
	var fp []byte
	err := r.Scan(append(lead, &d.ID, &d.UserID, &d.Label, &d.HPKEPublicKey, &d.SigningPublicKey, &fp, &d.CreatedAt, &d.RevokedAt)...)
	d.Fingerprint = e2ee.FormatFingerprint(fp)
	return d, err
}

// FingerprintHex is a fingerprint as the audit trail records it.
func FingerprintHex(fp []byte) string { return hex.EncodeToString(fp) }
