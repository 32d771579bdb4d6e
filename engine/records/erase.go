package records

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/check"
	"github.com/tendhealth/tend/engine/internal/pg"
)

// Erasure is what erasing a patient did: counts only.
type Erasure struct {
	PatientID uuid.UUID `json:"patient_id"`
	ErasedAt  time.Time `json:"erased_at"`
	// Messages, Notes and Attachments are the records of the patient's
	// threads and symptom reports made unreadable: sealed under the data
	// key just destroyed, or (sealed before the patient had one) overwritten.
	Messages    int64 `json:"messages"`
	Notes       int64 `json:"notes"`
	Attachments int64 `json:"attachments"`
	// ReadingsDeleted were older than the organisation's reading retention
	// period; ReadingsKept are within it (all of them when the organisation
	// keeps readings for ever), kept with the pseudonymised patient.
	ReadingsDeleted int64 `json:"readings_deleted"`
	ReadingsKept    int64 `json:"readings_kept"`
	// Users are the patient's and their devices' accounts disabled and
	// renamed; Tokens their tokens revoked; PushDevices their push
	// registrations removed; E2EEDevices their end-to-end keys revoked.
	Users       int64 `json:"users"`
	Tokens      int64 `json:"tokens"`
	PushDevices int64 `json:"push_devices"`
	E2EEDevices int64 `json:"e2ee_devices"`
	// Schedules are the reminder schedules ended, Doses the pending doses
	// cancelled.
	Schedules int64 `json:"schedules"`
	Doses     int64 `json:"doses"`
}

// Erase erases patient id's personal data where no retention duty applies
// (docs/data-rights.md): it destroys their data key, so their messages,
// notes and attachments open nowhere, overwrites what was sealed before they
// had one, pseudonymises them, disables their accounts and devices, ends
// their schedules, deletes their readings older than the organisation's
// retention period (keeping the rest with the pseudonymised patient), and
// restricts processing. One transaction, one audit entry (patient.erase,
// with the counts and the reason's length and SHA-256).
//
// Admins of the patient's organisation only (ErrForbidden for other roles,
// ErrNotFound for another organisation's patient); a second erasure is
// ErrConflict. A blank or over-long reason is a *rpm.ValidationError before
// anything is read.
func (s *Service) Erase(ctx context.Context, a access.Actor, id uuid.UUID, reason string) (Erasure, error) {
	if err := access.Require(a, access.RoleAdmin); err != nil {
		return Erasure{}, err
	}
	if err := check.Reason("reason", reason); err != nil {
		return Erasure{}, err
	}
	out := Erasure{PatientID: id}
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var erased *time.Time
		var retain *int32
		err := tx.QueryRow(ctx, eraseLockSQL, id, a.Role, a.UserID).Scan(&erased, &retain)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("patient: %w", access.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("erase patient: %w", err)
		}
		if erased != nil {
			return fmt.Errorf("patient was erased at %s: %w", erased.UTC().Format(time.RFC3339), access.ErrConflict)
		}
		now := s.now().Truncate(time.Microsecond)
		out.ErasedAt = now
		// Readings observed before the cut are past the retention period.
		var cut *time.Time
		if retain != nil {
			c := now.AddDate(0, 0, -int(*retain))
			cut = &c
		}
		if err := s.eraseBatch(ctx, tx, id, now, cut, &out); err != nil {
			return err
		}
		detail := check.ReasonDetail(reason)
		for k, v := range map[string]any{"messages": out.Messages, "notes": out.Notes, "attachments": out.Attachments,
			"readings_deleted": out.ReadingsDeleted, "readings_kept": out.ReadingsKept, "users": out.Users,
			"tokens": out.Tokens, "push_devices": out.PushDevices, "e2ee_devices": out.E2EEDevices,
			"schedules": out.Schedules, "doses": out.Doses} {
			detail[k] = v
		}
		return s.audit.Write(ctx, tx, a, audit.Entry{Action: "patient.erase", PatientID: id, ObjectType: "patient",
			ObjectID: id.String(), Detail: detail})
	})
	if err != nil {
		return Erasure{}, err
	}
	return out, nil
}

// eraseBatch runs every erasing statement in one round trip.
func (s *Service) eraseBatch(ctx context.Context, tx pgx.Tx, id uuid.UUID, now time.Time, cut *time.Time, out *Erasure) error {
	b := &pgx.Batch{}
	count := func(sql string, dst *int64, args ...any) {
		b.Queue(sql, args...).QueryRow(func(r pgx.Row) error { return r.Scan(dst) })
	}
	var keys int64
	count(eraseKeySQL, &keys, id)
	count(eraseMessagesSQL, &out.Messages, id)
	count(eraseNotesSQL, &out.Notes, id)
	count(eraseAttachmentsSQL, &out.Attachments, id)
	b.Queue(eraseReadingSourcesSQL, id, cut)
	count(eraseReadingsSQL, &out.ReadingsDeleted, id, cut)
	count(keptReadingsSQL, &out.ReadingsKept, id)
	count(eraseTokensSQL, &out.Tokens, id, now)
	count(erasePushDevicesSQL, &out.PushDevices, id)
	count(eraseE2EEDevicesSQL, &out.E2EEDevices, id, now)
	count(eraseUsersSQL, &out.Users, id, now)
	count(eraseSchedulesSQL, &out.Schedules, id, now)
	count(eraseDosesSQL, &out.Doses, id, now)
	b.Queue(erasePatientSQL, id, now, "Erased patient "+id.String()[:8])
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("erase patient: %w", err)
	}
	return nil
}
