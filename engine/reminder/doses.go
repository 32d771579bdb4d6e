package reminder

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/scope"
	"github.com/tendhealth/tend/rpm"
)

// Dose is one occurrence of a schedule: a medication dose or a measurement
// due. It names its schedule, never the medication.
type Dose struct {
	ID         uuid.UUID        `json:"id"`
	ScheduleID uuid.UUID        `json:"schedule_id"`
	PatientID  uuid.UUID        `json:"patient_id"`
	Type       rpm.ScheduleType `json:"type"`
	Kind       rpm.Kind         `json:"kind,omitempty"`
	// Date and Time are the scheduled local date and time of day.
	Date string `json:"date"`
	Time string `json:"time"`
	// DueAt is the instant of the reminder.
	DueAt time.Time `json:"due_at"`
	// Status is pending, taken, skipped, missed, or cancelled (its schedule
	// was deleted).
	Status     string     `json:"status"`
	RemindedAt *time.Time `json:"reminded_at"`
	DecidedAt  *time.Time `json:"decided_at"`
	// TakenAt is when the patient says they took it (or, for a measurement,
	// when the reading that met it was observed).
	TakenAt *time.Time `json:"taken_at"`
}

// scanDose reads a dose and its schedule's definition.
func scanDose(r pgx.Row) (Dose, rpm.Schedule, error) {
	var d Dose
	var key string
	var spec rpm.Schedule
	err := r.Scan(&d.ID, &d.ScheduleID, &d.PatientID, &key, &d.DueAt, &d.Status, &d.RemindedAt, &d.DecidedAt, &d.TakenAt, &spec)
	d.Type, d.Kind = spec.Type, spec.Kind
	if parts := strings.Split(key, "/"); len(parts) == 3 {
		d.Date, d.Time = parts[1], parts[2]
	}
	return d, spec, err
}

// Confirmation is what the patient says of a dose.
type Confirmation struct {
	// Status is taken or skipped.
	Status rpm.DoseStatus `json:"status"`
	// At is when it was taken; defaults to now.
	At *time.Time `json:"at,omitempty"`
}

// ConfirmDose records a dose as taken or skipped, by its patient or by a
// clinician in scope on the patient's behalf (audited either way). Only a
// pending dose can be confirmed, from one grace period before its time on;
// otherwise access.ErrConflict.
func (rs *Service) ConfirmDose(ctx context.Context, a access.Actor, id uuid.UUID, c Confirmation) (Dose, error) {
	if err := access.Require(a, access.RoleAdmin, access.RoleClinician, access.RolePatient); err != nil {
		return Dose{}, err
	}
	var out Dose
	err := pg.InTx(ctx, rs.pool, func(tx pgx.Tx) error {
		d, spec, err := scanDose(tx.QueryRow(ctx, doseInScopeSQL, id, a.Role, a.PatientID, a.UserID))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("dose: %w", access.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("load dose: %w", err)
		}
		now := rs.now()
		var v rpm.ValidationError
		if c.Status != rpm.DoseTaken && c.Status != rpm.DoseSkipped {
			v.Add("status", "must be taken or skipped")
		}
		at := now
		if c.At != nil {
			at = *c.At
			switch {
			case at.After(now.Add(time.Minute)):
				v.Add("at", "must not be in the future")
			case at.Before(d.DueAt.Add(-spec.Grace())):
				v.Add("at", "must not be before the dose's time minus its grace period")
			}
		}
		if err := v.OrNil(); err != nil {
			return err
		}
		switch {
		case d.Status != string(rpm.DosePending):
			return fmt.Errorf("dose is %s: %w", d.Status, access.ErrConflict)
		case now.Before(d.DueAt.Add(-spec.Grace())):
			return fmt.Errorf("dose is not due yet: %w", access.ErrConflict)
		}
		var takenAt *time.Time
		if c.Status == rpm.DoseTaken {
			takenAt = &at
		}
		if _, err := tx.Exec(ctx, decideDoseSQL, d.ID, c.Status, now, takenAt, pg.NilIfZero(a.UserID)); err != nil {
			return fmt.Errorf("confirm dose: %w", err)
		}
		d.Status, d.DecidedAt, d.TakenAt = string(c.Status), &now, takenAt
		out = d
		return rs.audit.Write(ctx, tx, a, audit.Entry{Action: "dose.confirm", PatientID: d.PatientID, ObjectType: "dose",
			ObjectID: d.ID.String(), Detail: map[string]any{"status": c.Status, "schedule_id": d.ScheduleID}})
	})
	return out, err
}

// DoseFilter selects a patient's doses by due time and status.
type DoseFilter struct {
	PatientID uuid.UUID
	// Since and Until bound due_at ([Since, Until)); zero Since is 7 days
	// before now, zero Until is the materialisation horizon from now.
	Since, Until time.Time
	// Status is one status, or empty for all.
	Status string
	// Limit bounds the result (50 by default, at most 500).
	Limit int
}

// doseStatuses are the accepted status filters.
var doseStatuses = []string{"pending", "taken", "skipped", "missed", "cancelled"}

// ListDoses lists a patient's doses by due time (staff in scope, the
// patient).
func (rs *Service) ListDoses(ctx context.Context, a access.Actor, f DoseFilter) ([]Dose, error) {
	if err := access.Require(a, readers...); err != nil {
		return nil, err
	}
	now := rs.now()
	if f.Since.IsZero() {
		f.Since = now.Add(-7 * 24 * time.Hour)
	}
	if f.Until.IsZero() {
		f.Until = now.Add(rs.horizon)
	}
	var v rpm.ValidationError
	if !f.Until.After(f.Since) {
		v.Add("until", "must be after since")
	}
	var status *string
	if f.Status != "" {
		status = &f.Status
		if !slices.Contains(doseStatuses, f.Status) {
			v.Add("status", "must be one of pending, taken, skipped, missed, cancelled")
		}
	}
	if err := v.OrNil(); err != nil {
		return nil, err
	}
	var out []Dose
	err := pg.InTx(ctx, rs.pool, func(tx pgx.Tx) error {
		if _, err := scope.OfPatient(ctx, tx, a, f.PatientID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, listDosesSQL, f.PatientID, f.Since, f.Until, status, pg.ClampLimit(f.Limit))
		if err != nil {
			return fmt.Errorf("list doses: %w", err)
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Dose, error) {
			d, _, err := scanDose(r)
			return d, err
		})
		if err != nil {
			return fmt.Errorf("list doses: %w", err)
		}
		return rs.audit.Write(ctx, tx, a, audit.Entry{Action: "dose.list", PatientID: f.PatientID, ObjectType: "patient",
			ObjectID: f.PatientID.String(), Detail: map[string]any{"count": len(out)}})
	})
	if out == nil {
		out = []Dose{}
	}
	return out, err
}

// Adherence is a patient's adherence since a time: per schedule and in total.
type Adherence struct {
	PatientID uuid.UUID              `json:"patient_id"`
	Since     time.Time              `json:"since"`
	Until     time.Time              `json:"until"`
	Schedules []rpm.AdherenceSummary `json:"schedules"`
	Total     rpm.AdherenceSummary   `json:"total"`
}

// GetAdherence summarises a patient's doses due from since (zero: 30 days
// ago) until now (staff in scope, the patient). Cancelled doses do not count.
func (rs *Service) GetAdherence(ctx context.Context, a access.Actor, patientID uuid.UUID, since time.Time) (Adherence, error) {
	if err := access.Require(a, readers...); err != nil {
		return Adherence{}, err
	}
	now := rs.now()
	if since.IsZero() {
		since = now.Add(-30 * 24 * time.Hour)
	}
	if !since.Before(now) {
		return Adherence{}, &rpm.ValidationError{Fields: []rpm.FieldError{{Field: "since", Reason: "must be in the past"}}}
	}
	out := Adherence{PatientID: patientID, Since: since, Until: now}
	err := pg.InTx(ctx, rs.pool, func(tx pgx.Tx) error {
		if _, err := scope.OfPatient(ctx, tx, a, patientID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, adherenceDosesSQL, patientID, since, now)
		if err != nil {
			return fmt.Errorf("adherence: %w", err)
		}
		doses, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rpm.Dose, error) {
			var d rpm.Dose
			var sid uuid.UUID
			err := r.Scan(&sid, &d.Status, &d.DueAt)
			d.ScheduleID = sid.String()
			return d, err
		})
		if err != nil {
			return fmt.Errorf("adherence: %w", err)
		}
		out.Schedules, out.Total = rpm.Adherence(doses, now)
		return rs.audit.Write(ctx, tx, a, audit.Entry{Action: "adherence.read", PatientID: patientID, ObjectType: "patient",
			ObjectID: patientID.String()})
	})
	if out.Schedules == nil {
		out.Schedules = []rpm.AdherenceSummary{}
	}
	return out, err
}
