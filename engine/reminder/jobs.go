package reminder

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/tendhealth/tend/engine/alerting"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/delivery"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/scope"
	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/rules"
)

// sendArgs is the reminder of one occurrence (Again: the second one). The
// kind string is stored in the database and must never change.
type sendArgs struct {
	Key   string `json:"key"`
	Again bool   `json:"again,omitempty"`
}

func (sendArgs) Kind() string { return "reminder.send" }

// missedArgs is the missed-dose check of one occurrence, at the end of its
// grace period: the job of doses stored before the missed-dose sweep
// (missed.go) took over; new doses have none.
type missedArgs struct {
	Key string `json:"key"`
}

func (missedArgs) Kind() string { return "reminder.missed" }

type sendWorker struct {
	river.WorkerDefaults[sendArgs]
	rs *Service
}

func (w *sendWorker) Work(ctx context.Context, job *river.Job[sendArgs]) error {
	wait, err := w.rs.Remind(ctx, job.Args.Key, job.Args.Again)
	if err != nil {
		return err
	}
	if wait > 0 {
		return river.JobSnooze(wait)
	}
	return nil
}

type missedWorker struct {
	river.WorkerDefaults[missedArgs]
	rs *Service
}

func (w *missedWorker) Work(ctx context.Context, job *river.Job[missedArgs]) error {
	_, wait, err := w.rs.CheckMissed(ctx, job.Args.Key)
	if err != nil {
		return err
	}
	if wait > 0 {
		return river.JobSnooze(wait)
	}
	return nil
}

// lockedDose is a dose as the jobs read it, locked.
type lockedDose struct {
	id, patientID       uuid.UUID
	status              rpm.DoseStatus
	dueAt               time.Time
	remindedAt, againAt *time.Time
	spec                rpm.Schedule
	paused, deleted     bool
	// restricted: the patient's processing is restricted (GDPR article
	// 18): no reminder, and no missed dose (the dose is cancelled).
	restricted bool
}

// lockDose reads and locks the dose of an occurrence key (found false when
// it was dropped: its schedule changed).
func lockDose(ctx context.Context, tx pgx.Tx, key string) (lockedDose, bool, error) {
	var d lockedDose
	err := tx.QueryRow(ctx, lockDoseByKeySQL, key).Scan(&d.id, &d.patientID, &d.status, &d.dueAt, &d.remindedAt, &d.againAt,
		&d.spec, &d.paused, &d.deleted, &d.restricted)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, false, nil
	}
	if err != nil {
		return d, false, fmt.Errorf("load dose: %w", err)
	}
	return d, true, nil
}

// reminderKind is what the push may say of a schedule: "medication", or the
// vital kind to measure. Never the medication or its dose.
func reminderKind(s rpm.Schedule) string {
	if s.Type == rpm.MeasurementSchedule {
		return string(s.Kind)
	}
	return string(rpm.MedicationSchedule)
}

// patientUser is one of the patient's users with quiet hours and devices.
type patientUser struct {
	id               uuid.UUID
	tz, qStart, qEnd *string
	devices          []uuid.UUID
}

// patientUsers loads the patient's users with their quiet hours and
// devices.
func patientUsers(ctx context.Context, tx pgx.Tx, patientID uuid.UUID) ([]patientUser, error) {
	rows, err := tx.Query(ctx, patientUsersSQL, patientID)
	if err != nil {
		return nil, fmt.Errorf("reminder: patient users: %w", err)
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (patientUser, error) {
		var u patientUser
		err := r.Scan(&u.id, &u.tz, &u.qStart, &u.qEnd, &u.devices)
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("reminder: patient users: %w", err)
	}
	return users, nil
}

// quietUntil is when the last of users' quiet hours around now ends (zero:
// none of them is in quiet hours).
func quietUntil(users []patientUser, now time.Time) time.Time {
	var until time.Time
	for _, u := range users {
		if u.tz == nil || u.qStart == nil || u.qEnd == nil {
			continue
		}
		if end, in := delivery.QuietUntil(*u.tz, *u.qStart, *u.qEnd, now); in && end.After(until) {
			until = end
		}
	}
	return until
}

// Remind sends the reminder of an occurrence (again: its second reminder)
// to every device of the patient's users, with a generic text, in one
// transaction with the dose's reminded stamp: a run after a crash, or a
// second worker, finds the stamp and sends nothing. A dose no longer
// pending, of a paused or deleted schedule or a restricted patient, or
// dropped, is not reminded.
//
// A schedule that does not remind through quiet hours is held while any of
// the patient's users is in quiet hours: Remind returns how long to wait
// (the job snoozes until the window ends), unless the window ends after
// the grace period, when the reminder is dropped.
func (rs *Service) Remind(ctx context.Context, key string, again bool) (time.Duration, error) {
	var wait time.Duration
	err := pg.InTx(ctx, rs.pool, func(tx pgx.Tx) error {
		d, ok, err := lockDose(ctx, tx, key)
		if err != nil || !ok {
			return err
		}
		if d.status != rpm.DosePending || d.paused || d.deleted || d.restricted || (again && d.againAt != nil) || (!again && d.remindedAt != nil) {
			return nil
		}
		now := rs.now()
		if d.spec.Type == rpm.MeasurementSchedule {
			// Measured already (within a grace period before its time): met,
			// and nothing to remind.
			var at *time.Time
			if err := tx.QueryRow(ctx, readingInWindowSQL, d.patientID, d.spec.Kind, d.dueAt.Add(-d.spec.Grace()), now).Scan(&at); err != nil {
				return fmt.Errorf("reminder: readings: %w", err)
			}
			if at != nil {
				if _, err := tx.Exec(ctx, decideDoseSQL, d.id, rpm.DoseTaken, now, at, nil); err != nil {
					return fmt.Errorf("reminder: %w", err)
				}
				return rs.audit.Write(ctx, tx, systemActor, audit.Entry{Action: "dose.decide", PatientID: d.patientID,
					ObjectType: "dose", ObjectID: d.id.String(), Detail: map[string]any{"status": string(rpm.DoseTaken)}})
			}
		}
		users, err := patientUsers(ctx, tx, d.patientID)
		if err != nil {
			return err
		}
		if !d.spec.ThroughQuiet() {
			if until := quietUntil(users, now); !until.IsZero() {
				if until.Before(d.dueAt.Add(d.spec.Grace())) {
					wait = until.Sub(now)
				}
				return nil
			}
		}
		var nIDs, nUsers []uuid.UUID
		var nDevices []int32
		var jobs []river.InsertManyParams
		for _, u := range users {
			id := pg.NewID()
			nIDs, nUsers, nDevices = append(nIDs, id), append(nUsers, u.id), append(nDevices, int32(len(u.devices)))
			for _, dev := range u.devices {
				jobs = append(jobs, delivery.Job(id, dev, uuid.Nil, reminderUrgency))
			}
		}
		if len(nIDs) > 0 {
			if _, err := tx.Exec(ctx, insertNotificationsSQL, nIDs, nUsers, nDevices, reminderUrgency, reminderKind(d.spec), now); err != nil {
				return fmt.Errorf("reminder: record notifications: %w", err)
			}
		}
		stamp := markRemindedSQL
		if again {
			stamp = markRemindedAgainSQL
		}
		if _, err := tx.Exec(ctx, stamp, d.id, now); err != nil {
			return fmt.Errorf("reminder: stamp dose: %w", err)
		}
		if err := rs.audit.Write(ctx, tx, systemActor, audit.Entry{Action: "dose.remind", PatientID: d.patientID,
			ObjectType: "dose", ObjectID: d.id.String(), Detail: map[string]any{"notifications": len(nIDs), "again": again}}); err != nil {
			return err
		}
		if len(jobs) > 0 {
			if _, err := rs.jobs().InsertManyTx(ctx, tx, jobs); err != nil {
				return fmt.Errorf("reminder: enqueue pushes: %w", err)
			}
		}
		return nil
	})
	return wait, err
}

// reminderUrgency is the push urgency of a reminder: timely, not alarming.
const reminderUrgency = rpm.Medium

// CheckMissed decides an occurrence at the end of its grace period, if no
// one did: a medication dose still pending is missed; a measurement is met
// (taken) when a reading of its kind was observed from one grace period
// before its time to the end of its grace period, and missed otherwise. A
// missed dose is a care event for the rules (missed_dose per schedule,
// missed_measurement per kind); the alerts they raise, and their pushes,
// commit in the same transaction as the missed status. It returns the
// status decided (empty when there was nothing to decide) or, when called
// before the grace period ended, how long to wait.
func (rs *Service) CheckMissed(ctx context.Context, key string) (rpm.DoseStatus, time.Duration, error) {
	var decided rpm.DoseStatus
	var wait time.Duration
	err := pg.InTx(ctx, rs.pool, func(tx pgx.Tx) error {
		d, ok, err := lockDose(ctx, tx, key)
		if err != nil || !ok || d.status != rpm.DosePending || d.deleted {
			return err
		}
		now := rs.now()
		end := d.dueAt.Add(d.spec.Grace()).Truncate(time.Microsecond)
		if now.Before(end) {
			wait = end.Sub(now)
			return nil
		}
		if d.restricted {
			// Processing restricted: the dose is not judged (no missed dose,
			// no alert); it is cancelled.
			decided = doseCancelled
			if _, err := tx.Exec(ctx, decideDoseSQL, d.id, decided, end, nil, nil); err != nil {
				return fmt.Errorf("missed check: %w", err)
			}
			return rs.audit.Write(ctx, tx, systemActor, audit.Entry{Action: "dose.decide", PatientID: d.patientID,
				ObjectType: "dose", ObjectID: d.id.String(), Detail: map[string]any{"status": string(decided), "restricted": true}})
		}
		// Readings arrive under the patient's lock (ingest): hold it too, so
		// a reading committing now is seen or comes after the decision.
		if err := pg.LockPatients(ctx, tx, d.patientID); err != nil {
			return fmt.Errorf("missed check: %w", err)
		}
		decided = rpm.DoseMissed
		var takenAt *time.Time
		if d.spec.Type == rpm.MeasurementSchedule {
			if err := tx.QueryRow(ctx, readingInWindowSQL, d.patientID, d.spec.Kind, d.dueAt.Add(-d.spec.Grace()), end).Scan(&takenAt); err != nil {
				return fmt.Errorf("missed check: readings: %w", err)
			}
			if takenAt != nil {
				decided = rpm.DoseTaken
			}
		}
		if _, err := tx.Exec(ctx, decideDoseSQL, d.id, decided, end, takenAt, nil); err != nil {
			return fmt.Errorf("missed check: %w", err)
		}
		if err := rs.audit.Write(ctx, tx, systemActor, audit.Entry{Action: "dose.decide", PatientID: d.patientID,
			ObjectType: "dose", ObjectID: d.id.String(), Detail: map[string]any{"status": string(decided)}}); err != nil {
			return err
		}
		if decided == rpm.DoseMissed {
			return rs.raiseMissed(ctx, tx, d, end)
		}
		return nil
	})
	return decided, wait, err
}

// raiseMissed judges a missed dose against the event rules of the patient's
// organisation's pack and raises what they find through the alert path, in
// tx.
func (rs *Service) raiseMissed(ctx context.Context, tx pgx.Tx, d lockedDose, at time.Time) error {
	ps, err := scope.OfPatient(ctx, tx, systemActor, d.patientID)
	if err != nil {
		return err
	}
	pack := rs.rules(ps.OrgID)
	ev := eventOf(d.id, d.spec, at)
	rows, err := tx.Query(ctx, missedHistorySQL, d.patientID, at.Add(-pack.EventLookback()), d.id)
	if err != nil {
		return fmt.Errorf("missed doses: history: %w", err)
	}
	hist, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rules.Event, error) {
		var id, sid uuid.UUID
		var typ rpm.ScheduleType
		var kind rpm.Kind
		var t time.Time
		err := r.Scan(&id, &sid, &typ, &kind, &t)
		return eventOf(id, rpm.Schedule{ID: sid.String(), Type: typ, Kind: kind}, t), err
	})
	if err != nil {
		return fmt.Errorf("missed doses: history: %w", err)
	}
	var params map[string]map[string]float64
	if err := tx.QueryRow(ctx, patientParamsSQL, d.patientID).Scan(&params); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("missed doses: params: %w", err)
	}
	res := pack.EvaluateEvents(rules.EventInput{Event: ev, History: hist, Programs: ps.Programs, Params: params})
	if len(res.Findings) == 0 && len(res.Suppressed) == 0 {
		return nil
	}
	hit := alerting.Hit{Reading: alerting.Stored{Measurement: rpm.Measurement{ObservedAt: at, Kind: ev.Kind}},
		Findings: append(res.Findings, res.Suppressed...), UpdateOnly: len(res.Findings) == 0}
	_, err = rs.alerting.Raise(ctx, tx, systemActor, d.patientID, ps, []alerting.Hit{hit})
	return err
}

// eventOf is the care event of a missed dose: per schedule for medication
// (the schedule stands for the medication, whose name the rules never
// need), per kind for measurements.
func eventOf(id uuid.UUID, s rpm.Schedule, at time.Time) rules.Event {
	if s.Type == rpm.MeasurementSchedule {
		return rules.Event{ID: id.String(), Type: rules.MissedMeasurement, Kind: s.Kind, At: at}
	}
	return rules.Event{ID: id.String(), Type: rules.MissedDose, Medication: s.ID, At: at}
}

// doseCancelled is the status of a dose that will not be judged: its
// schedule was deleted or changed, or its patient's processing restricted.
const doseCancelled rpm.DoseStatus = "cancelled"
