package reminder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/rivertype"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/scope"
	"github.com/tendhealth/tend/rpm"
)

// Schedule is a stored reminder schedule.
type Schedule struct {
	rpm.Schedule
	PatientID uuid.UUID `json:"patient_id"`
	// Paused schedules keep their history but remind no more until resumed.
	Paused    bool      `json:"paused"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// writers may create, change and delete schedules (of patients in scope).
var writers = []access.Role{access.RoleAdmin, access.RoleClinician, access.RoleScheduler}

// readers may read schedules and doses (patients their own).
var readers = []access.Role{access.RoleAdmin, access.RoleClinician, access.RoleScheduler, access.RolePatient}

// CreateSchedule stores a schedule for a patient in scope and materialises
// its doses of the coming horizon in the same transaction. An invalid
// schedule is a *rpm.ValidationError naming each field; an out-of-scope
// patient is access.ErrNotFound, whatever the body.
func (rs *Service) CreateSchedule(ctx context.Context, a access.Actor, patientID uuid.UUID, in rpm.Schedule) (Schedule, error) {
	if err := access.Require(a, writers...); err != nil {
		return Schedule{}, err
	}
	var out Schedule
	err := pg.InTx(ctx, rs.pool, func(tx pgx.Tx) error {
		if _, err := scope.OfPatient(ctx, tx, a, patientID); err != nil {
			return err
		}
		if err := in.Validate(); err != nil {
			return err
		}
		now := rs.now()
		in.ID = pg.NewID().String()
		out = Schedule{Schedule: in, PatientID: patientID, CreatedAt: now, UpdatedAt: now}
		if _, err := tx.Exec(ctx, insertScheduleSQL, in.ID, patientID, in.Type, in, pg.NilIfZero(a.UserID), now); err != nil {
			return fmt.Errorf("store schedule: %w", err)
		}
		zone, err := rs.patientZone(ctx, tx, patientID)
		if err != nil {
			return err
		}
		if _, err := rs.materialise(ctx, tx, []active{{spec: in, patientID: patientID, zone: zone}}, now, now.Add(rs.horizon)); err != nil {
			return err
		}
		return rs.audit.Write(ctx, tx, a, audit.Entry{Action: "schedule.create", PatientID: patientID, ObjectType: "schedule",
			ObjectID: in.ID, Detail: map[string]any{"type": in.Type}})
	})
	return out, err
}

// ListSchedules lists a patient's schedules (staff in scope, the patient).
func (rs *Service) ListSchedules(ctx context.Context, a access.Actor, patientID uuid.UUID) ([]Schedule, error) {
	if err := access.Require(a, readers...); err != nil {
		return nil, err
	}
	var out []Schedule
	err := pg.InTx(ctx, rs.pool, func(tx pgx.Tx) error {
		if _, err := scope.OfPatient(ctx, tx, a, patientID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, listSchedulesSQL, patientID)
		if err != nil {
			return fmt.Errorf("list schedules: %w", err)
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Schedule, error) {
			var s Schedule
			var id uuid.UUID
			err := r.Scan(&id, &s.PatientID, &s.Schedule, &s.Paused, &s.CreatedAt, &s.UpdatedAt)
			s.ID = id.String()
			return s, err
		})
		if err != nil {
			return fmt.Errorf("list schedules: %w", err)
		}
		return rs.audit.Write(ctx, tx, a, audit.Entry{Action: "schedule.list", PatientID: patientID, ObjectType: "patient",
			ObjectID: patientID.String(), Detail: map[string]any{"count": len(out)}})
	})
	if out == nil {
		out = []Schedule{}
	}
	return out, err
}

// loadSchedule reads and locks a schedule whose patient the actor may see.
func (rs *Service) loadSchedule(ctx context.Context, tx pgx.Tx, a access.Actor, id uuid.UUID) (Schedule, *time.Location, error) {
	var s Schedule
	var sid uuid.UUID
	var tz string
	err := tx.QueryRow(ctx, scheduleInScopeSQL, id, a.Role, a.PatientID, a.UserID).
		Scan(&sid, &s.PatientID, &s.Schedule, &s.Paused, &s.CreatedAt, &s.UpdatedAt, &tz)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, nil, fmt.Errorf("schedule: %w", access.ErrNotFound)
	}
	if err != nil {
		return s, nil, fmt.Errorf("load schedule: %w", err)
	}
	s.ID = sid.String()
	loc, err := rpm.ValidateZone(tz)
	if err != nil {
		return s, nil, fmt.Errorf("schedule %s: patient time zone: %w", sid, err)
	}
	return s, loc, nil
}

// GetSchedule reads one schedule (staff in scope, the patient).
func (rs *Service) GetSchedule(ctx context.Context, a access.Actor, id uuid.UUID) (Schedule, error) {
	if err := access.Require(a, readers...); err != nil {
		return Schedule{}, err
	}
	var out Schedule
	err := pg.InTx(ctx, rs.pool, func(tx pgx.Tx) error {
		var err error
		if out, _, err = rs.loadSchedule(ctx, tx, a, id); err != nil {
			return err
		}
		return rs.audit.Write(ctx, tx, a, audit.Entry{Action: "schedule.read", PatientID: out.PatientID, ObjectType: "schedule", ObjectID: out.ID})
	})
	return out, err
}

// SchedulePatch is the shape of a PATCH body: any field of a schedule, and
// paused. UpdateSchedule takes the body itself, to tell a field that is
// absent from one that is given.
type SchedulePatch struct {
	rpm.Schedule
	Paused *bool `json:"paused"`
}

// UpdateSchedule applies a JSON merge patch to a schedule: any of its fields
// (a field given replaces the stored one; null clears days_of_week,
// grace_minutes, remind_again_minutes and through_quiet_hours, "" clears
// end_date and dose) and
// "paused" (true pauses, false resumes). The type of a schedule cannot
// change. Future doses not yet reminded are replaced by the new definition
// in the same transaction; a paused schedule has none. An unknown field or a
// malformed patch is a *rpm.ValidationError.
func (rs *Service) UpdateSchedule(ctx context.Context, a access.Actor, id uuid.UUID, patch []byte) (Schedule, error) {
	if err := access.Require(a, writers...); err != nil {
		return Schedule{}, err
	}
	var out Schedule
	err := pg.InTx(ctx, rs.pool, func(tx pgx.Tx) error {
		s, loc, err := rs.loadSchedule(ctx, tx, a, id)
		if err != nil {
			return err
		}
		p := SchedulePatch{Schedule: s.Schedule, Paused: &s.Paused}
		dec := json.NewDecoder(bytes.NewReader(patch))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			return patchError(err)
		}
		var v rpm.ValidationError
		if p.Type != s.Type {
			v.Add("type", "cannot change; delete the schedule and create another")
		}
		if p.ID != s.ID {
			v.Add("id", "cannot change")
		}
		if p.Paused == nil {
			v.Add("paused", "must be true or false")
		}
		if err := v.OrNil(); err != nil {
			return err
		}
		if err := p.Validate(); err != nil {
			return err
		}
		now := rs.now()
		if err := rs.dropFuture(ctx, tx, id, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, updateScheduleSQL, id, p.Schedule, p.Type, *p.Paused, now); err != nil {
			return fmt.Errorf("update schedule: %w", err)
		}
		if !*p.Paused {
			if _, err := rs.materialise(ctx, tx, []active{{spec: p.Schedule, patientID: s.PatientID, zone: loc}}, now, now.Add(rs.horizon)); err != nil {
				return err
			}
		}
		action := "schedule.update"
		switch {
		case *p.Paused && !s.Paused:
			action = "schedule.pause"
		case !*p.Paused && s.Paused:
			action = "schedule.resume"
		}
		out = Schedule{Schedule: p.Schedule, PatientID: s.PatientID, Paused: *p.Paused, CreatedAt: s.CreatedAt, UpdatedAt: now}
		return rs.audit.Write(ctx, tx, a, audit.Entry{Action: action, PatientID: s.PatientID, ObjectType: "schedule", ObjectID: s.ID})
	})
	return out, err
}

// unknownField prefixes encoding/json's error for a field not in the struct.
const unknownField = "json: unknown field "

// patchError describes a malformed patch by field, without echoing values.
func patchError(err error) error {
	var v rpm.ValidationError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &te) && te.Field != "":
		v.Add(strings.TrimPrefix(te.Field, "Schedule."), "has the wrong type")
	case strings.HasPrefix(err.Error(), unknownField):
		v.Add(strings.Trim(strings.TrimPrefix(err.Error(), unknownField), `"`), "is not a schedule field")
	default:
		v.Add("body", "must be a JSON object of schedule fields")
	}
	return &v
}

// DeleteSchedule deletes a schedule: its future doses are dropped, those
// still pending are cancelled; decided doses stay for adherence.
func (rs *Service) DeleteSchedule(ctx context.Context, a access.Actor, id uuid.UUID) error {
	if err := access.Require(a, writers...); err != nil {
		return err
	}
	return pg.InTx(ctx, rs.pool, func(tx pgx.Tx) error {
		s, _, err := rs.loadSchedule(ctx, tx, a, id)
		if err != nil {
			return err
		}
		now := rs.now()
		if err := rs.dropFuture(ctx, tx, id, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, cancelPendingDosesSQL, id, now); err != nil {
			return fmt.Errorf("cancel doses: %w", err)
		}
		if _, err := tx.Exec(ctx, deleteScheduleSQL, id, now); err != nil {
			return fmt.Errorf("delete schedule: %w", err)
		}
		return rs.audit.Write(ctx, tx, a, audit.Entry{Action: "schedule.delete", PatientID: s.PatientID, ObjectType: "schedule", ObjectID: s.ID})
	})
}

// dropFuture removes a schedule's doses that are not yet due nor reminded
// and cancels their River jobs, so that a new definition replaces them. The
// jobs are found by their occurrence key (River's index on job arguments);
// doses stored before jobs were found that way also list their job ids.
func (rs *Service) dropFuture(ctx context.Context, tx pgx.Tx, scheduleID uuid.UUID, now time.Time) error {
	rows, err := tx.Query(ctx, dropFutureDosesSQL, scheduleID, now)
	if err != nil {
		return fmt.Errorf("drop future doses: %w", err)
	}
	var keys []string
	var jobIDs []int64
	for rows.Next() {
		var key string
		var js []int64
		if err := rows.Scan(&key, &js); err != nil {
			rows.Close()
			return fmt.Errorf("drop future doses: %w", err)
		}
		keys, jobIDs = append(keys, key), append(jobIDs, js...)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("drop future doses: %w", err)
	}
	if len(keys) == 0 {
		return nil
	}
	rows, err = tx.Query(ctx, doseJobsByKeySQL, keys)
	if err != nil {
		return fmt.Errorf("find reminder jobs: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("find reminder jobs: %w", err)
	}
	for _, j := range found {
		if !slices.Contains(jobIDs, j) {
			jobIDs = append(jobIDs, j)
		}
	}
	for _, j := range jobIDs {
		if _, err := rs.jobs().JobCancelTx(ctx, tx, j); err != nil && !errors.Is(err, rivertype.ErrNotFound) {
			return fmt.Errorf("cancel reminder job: %w", err)
		}
	}
	return nil
}
