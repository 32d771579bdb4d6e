// Package events appends to the event log behind the live stream. A use case
// that changes something a connected client may want to see at once calls
// Queue (or Publish) in the transaction that makes the change: the event
// commits with it, and a NOTIFY on Channel, delivered at commit, wakes every
// process's stream. Events carry ids and states, never PHI; who may see an
// event is decided per event by its care team and patient.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Channel is the Postgres NOTIFY channel of new events; the payload is the
// event id.
const Channel = "tend_events"

// The event types.
const (
	AlertCreated = "alert.created"
	AlertUpdated = "alert.updated"
	// MessageCreated and MessageRead concern a thread: only its participants
	// receive them.
	MessageCreated = "message.created"
	MessageRead    = "message.read"
	// Typing is ephemeral: sent with Ephemeral, never stored.
	Typing = "typing"
	// RetakeRequested tells the patient's connected devices to measure
	// again: its payload holds the patient's id and the requests (rule,
	// reading or report, kind, deadline). It has no care team: clinicians
	// are paged by alerts, not by requests to measure.
	RetakeRequested = "retake.requested"
)

// AppendLockClass and AppendLockObject name the advisory lock every event
// append holds, shared, from before it takes its id until its transaction
// ends (pg_locks: locktype advisory, classid AppendLockClass, objid
// AppendLockObject, objsubid 2). Ids are taken at insert but transactions
// commit in any order; the stream reads which transactions hold the lock
// to know when every id issued up to a point is final (committed or rolled
// back), and publishes in id order up to there only.
const (
	AppendLockClass  = 7411
	AppendLockObject = 1
)

// EphemeralChannel is the NOTIFY channel of events that are never stored
// (typing): the payload is the JSON of an Ephemeral value.
const EphemeralChannel = "tend_ephemeral"

// Event is one change, as streamed.
type Event struct {
	Type string
	// CareTeamID and PatientID decide who may see the event: the team's
	// members (and admins) and, when the type allows it, the patient's own
	// users.
	CareTeamID uuid.UUID
	PatientID  uuid.UUID
	// ThreadID, when set, restricts the event to the thread's participants
	// (its team and patient no longer decide).
	ThreadID uuid.UUID
	// Payload is the event's data: ids and states only.
	Payload map[string]any
}

// Queue adds the event to b, to commit with the rest of the transaction.
func Queue(b *pgx.Batch, at time.Time, ev Event) {
	b.Queue(appendSQL, args(at, ev)...)
}

// QueueMany adds events to b as one statement, in order.
func QueueMany(b *pgx.Batch, at time.Time, evs []Event) {
	if len(evs) == 0 {
		return
	}
	n := len(evs)
	types, payloads := make([]string, n), make([]string, n)
	teams, patients, threads := make([]*uuid.UUID, n), make([]*uuid.UUID, n), make([]*uuid.UUID, n)
	for i, ev := range evs {
		a := args(at, ev)
		types[i], teams[i], patients[i], threads[i] = a[1].(string), a[2].(*uuid.UUID), a[3].(*uuid.UUID), a[5].(*uuid.UUID)
		p, _ := json.Marshal(a[4]) // ids and states: always encodable
		payloads[i] = string(p)
	}
	b.Queue(appendManySQL, at, types, teams, patients, payloads, threads)
}

// Publish appends the event in tx.
func Publish(ctx context.Context, tx pgx.Tx, at time.Time, ev Event) error {
	if _, err := tx.Exec(ctx, appendSQL, args(at, ev)...); err != nil {
		return fmt.Errorf("event %s: %w", ev.Type, err)
	}
	return nil
}

func args(at time.Time, ev Event) []any {
	var team, patient, thread *uuid.UUID
	if ev.CareTeamID != uuid.Nil {
		team = &ev.CareTeamID
	}
	if ev.PatientID != uuid.Nil {
		patient = &ev.PatientID
	}
	if ev.ThreadID != uuid.Nil {
		thread = &ev.ThreadID
	}
	payload := ev.Payload
	if payload == nil {
		payload = map[string]any{}
	}
	return []any{at, ev.Type, team, patient, payload, thread}
}

// Ephemeral is an event that is never stored (typing): it reaches the
// participants of Thread connected at the moment, in every process, except
// From.
type Ephemeral struct {
	Type   string    `json:"type"`
	Thread uuid.UUID `json:"thread_id"`
	From   uuid.UUID `json:"user_id"`
}

// Notify sends an ephemeral event to every process's stream (at commit of
// q's transaction, or at once outside one).
func Notify(ctx context.Context, q interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}, ev Ephemeral) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("event %s: %w", ev.Type, err)
	}
	if _, err := q.Exec(ctx, notifySQL, string(b)); err != nil {
		return fmt.Errorf("event %s: %w", ev.Type, err)
	}
	return nil
}
