// Package events appends to the event log behind the live stream. A use case
// that changes something a connected client may want to see at once calls
// Queue (or Publish) in the transaction that makes the change: the event
// commits with it, and a NOTIFY on Channel, delivered at commit, wakes every
// process's stream. Events carry ids and states, never PHI; who may see an
// event is decided per event by its care team and patient.
package events

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Channel is the Postgres NOTIFY channel of new events; the payload is the
// event id.
const Channel = "tend_events"

// The event types.
const (
	AlertCreated = "alert.created"
	AlertUpdated = "alert.updated"
)

// Event is one change, as streamed.
type Event struct {
	Type string
	// CareTeamID and PatientID decide who may see the event: the team's
	// members (and admins) and, when the type allows it, the patient's own
	// users.
	CareTeamID uuid.UUID
	PatientID  uuid.UUID
	// Payload is the event's data: ids and states only.
	Payload map[string]any
}

// Queue adds the event to b, to commit with the rest of the transaction.
func Queue(b *pgx.Batch, at time.Time, ev Event) {
	b.Queue(appendSQL, args(at, ev)...)
}

// Publish appends the event in tx.
func Publish(ctx context.Context, tx pgx.Tx, at time.Time, ev Event) error {
	if _, err := tx.Exec(ctx, appendSQL, args(at, ev)...); err != nil {
		return fmt.Errorf("event %s: %w", ev.Type, err)
	}
	return nil
}

func args(at time.Time, ev Event) []any {
	var team, patient *uuid.UUID
	if ev.CareTeamID != uuid.Nil {
		team = &ev.CareTeamID
	}
	if ev.PatientID != uuid.Nil {
		patient = &ev.PatientID
	}
	payload := ev.Payload
	if payload == nil {
		payload = map[string]any{}
	}
	return []any{at, ev.Type, team, patient, payload}
}
