package messaging

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/e2ee"
	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/check"
	"github.com/tendhealth/tend/engine/internal/devicekeys"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/thread"
)

// End-to-end encrypted threads (docs/e2ee.md). The server checks an
// envelope's shape and that it is wrapped to exactly the thread's current
// devices and the organisation's record key, then stores and relays it; it
// never holds a key that opens one.

var (
	// ErrEncryptedThread: a plain message was posted to an end-to-end
	// encrypted thread.
	ErrEncryptedThread = fmt.Errorf("the thread is end-to-end encrypted: post an envelope instead: %w", access.ErrConflict)
	// ErrNoRecordKey: no organisation record key is configured, so no
	// thread can be encrypted (TEND_RECORD_PUBLIC_KEY).
	ErrNoRecordKey = fmt.Errorf("the organisation has no record key (TEND_RECORD_PUBLIC_KEY, or its record_public_key): threads cannot be end-to-end encrypted: %w", access.ErrConflict)
)

// RecordKey is the organisation's record key as clients wrap to it.
type RecordKey struct {
	ID        string     `json:"id"`
	PublicKey e2ee.Bytes `json:"public_key"`
}

// ThreadKeys are the keys an envelope for a thread must be wrapped to: every
// current (unrevoked) device of every participant, and the record key.
type ThreadKeys struct {
	ThreadID  uuid.UUID           `json:"thread_id"`
	Encrypted bool                `json:"encrypted"`
	Devices   []devicekeys.Device `json:"devices"`
	RecordKey *RecordKey          `json:"record_key"`
}

// RecipientsError is the 409 of an envelope that is not wrapped to exactly
// the thread's current devices and record key: it carries the current list,
// so the client re-wraps and posts again.
type RecipientsError struct {
	Reason string
	Keys   ThreadKeys
}

func (e *RecipientsError) Error() string { return e.Reason + ": " + access.ErrConflict.Error() }

// Unwrap makes a RecipientsError an access.ErrConflict.
func (e *RecipientsError) Unwrap() error { return access.ErrConflict }

// Current is what the 409 answer carries: the keys to wrap to.
func (e *RecipientsError) Current() any { return e.Keys }

// ThreadKeys returns the keys a new envelope for the thread must be wrapped
// to, for a participant.
func (ms *Service) ThreadKeys(ctx context.Context, a access.Actor, threadID uuid.UUID) (ThreadKeys, error) {
	var out ThreadKeys
	err := pg.InTx(ctx, ms.pool, func(tx pgx.Tx) error {
		t, err := loadThread(ctx, tx, a, threadID)
		if err != nil {
			return err
		}
		out, err = ms.threadKeys(ctx, tx, t)
		return err
	})
	return out, err
}

func (ms *Service) threadKeys(ctx context.Context, tx pgx.Tx, t Thread) (ThreadKeys, error) {
	rows, err := tx.Query(ctx, threadDevicesSQL, t.ID)
	if err != nil {
		return ThreadKeys{}, fmt.Errorf("thread devices: %w", err)
	}
	devices, err := collectDevices(rows)
	if err != nil {
		return ThreadKeys{}, fmt.Errorf("thread devices: %w", err)
	}
	return ms.keysOf(t, devices), nil
}

func collectDevices(rows pgx.Rows) ([]devicekeys.Device, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (devicekeys.Device, error) { return devicekeys.Scan(r) })
}

// keysOf is the thread's keys with its current devices.
func (ms *Service) keysOf(t Thread, devices []devicekeys.Device) ThreadKeys {
	k := ThreadKeys{ThreadID: t.ID, Encrypted: t.Encrypted, Devices: devices}
	if key := ms.recordKeyOf(t); key != nil {
		k.RecordKey = &RecordKey{ID: e2ee.RecordKeyID(key), PublicKey: key}
	}
	return k
}

// recordKeyOf is the record key of the thread's organisation: the one its
// admins set, or for the default organisation the server's
// (TEND_RECORD_PUBLIC_KEY); nil when it has none.
func (ms *Service) recordKeyOf(t Thread) []byte {
	if t.recordKey == nil && t.org == access.DefaultOrgID() {
		return ms.recordKey
	}
	return t.recordKey
}

// EncryptThread turns a thread end-to-end encrypted, for good: from then on
// only envelopes are posted to it. Every participant must have a device with
// keys (else 409 with the thread's keys) and a record key must be
// configured. Audited; encrypting an encrypted thread changes nothing.
func (ms *Service) EncryptThread(ctx context.Context, a access.Actor, threadID uuid.UUID) (Thread, error) {
	var out Thread
	err := pg.InTx(ctx, ms.pool, func(tx pgx.Tx) error {
		t, err := loadThread(ctx, tx, a, threadID)
		if err != nil {
			return err
		}
		if ms.recordKeyOf(t) == nil {
			return ErrNoRecordKey
		}
		if t.Encrypted {
			out = t
			return nil
		}
		var without int
		if err := tx.QueryRow(ctx, participantsWithoutKeysSQL, threadID).Scan(&without); err != nil {
			return fmt.Errorf("encrypt thread: %w", err)
		}
		if without > 0 {
			k, err := ms.threadKeys(ctx, tx, t)
			if err != nil {
				return err
			}
			return &RecipientsError{Reason: fmt.Sprintf("%d participants have no device with keys yet", without), Keys: k}
		}
		if _, err := tx.Exec(ctx, encryptThreadSQL, threadID); err != nil {
			return fmt.Errorf("encrypt thread: %w", err)
		}
		t.Encrypted = true
		out = t
		return ms.audit.Write(ctx, tx, a, audit.Entry{Action: "thread.encrypt", PatientID: pg.Deref(t.PatientID),
			ObjectType: "thread", ObjectID: threadID.String()})
	})
	return out, err
}

// NewEnvelope is the input of PostEnvelope.
type NewEnvelope struct {
	Envelope *e2ee.Envelope
	Urgent   bool
}

// Validate checks the envelope's shape: a *rpm.ValidationError naming the
// field (envelope.recipients[2].enc, …).
func (in NewEnvelope) Validate(threadID uuid.UUID) error {
	if in.Envelope == nil {
		return check.FieldError("envelope", "is required")
	}
	if err := e2ee.Check(in.Envelope); err != nil {
		var fe *e2ee.FieldError
		if errors.As(err, &fe) {
			return check.FieldError("envelope."+fe.Field, fe.Reason)
		}
		return err
	}
	if in.Envelope.ThreadID != threadID.String() {
		return check.FieldError("envelope.thread_id", "is not this thread's id")
	}
	return nil
}

// PostEnvelope posts an encrypted message to an end-to-end encrypted thread
// the actor takes part in. The envelope must come from one of the actor's
// current devices, carry a sender sequence past that device's last one in
// the thread, and be wrapped to exactly the thread's current devices and the
// record key (else a *RecipientsError, 409 with the current keys). The
// message, its audit entry (with the ciphertext's SHA-256), its event and
// its push (generic text) commit together. Posting the same envelope again
// returns the message already posted. Concurrent posts share transactions
// (group commit, envelopegroup.go).
func (ms *Service) PostEnvelope(ctx context.Context, a access.Actor, threadID uuid.UUID, in NewEnvelope) (Posted, error) {
	if err := in.Validate(threadID); err != nil {
		return Posted{}, err
	}
	if in.Urgent && a.Role == access.RolePatient {
		return Posted{}, ms.urgentRefused(ctx, a, threadID)
	}
	if ms.keys == nil {
		return Posted{}, thread.ErrNoKeys
	}
	if err := ms.checkEnvelopeAttachments(ctx, a, threadID, in.Envelope.Attachments); err != nil {
		return Posted{}, err
	}
	// Stored as json.Marshal would encode it, written directly (e2ee.Envelope.AppendJSON).
	body := in.Envelope.AppendJSON(nil)
	// Concurrent envelope posts share transactions (envelopegroup.go).
	j := &envelopeJob{actor: a, thread: threadID, in: in, body: body, device: uuid.MustParse(in.Envelope.SenderDevice),
		sum: sha256.Sum256(in.Envelope.Ciphertext)}
	if err := ms.envelopes.Do(ctx, j); err != nil {
		return Posted{}, err
	}
	if j.err != nil {
		return Posted{}, j.err
	}
	return j.out, nil
}

// attachmentIDs are the envelope's attachments (checked UUIDs).
func (in NewEnvelope) attachmentIDs() []uuid.UUID {
	var ids []uuid.UUID
	for _, id := range in.Envelope.Attachments {
		ids = append(ids, uuid.MustParse(id))
	}
	return ids
}

// checkRecipients compares the envelope's wraps with the thread's current
// devices and the record key: any missing or extra one is a
// *RecipientsError with the current keys.
func (ms *Service) checkRecipients(k ThreadKeys, env *e2ee.Envelope) error {
	if k.RecordKey == nil {
		return ErrNoRecordKey
	}
	want := make([]string, len(k.Devices))
	for i, d := range k.Devices {
		want[i] = d.ID.String()
	}
	got := make([]string, len(env.Recipients))
	for i, w := range env.Recipients {
		got[i] = w.ID
	}
	slices.Sort(want)
	slices.Sort(got)
	switch {
	case env.Record.ID != k.RecordKey.ID:
		return &RecipientsError{Reason: "the envelope is not wrapped to the organisation's current record key", Keys: k}
	case !slices.Equal(want, got):
		return &RecipientsError{Reason: "the envelope is not wrapped to exactly the thread's current devices", Keys: k}
	}
	return nil
}
