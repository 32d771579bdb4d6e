package messaging

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
	"github.com/tendhealth/tend/engine/internal/thread"
)

// PatientMessage is a message of a patient's thread (kind patient: the
// patient and their care team) with the thread's patient and team, as the
// FHIR interface shows it (Communication).
type PatientMessage struct {
	Message
	PatientID  uuid.UUID
	CareTeamID uuid.UUID
}

// PatientMessageFilter selects a patient's messages: newest first, sent in
// [Since, Until) when those are set, after a cursor of a previous page.
type PatientMessageFilter struct {
	PatientID    uuid.UUID
	Since, Until time.Time
	Cursor       string
	Limit        int
}

// Bounds of an open time range, within what Postgres and the cursors hold.
var (
	timeFloor   = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	timeCeiling = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
)

// ListPatientMessages returns a page of the messages of patient f.PatientID's
// patient threads that the actor takes part in (the patient themself, staff
// of the thread's care team: the scope of ListMessages), newest first, and
// the next page's cursor ("" at the end). Staff-only threads (staff_patient,
// team, direct) are never included. A patient with no such thread visible to
// the actor is access.ErrNotFound. The read is audited per thread
// (message.list, with the message ids), like ListMessages; unlike it, it
// moves no receipt: a record system reading the history is not the
// participant's app.
func (ms *Service) ListPatientMessages(ctx context.Context, a access.Actor, f PatientMessageFilter) ([]PatientMessage, string, error) {
	cur := pg.NewestCursor()
	if f.Cursor != "" {
		if err := pg.DecodeCursor(f.Cursor, &cur); err != nil {
			return nil, "", check.FieldError("_cursor", "is not a cursor returned by this search")
		}
	}
	since, until := f.Since, f.Until
	if since.IsZero() || since.Before(timeFloor) {
		since = timeFloor
	}
	if until.IsZero() || until.After(timeCeiling) {
		until = timeCeiling
	}
	limit := pg.ClampLimit(f.Limit)
	var out []PatientMessage
	var next string
	err := pg.InTx(ctx, ms.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, patientThreadsSQL, a.Role, a.PatientID, a.UserID, f.PatientID)
		if err != nil {
			return fmt.Errorf("patient threads: %w", err)
		}
		type th struct{ id, team uuid.UUID }
		threads, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (th, error) {
			var x th
			err := r.Scan(&x.id, &x.team)
			return x, err
		})
		if err != nil {
			return fmt.Errorf("patient threads: %w", err)
		}
		if len(threads) == 0 {
			return fmt.Errorf("patient messages: %w", access.ErrNotFound)
		}
		ids := make([]uuid.UUID, len(threads))
		team := make(map[uuid.UUID]uuid.UUID, len(threads))
		for i, x := range threads {
			ids[i], team[x.id] = x.id, x.team
		}
		rows, err = tx.Query(ctx, patientMessagesSQL, ids, since, until, cur.At, cur.ID, limit+1)
		if err != nil {
			return fmt.Errorf("patient messages: %w", err)
		}
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (stored, error) { return scanStored(r) })
		if err != nil {
			return fmt.Errorf("patient messages: %w", err)
		}
		got, next = pg.Page(got, limit, func(s stored) string {
			return pg.EncodeCursor(pg.TimeCursor{At: s.createdAt, ID: s.id})
		})
		msgs, o := make([]Message, len(got)), thread.NewOpener(ms.keys, tx)
		byThread := make(map[uuid.UUID][]uuid.UUID, len(threads))
		for i, s := range got {
			msgs[i] = ms.open(ctx, o, s)
			byThread[s.thread] = append(byThread[s.thread], s.id)
		}
		if err := ms.describeAttachments(ctx, tx, msgs); err != nil {
			return err
		}
		out = make([]PatientMessage, len(msgs))
		for i, m := range msgs {
			out[i] = PatientMessage{Message: m, PatientID: f.PatientID, CareTeamID: team[m.ThreadID]}
		}
		for _, x := range threads {
			read := byThread[x.id]
			if read == nil {
				read = []uuid.UUID{}
			}
			if err := ms.audit.Write(ctx, tx, a, audit.Entry{Action: "message.list", PatientID: f.PatientID, ObjectType: "thread",
				ObjectID: x.id.String(), Detail: map[string]any{"message_ids": read, "via": "fhir"}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// GetPatientMessage returns message id if it belongs to a patient thread the
// actor takes part in (access.ErrNotFound otherwise: staff-only threads'
// messages never show). Audited as message.read; no receipt moves.
func (ms *Service) GetPatientMessage(ctx context.Context, a access.Actor, id uuid.UUID) (PatientMessage, error) {
	var out PatientMessage
	err := pg.InTx(ctx, ms.pool, func(tx pgx.Tx) error {
		var s stored
		var patient, team uuid.UUID
		err := tx.QueryRow(ctx, patientMessageSQL, a.Role, a.PatientID, a.UserID, id).Scan(&s.id, &s.thread, &s.seq, &s.sender,
			&s.senderRole, &s.kind, &s.keyID, &s.body, &s.urgent, &s.clientID, &s.attachments, &s.symptomReport, &s.createdAt,
			&patient, &team)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("message: %w", access.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("message: %w", err)
		}
		one := []Message{ms.open(ctx, thread.NewOpener(ms.keys, tx), s)}
		if err := ms.describeAttachments(ctx, tx, one); err != nil {
			return err
		}
		out = PatientMessage{Message: one[0], PatientID: patient, CareTeamID: team}
		return ms.audit.Write(ctx, tx, a, audit.Entry{Action: "message.read", PatientID: patient, ObjectType: "thread",
			ObjectID: s.thread.String(), Detail: map[string]any{"message_ids": []uuid.UUID{id}, "via": "fhir"}})
	})
	return out, err
}
