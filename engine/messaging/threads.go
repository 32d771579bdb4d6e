package messaging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/check"
	"github.com/tendhealth/tend/engine/internal/events"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/presence"
	"github.com/tendhealth/tend/engine/internal/thread"
)

// Thread is a conversation as one participant sees it.
type Thread struct {
	ID uuid.UUID `json:"id"`
	// Kind is patient, staff_patient, team or direct.
	Kind       string     `json:"kind"`
	CareTeamID *uuid.UUID `json:"care_team_id,omitempty"`
	PatientID  *uuid.UUID `json:"patient_id,omitempty"`
	// UserIDs are a direct thread's two users.
	UserIDs []uuid.UUID `json:"user_ids,omitempty"`
	// UnreadCount is how many messages came after the reader's read mark.
	UnreadCount    int64      `json:"unread_count"`
	LastMessageAt  *time.Time `json:"last_message_at"`
	LastActivityAt time.Time  `json:"last_activity_at"`
	CreatedAt      time.Time  `json:"created_at"`
	// Participants are, for a staff reader of GET /v1/threads/{id}, the
	// thread's participants with the presence the reader may see.
	Participants []presence.Participant `json:"participants,omitempty"`
	// CareTeamAvailable tells a patient reader of GET /v1/threads/{id}
	// whether someone of their care team is online now (never who).
	CareTeamAvailable *bool `json:"care_team_available,omitempty"`
	// Encrypted is true for an end-to-end encrypted thread: its messages
	// are envelopes the server cannot read (docs/e2ee.md).
	Encrypted bool `json:"encrypted"`

	lastSeq, readUpTo int64
	// org is the thread's organisation, recordKey its record key (nil: none set).
	org       uuid.UUID
	recordKey []byte
}

func scanThread(r pgx.Row) (Thread, error) {
	var t Thread
	var ua, ub *uuid.UUID
	err := r.Scan(&t.ID, &t.Kind, &t.CareTeamID, &t.PatientID, &ua, &ub, &t.lastSeq, &t.LastMessageAt, &t.LastActivityAt,
		&t.CreatedAt, &t.Encrypted, &t.readUpTo, &t.org, &t.recordKey)
	if ua != nil && ub != nil {
		t.UserIDs = []uuid.UUID{*ua, *ub}
	}
	t.UnreadCount = max(t.lastSeq-t.readUpTo, 0)
	return t, err
}

// ThreadFilter pages the caller's threads.
type ThreadFilter struct {
	// PatientID, when set, keeps the threads about that patient (their
	// patient thread and, for staff, the staff-only thread, per team).
	PatientID uuid.UUID
	Cursor    string
	Limit     int
}

// ListThreads returns a page of the threads the actor takes part in, the
// most recently active first, with unread counts, and the next page's
// cursor ("" at the end).
func (ms *Service) ListThreads(ctx context.Context, a access.Actor, f ThreadFilter) ([]Thread, string, error) {
	cur := pg.NewestCursor()
	if f.Cursor != "" {
		if err := pg.DecodeCursor(f.Cursor, &cur); err != nil {
			return nil, "", check.FieldError("cursor", "is not a cursor returned by this endpoint")
		}
	}
	limit := pg.ClampLimit(f.Limit)
	var patient *uuid.UUID
	if f.PatientID != uuid.Nil {
		patient = &f.PatientID
	}
	rows, err := ms.pool.Query(ctx, listThreadsSQL, a.Role, a.PatientID, a.UserID, cur.At, cur.ID, limit+1, patient)
	if err != nil {
		return nil, "", fmt.Errorf("list threads: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Thread, error) { return scanThread(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list threads: %w", err)
	}
	out, next := pg.Page(out, limit, func(last Thread) string {
		return pg.EncodeCursor(pg.TimeCursor{At: last.LastActivityAt, ID: last.ID})
	})
	return out, next, nil
}

// GetThread returns a thread the actor takes part in.
func (ms *Service) GetThread(ctx context.Context, a access.Actor, id uuid.UUID) (Thread, error) {
	var t Thread
	err := pg.InTx(ctx, ms.pool, func(tx pgx.Tx) error {
		var err error
		if t, err = loadThread(ctx, tx, a, id); err != nil {
			return err
		}
		return ms.threadPresence(ctx, tx, a, &t)
	})
	return t, err
}

// threadPresence adds to t what a may see of its participants' presence:
// each one's presence for staff (patients of the thread, staff who share a
// team with the reader), only whether the care team has someone available
// for a patient. Presence reads are not audited: presence is no health
// information.
func (ms *Service) threadPresence(ctx context.Context, tx pgx.Tx, a access.Actor, t *Thread) error {
	switch {
	case ms.presence == nil:
		return nil
	case a.Is(access.RolePatient):
		if t.CareTeamID == nil {
			return nil
		}
		ok, err := ms.presence.Available(ctx, tx, *t.CareTeamID)
		t.CareTeamAvailable = &ok
		return err
	case a.Is(access.RoleClinician, access.RoleScheduler, access.RoleAdmin):
		ps, err := ms.presence.Participants(ctx, tx, a.UserID, t.ID)
		t.Participants = ps
		return err
	}
	return nil
}

// DirectThread returns the one direct thread of the actor and another staff
// member of a care team they share, creating it the first time (created
// reports that). Staff only; user_id must name such a member.
func (ms *Service) DirectThread(ctx context.Context, a access.Actor, userID uuid.UUID) (Thread, bool, error) {
	if err := access.Require(a, access.RoleClinician, access.RoleScheduler, access.RoleAdmin); err != nil || a.UserID == uuid.Nil {
		return Thread{}, false, fmt.Errorf("direct thread: %w", access.ErrNotFound)
	}
	if userID == uuid.Nil {
		return Thread{}, false, check.FieldError("user_id", "is required")
	}
	if userID == a.UserID {
		return Thread{}, false, check.FieldError("user_id", "must be another user than the caller")
	}
	ua, ub := a.UserID, userID
	if bytes.Compare(ua[:], ub[:]) > 0 {
		ua, ub = ub, ua
	}
	var t Thread
	created := false
	err := pg.InTx(ctx, ms.pool, func(tx pgx.Tx) error {
		var ok bool
		if err := tx.QueryRow(ctx, staffPeerSQL, a.UserID, userID).Scan(&ok); err != nil {
			return fmt.Errorf("direct thread: %w", err)
		}
		if !ok {
			return check.FieldError("user_id", "no staff member of a care team you belong to")
		}
		now := ms.now()
		tag, err := tx.Exec(ctx, insertDirectSQL, pg.NewID(), ua, ub, now)
		if err != nil {
			return fmt.Errorf("direct thread: %w", err)
		}
		created = tag.RowsAffected() == 1
		if t, err = scanThread(tx.QueryRow(ctx, directThreadSQL, ua, ub, a.UserID)); err != nil {
			return fmt.Errorf("direct thread: %w", err)
		}
		if !created {
			return nil
		}
		return ms.audit.Write(ctx, tx, a, audit.Entry{Action: "thread.create", ObjectType: "thread", ObjectID: t.ID.String(),
			Detail: map[string]any{"kind": thread.Direct, "user_id": userID}})
	})
	if err != nil {
		return Thread{}, false, err
	}
	return t, created, nil
}

// Typing tells the thread's other participants connected to the live
// stream, in every process, that the actor is typing: an ephemeral typing
// event, never stored. Events of one user in one thread are sent at most
// once per TypingInterval; it reports whether this one was sent.
func (ms *Service) Typing(ctx context.Context, a access.Actor, threadID uuid.UUID) (bool, error) {
	var sent bool
	err := pg.InTx(ctx, ms.pool, func(tx pgx.Tx) error {
		if _, err := loadThread(ctx, tx, a, threadID); err != nil {
			return err
		}
		now := ms.now()
		k := typingKey{user: a.UserID, thread: threadID}
		ms.typingMu.Lock()
		last, ok := ms.typing[k]
		if ok && now.Sub(last) < ms.typingEvery {
			ms.typingMu.Unlock()
			return nil
		}
		ms.typing[k] = now
		if len(ms.typing) > 10000 {
			for key, at := range ms.typing {
				if now.Sub(at) >= ms.typingEvery {
					delete(ms.typing, key)
				}
			}
		}
		ms.typingMu.Unlock()
		sent = true
		return events.Notify(ctx, tx, events.Ephemeral{Type: events.Typing, Thread: threadID, From: a.UserID})
	})
	if err != nil && !errors.Is(err, access.ErrNotFound) {
		return false, err
	}
	return sent, err
}
