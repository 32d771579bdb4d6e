package messaging

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/e2ee"
	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/thread"
)

// RecordEnvelope is a stored encrypted message of a patient's threads with
// what opening it with the record key needs: the envelope and the sender
// device's signing key (revoked devices included).
type RecordEnvelope struct {
	MessageID  uuid.UUID
	ThreadID   uuid.UUID
	ThreadKind string
	Seq        int64
	SenderID   *uuid.UUID
	SenderRole string
	SentAt     time.Time
	Envelope   *e2ee.Envelope
	SenderKey  []byte // Ed25519; nil when the device is unknown
	// Files are the ciphertexts of the envelope's attachments (version 2),
	// by attachment id, as uploaded (their at-rest seal opened and their
	// SHA-256 checked); one that is missing or failed its check is absent.
	Files map[string][]byte
	// Error says why the envelope is missing: its at-rest seal did not open.
	Error string
}

// RecordEnvelopes returns every encrypted message of the patient's threads
// (their thread with each care team and the staff-only threads about them)
// for a legal or clinical export, opened with the organisation's record key
// outside the server (tend records export). Admins and Tend itself only;
// audited with the patient and the number of messages.
func (ms *Service) RecordEnvelopes(ctx context.Context, a access.Actor, patientID uuid.UUID) ([]RecordEnvelope, error) {
	if err := access.Require(a, access.RoleAdmin); err != nil {
		return nil, err
	}
	var out []RecordEnvelope
	err := pg.InTx(ctx, ms.pool, func(tx pgx.Tx) error {
		o := thread.NewOpener(ms.keys, tx)
		if err := o.Load(ctx, patientID); err != nil {
			return fmt.Errorf("record envelopes: %w", err)
		}
		rows, err := tx.Query(ctx, recordEnvelopesSQL, patientID, a.Org())
		if err != nil {
			return fmt.Errorf("record envelopes: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var r RecordEnvelope
			var keyID string
			var body []byte
			if err := rows.Scan(&r.MessageID, &r.ThreadID, &r.ThreadKind, &r.Seq, &r.SenderID, &r.SenderRole, &keyID, &body,
				&r.SentAt, &r.SenderKey); err != nil {
				return fmt.Errorf("record envelopes: %w", err)
			}
			pt, err := o.Open(ctx, keyID, body, thread.BodyAAD(r.ThreadID, r.MessageID))
			if err == nil {
				err = json.Unmarshal(pt, &r.Envelope)
			}
			if err != nil {
				r.Error = unreadable(err)
			}
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("record envelopes: %w", err)
		}
		files, err := ms.recordFiles(ctx, tx, out)
		if err != nil {
			return err
		}
		return ms.audit.Write(ctx, tx, a, audit.Entry{Action: "record.export", PatientID: patientID, ObjectType: "patient",
			ObjectID: patientID.String(), Detail: map[string]any{"messages": len(out), "attachments": files}})
	})
	return out, err
}
