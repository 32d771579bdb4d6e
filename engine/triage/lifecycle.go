package triage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/events"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/rpm"
)

// Dispositions are the outcomes a clinician may resolve an alert with.
var Dispositions = []string{"called_patient", "advised_emergency_care", "medication_adjusted",
	"appointment_scheduled", "no_action_needed", "false_reading", "other"}

// MaxSnooze bounds how far ahead an alert may be snoozed.
const MaxSnooze = 7 * 24 * time.Hour

// maxNote bounds a clinician's note on a transition, in characters.
const maxNote = 2000

// Conflict is the error of a transition the alert's current state forbids
// (acknowledge, snooze or assign a resolved alert, resolve it twice). It
// wraps access.ErrConflict and carries the alert as it is now, so a client
// can show what happened instead.
type Conflict struct {
	Reason string
	Alert  Alert
}

func (c *Conflict) Error() string { return c.Reason + ": " + access.ErrConflict.Error() }

// Unwrap makes errors.Is(err, access.ErrConflict) hold.
func (c *Conflict) Unwrap() error { return access.ErrConflict }

// Current returns the alert's current state (for the problem body).
func (c *Conflict) Current() any { return c.Alert }

// conflict builds the Conflict of alert id, read in tx.
func conflict(ctx context.Context, tx pgx.Tx, id uuid.UUID, reason string) error {
	al, err := scanAlert(tx.QueryRow(ctx, alertByIDSQL, id))
	if err != nil {
		return fmt.Errorf("alert state: %w", err)
	}
	return &Conflict{Reason: reason, Alert: al}
}

// change is one transition decided by a transition's step.
type change struct {
	action string         // alert event action: resolved, snoozed, assigned
	detail map[string]any // event detail besides the note
	audit  string         // audit action
}

// transition runs step on alert id (locked, in the actor's scope) and, when
// step returns a change, records its alert event (with the note), its audit
// entry and an alert.updated stream event, all in one transaction. It
// returns the alert as it is after the change.
func (tr *Service) transition(ctx context.Context, a access.Actor, id uuid.UUID, note string,
	step func(tx pgx.Tx, status string, now time.Time) (change, error)) (Alert, error) {
	if err := access.Require(a, access.RoleAdmin, access.RoleClinician); err != nil {
		return Alert{}, fmt.Errorf("alert: %w", access.ErrNotFound)
	}
	var al Alert
	err := pg.InTx(ctx, tr.pool, func(tx pgx.Tx) error {
		var status string
		var patient uuid.UUID
		err := tx.QueryRow(ctx, lockAlertSQL, a.Role, a.UserID, id).Scan(&status, &patient)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("alert: %w", access.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("lock alert: %w", err)
		}
		now := tr.now()
		c, err := step(tx, status, now)
		if err != nil {
			return err
		}
		detail := c.detail
		if note != "" {
			if detail == nil {
				detail = map[string]any{}
			}
			detail["note"] = note
		}
		if _, err := tx.Exec(ctx, insertAlertEventSQL, id, c.action, pg.NilIfZero(a.UserID), now, detail); err != nil {
			return fmt.Errorf("alert event: %w", err)
		}
		if err := tr.audit.Write(ctx, tx, a, audit.Entry{Action: c.audit, PatientID: patient, ObjectType: "alert", ObjectID: id.String()}); err != nil {
			return err
		}
		if al, err = scanAlert(tx.QueryRow(ctx, alertByIDSQL, id)); err != nil {
			return fmt.Errorf("read alert: %w", err)
		}
		return publishUpdate(ctx, tx, now, al)
	})
	return al, err
}

// publishUpdate streams an alert's new state (ids and states only).
func publishUpdate(ctx context.Context, tx pgx.Tx, now time.Time, al Alert) error {
	payload := map[string]any{"alert_id": al.ID, "status": al.Status, "urgency": al.Urgency}
	if al.AssignedTo != nil {
		payload["assigned_to"] = *al.AssignedTo
	}
	return events.Publish(ctx, tx, now, events.Event{Type: events.AlertUpdated, CareTeamID: al.CareTeamID,
		PatientID: al.PatientID, Payload: payload})
}

// checkNote adds a field error for a note that is too long or not text.
func checkNote(v *rpm.ValidationError, note string) {
	switch {
	case !utf8.ValidString(note):
		v.Add("note", "is not valid UTF-8")
	case utf8.RuneCountInString(note) > maxNote:
		v.Add("note", fmt.Sprintf("is longer than %d characters", maxNote))
	}
}

// ResolveAlert closes an alert with a disposition (one of Dispositions) and
// an optional note. Resolving a resolved alert is a *Conflict.
func (tr *Service) ResolveAlert(ctx context.Context, a access.Actor, id uuid.UUID, disposition, note string) (Alert, error) {
	var v rpm.ValidationError
	switch {
	case disposition == "":
		v.Add("disposition", "is required: one of "+strings.Join(Dispositions, ", "))
	case !slices.Contains(Dispositions, disposition):
		v.Add("disposition", "must be one of "+strings.Join(Dispositions, ", "))
	}
	checkNote(&v, note)
	if err := v.OrNil(); err != nil {
		return Alert{}, err
	}
	return tr.transition(ctx, a, id, note, func(tx pgx.Tx, status string, now time.Time) (change, error) {
		if status == "resolved" {
			return change{}, conflict(ctx, tx, id, "alert is already resolved")
		}
		if _, err := tx.Exec(ctx, resolveAlertSQL, id, now, pg.NilIfZero(a.UserID), disposition, nilIfEmpty(note)); err != nil {
			return change{}, fmt.Errorf("resolve alert: %w", err)
		}
		return change{action: "resolved", detail: map[string]any{"disposition": disposition}, audit: "alert.resolve"}, nil
	})
}

// SnoozeAlert hides an open or acknowledged alert from paging until a time
// in the next MaxSnooze. The snooze ends early when the alert's urgency
// rises (package alerting reopens it), and at until a job reopens it.
// Snoozing a resolved alert is a *Conflict.
func (tr *Service) SnoozeAlert(ctx context.Context, a access.Actor, id uuid.UUID, until time.Time, note string) (Alert, error) {
	var v rpm.ValidationError
	now := tr.now()
	switch {
	case until.IsZero():
		v.Add("until", "is required (RFC 3339 time)")
	case !until.After(now):
		v.Add("until", "must be in the future")
	case until.Sub(now) > MaxSnooze:
		v.Add("until", "must be at most 168h ahead")
	}
	checkNote(&v, note)
	if err := v.OrNil(); err != nil {
		return Alert{}, err
	}
	until = until.UTC().Truncate(time.Second)
	return tr.transition(ctx, a, id, note, func(tx pgx.Tx, status string, now time.Time) (change, error) {
		if status == "resolved" {
			return change{}, conflict(ctx, tx, id, "alert is resolved")
		}
		if _, err := tx.Exec(ctx, snoozeAlertSQL, id, now, until); err != nil {
			return change{}, fmt.Errorf("snooze alert: %w", err)
		}
		if _, err := tr.jobs().InsertTx(ctx, tx, snoozeEndArgs{AlertID: id, Until: until},
			&river.InsertOpts{ScheduledAt: until, UniqueOpts: river.UniqueOpts{ByArgs: true}}); err != nil {
			return change{}, fmt.Errorf("schedule snooze end: %w", err)
		}
		return change{action: "snoozed", detail: map[string]any{"until": until}, audit: "alert.snooze"}, nil
	})
}

// AssignAlert gives an unresolved alert to a clinician or lead of its care
// team; anyone else is a field error on user_id. Assigning a resolved alert
// is a *Conflict.
func (tr *Service) AssignAlert(ctx context.Context, a access.Actor, id, userID uuid.UUID, note string) (Alert, error) {
	var v rpm.ValidationError
	if userID == uuid.Nil {
		v.Add("user_id", "is required")
	}
	checkNote(&v, note)
	if err := v.OrNil(); err != nil {
		return Alert{}, err
	}
	return tr.transition(ctx, a, id, note, func(tx pgx.Tx, status string, now time.Time) (change, error) {
		if status == "resolved" {
			return change{}, conflict(ctx, tx, id, "alert is resolved")
		}
		var ok bool
		if err := tx.QueryRow(ctx, assigneeOKSQL, id, userID).Scan(&ok); err != nil {
			return change{}, fmt.Errorf("check assignee: %w", err)
		}
		if !ok {
			return change{}, &rpm.ValidationError{Fields: []rpm.FieldError{{Field: "user_id",
				Reason: "is not a clinician or lead of the alert's care team"}}}
		}
		if _, err := tx.Exec(ctx, assignAlertSQL, id, now, userID); err != nil {
			return change{}, fmt.Errorf("assign alert: %w", err)
		}
		return change{action: "assigned", detail: map[string]any{"assignee": userID}, audit: "alert.assign"}, nil
	})
}

// snoozeEndArgs is the job that reopens a snoozed alert when its snooze
// ends. The kind string is stored in the database and must never change.
type snoozeEndArgs struct {
	AlertID uuid.UUID `json:"alert_id"`
	Until   time.Time `json:"until"`
}

func (snoozeEndArgs) Kind() string { return "triage.snooze_end" }

type snoozeEndWorker struct {
	river.WorkerDefaults[snoozeEndArgs]
	tr *Service
}

func (w *snoozeEndWorker) Work(ctx context.Context, job *river.Job[snoozeEndArgs]) error {
	_, err := w.tr.EndSnooze(ctx, job.Args.AlertID)
	return err
}

// AddWorkers registers triage's workers (the end of a snooze).
func (tr *Service) AddWorkers(workers *river.Workers) {
	river.AddWorker(workers, &snoozeEndWorker{tr: tr})
}

// snoozeActor is who ends a snooze.
var snoozeActor = access.System("snooze-end")

// EndSnooze reopens alert id if it is snoozed and its snooze has ended
// (the snooze-end job; exported for tests). It reports whether it did: a
// snooze that was extended, acknowledged or resolved since is left alone.
func (tr *Service) EndSnooze(ctx context.Context, id uuid.UUID) (bool, error) {
	var done bool
	err := pg.InTx(ctx, tr.pool, func(tx pgx.Tx) error {
		now := tr.now()
		var patient uuid.UUID
		err := tx.QueryRow(ctx, endSnoozeSQL, id, now).Scan(&patient)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("end snooze: %w", err)
		}
		done = true
		if _, err := tx.Exec(ctx, insertAlertEventSQL, id, "snooze_ended", nil, now, nil); err != nil {
			return fmt.Errorf("end snooze: %w", err)
		}
		if err := tr.audit.Write(ctx, tx, snoozeActor, audit.Entry{Action: "alert.snooze_end", PatientID: patient, ObjectType: "alert",
			ObjectID: id.String()}); err != nil {
			return err
		}
		al, err := scanAlert(tx.QueryRow(ctx, alertByIDSQL, id))
		if err != nil {
			return fmt.Errorf("end snooze: %w", err)
		}
		return publishUpdate(ctx, tx, now, al)
	})
	return done, err
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
