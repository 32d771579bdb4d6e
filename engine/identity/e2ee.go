package identity

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/e2ee"
	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/check"
	"github.com/tendhealth/tend/engine/internal/devicekeys"
	"github.com/tendhealth/tend/engine/internal/pg"
)

// Bounds of end-to-end encryption device registrations.
const (
	// MaxE2EEDevices is how many unrevoked devices one user may have.
	MaxE2EEDevices = 20
	// MaxE2EELabel bounds a device's label, in characters.
	MaxE2EELabel = 100
)

// NewE2EEDevice is the input of RegisterE2EEDevice: a device's public keys.
type NewE2EEDevice struct {
	Label            string
	HPKEPublicKey    []byte
	SigningPublicKey []byte
}

// Validate checks a registration: a *rpm.ValidationError naming the field.
func (in NewE2EEDevice) Validate() error {
	if err := e2ee.CheckPublicKeys(in.HPKEPublicKey, in.SigningPublicKey); err != nil {
		var fe *e2ee.FieldError
		if errors.As(err, &fe) {
			return check.FieldError(fe.Field, fe.Reason)
		}
		return err
	}
	if !utf8.ValidString(in.Label) || utf8.RuneCountInString(in.Label) > MaxE2EELabel {
		return check.FieldError("label", fmt.Sprintf("must be valid UTF-8, at most %d characters", MaxE2EELabel))
	}
	return nil
}

// RegisterE2EEDevice registers a device's end-to-end encryption public keys
// for the calling user. The registration, with the keys' fingerprint, is
// written to the hash-chained audit trail in the same transaction, so a key
// a compromised server slipped in shows in `tend audit verify`'s chain.
func (us *Service) RegisterE2EEDevice(ctx context.Context, a access.Actor, in NewE2EEDevice) (devicekeys.Device, error) {
	if a.UserID == uuid.Nil || !a.Is(access.RolePatient, access.RoleClinician, access.RoleScheduler, access.RoleAdmin) {
		return devicekeys.Device{}, fmt.Errorf("e2ee device registration needs a person's account: %w", access.ErrForbidden)
	}
	if err := in.Validate(); err != nil {
		return devicekeys.Device{}, err
	}
	fp := e2ee.Fingerprint(in.HPKEPublicKey, in.SigningPublicKey)
	var d devicekeys.Device
	err := pg.InTx(ctx, us.pool, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, countE2EEDevicesSQL, a.UserID).Scan(&n); err != nil {
			return fmt.Errorf("count e2ee devices: %w", err)
		}
		if n >= MaxE2EEDevices {
			return fmt.Errorf("at most %d devices with keys per user: revoke one first: %w", MaxE2EEDevices, access.ErrConflict)
		}
		var err error
		d, err = devicekeys.Scan(tx.QueryRow(ctx, insertE2EEDeviceSQL, pg.NewID(), a.UserID, in.Label, in.HPKEPublicKey,
			in.SigningPublicKey, fp, us.now()))
		if err != nil {
			return fmt.Errorf("register e2ee device: %w", err)
		}
		return us.audit.Write(ctx, tx, a, audit.Entry{Action: "e2ee_device.register", ObjectType: "e2ee_device",
			ObjectID: d.ID.String(), Detail: map[string]any{"fingerprint": devicekeys.FingerprintHex(fp)}})
	})
	return d, err
}

// ListE2EEDevices lists the calling user's devices with keys, revoked ones
// included (their ids are in old envelopes), oldest first.
func (us *Service) ListE2EEDevices(ctx context.Context, a access.Actor) ([]devicekeys.Device, error) {
	if a.UserID == uuid.Nil {
		return nil, fmt.Errorf("e2ee devices need a user: %w", access.ErrForbidden)
	}
	rows, err := us.pool.Query(ctx, listE2EEDevicesSQL, a.UserID)
	if err != nil {
		return nil, fmt.Errorf("list e2ee devices: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (devicekeys.Device, error) { return devicekeys.Scan(r) })
	if err != nil {
		return nil, fmt.Errorf("list e2ee devices: %w", err)
	}
	return out, nil
}

// RevokeE2EEDevice revokes one of the calling user's devices: from now on
// envelopes must not, and cannot, be wrapped to it (the server refuses
// them), so it opens nothing new. Audited with the fingerprint. Revoking a
// revoked device changes nothing; another user's device is not found.
func (us *Service) RevokeE2EEDevice(ctx context.Context, a access.Actor, id uuid.UUID) (devicekeys.Device, error) {
	var d devicekeys.Device
	err := pg.InTx(ctx, us.pool, func(tx pgx.Tx) error {
		var err error
		d, err = devicekeys.Scan(tx.QueryRow(ctx, revokeE2EEDeviceSQL, id, a.UserID, us.now()))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("e2ee device: %w", access.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("revoke e2ee device: %w", err)
		}
		fp := e2ee.Fingerprint(d.HPKEPublicKey, d.SigningPublicKey)
		return us.audit.Write(ctx, tx, a, audit.Entry{Action: "e2ee_device.revoke", ObjectType: "e2ee_device",
			ObjectID: d.ID.String(), Detail: map[string]any{"fingerprint": devicekeys.FingerprintHex(fp)}})
	})
	return d, err
}
