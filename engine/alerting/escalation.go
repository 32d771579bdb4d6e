package alerting

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/delivery"
	"github.com/tendhealth/tend/engine/internal/events"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/rota"
	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/rules"
)

// Escalation. When route pages an open alert it schedules step 1 of its
// escalation at the urgency's acknowledgement deadline (the team's policy,
// else rpm.Urgency.AckDeadline; an urgency without one never escalates) —
// at once for a critical alert that reached no device. Step i notifies
// level i of the policy's levels (level 0, the first page, is route's) and
// schedules step i+1 a deadline later; the step after the last level flags
// the alert escalation_exhausted. A step does nothing unless the alert is
// still open (acknowledged, snoozed or resolved alerts stop escalating) and
// has not taken that step yet: the alert's row lock and escalation_level
// make each (alert, step) happen once even when two workers run it, and
// the jobs are unique by (alert, step).

// DefaultLevels are the escalation levels of a team without a policy.
var DefaultLevels = []string{"on_call", "leads", "all"}

// teamPolicy is a care team's escalation policy as stored (package care
// validates it).
type teamPolicy struct {
	AckDeadlines map[rpm.Urgency]rules.Duration `json:"ack_deadlines"`
	Levels       []string                       `json:"levels"`
}

// deadline is the time an alert of urgency u waits for an acknowledgement
// before each step; 0 means it does not escalate.
func (p *teamPolicy) deadline(u rpm.Urgency) time.Duration {
	if p == nil || p.AckDeadlines == nil {
		return u.AckDeadline()
	}
	return p.AckDeadlines[u].Std()
}

func (p *teamPolicy) levels() []string {
	if p == nil || len(p.Levels) == 0 {
		return DefaultLevels
	}
	return p.Levels
}

// escalateArgs is one escalation step of an alert. The kind string is
// stored in the database and must never change.
//
// A step is taken once however many jobs carry it: Escalate locks the alert
// row and checks the step it recorded. The jobs are deliberately not River
// unique jobs — River's scheduler promotes scheduled unique jobs slowly
// (10,000 overdue steps took about two minutes), and the row lock already
// makes a duplicate job a no-op.
type escalateArgs struct {
	AlertID uuid.UUID `json:"alert_id"`
	Step    int       `json:"step"`
}

func (escalateArgs) Kind() string { return "alerting.escalate" }

// EscalationQueue is the River queue of escalation steps, apart from the
// default queue so that a sweep of many overdue alerts neither waits behind
// nor holds up other maintenance jobs.
const EscalationQueue = "escalate"

// escalateJob is step of alert at; a zero at means at once (the job is
// available to workers at once instead of waiting for River's scheduler).
func escalateJob(alert uuid.UUID, step int, at time.Time) river.InsertManyParams {
	return river.InsertManyParams{Args: escalateArgs{AlertID: alert, Step: step},
		InsertOpts: &river.InsertOpts{Queue: EscalationQueue, ScheduledAt: at}}
}

type escalateWorker struct {
	river.WorkerDefaults[escalateArgs]
	al *Service
}

func (w *escalateWorker) Work(ctx context.Context, job *river.Job[escalateArgs]) error {
	_, err := w.al.Escalate(ctx, job.Args.AlertID, job.Args.Step)
	return err
}

// escalationActor is who escalates.
var escalationActor = access.System("escalation")

// EscalateUndelivered escalates a critical alert that reached no device at
// once (delivery calls it when it flags one undelivered): the first step
// runs now, unless it ran already.
func (al *Service) EscalateUndelivered(ctx context.Context, alertID uuid.UUID) {
	if _, err := al.Escalate(ctx, alertID, 1); err != nil {
		al.log.ErrorContext(ctx, "escalate undelivered alert", "alert_id", alertID, "error", err)
	}
}

// Escalate takes step of alert id's escalation if the alert is still open
// and has not taken it yet (the job; exported for tests and tools). It
// reports whether it did. Concurrent calls share transactions (a
// pg.Batcher): a sweep of many overdue alerts commits in batches, not one
// commit per alert.
func (al *Service) Escalate(ctx context.Context, id uuid.UUID, step int) (bool, error) {
	r := &escalateReq{id: id, step: step}
	if err := al.escalations.Do(ctx, r); err != nil {
		return false, err
	}
	return r.done, nil
}

// escalateReq is one escalation step to take, and whether it was.
type escalateReq struct {
	id   uuid.UUID
	step int
	done bool
}

// runEscalations takes a batch of steps in one transaction, locking the
// alerts in id order so that concurrent batches cannot deadlock.
func (al *Service) runEscalations(ctx context.Context, reqs []*escalateReq) error {
	slices.SortFunc(reqs, func(a, b *escalateReq) int {
		if c := bytes.Compare(a.id[:], b.id[:]); c != 0 {
			return c
		}
		return a.step - b.step
	})
	return pg.InTx(ctx, al.pool, func(tx pgx.Tx) error {
		var next []river.InsertManyParams // the following steps, scheduled together
		for _, r := range reqs {
			done, job, err := al.escalate(ctx, tx, r.id, r.step)
			if err != nil {
				return err
			}
			r.done = done
			if job != nil {
				next = append(next, *job)
			}
		}
		if len(next) > 0 {
			if _, err := al.jobs().InsertManyTx(ctx, tx, next); err != nil {
				return fmt.Errorf("escalate: schedule the next steps: %w", err)
			}
		}
		return nil
	})
}

// escalate takes one step in tx.
func (al *Service) escalate(ctx context.Context, tx pgx.Tx, id uuid.UUID, step int) (bool, *river.InsertManyParams, error) {
	var done bool
	var next *river.InsertManyParams
	err := func() error {
		var (
			status            string
			urgency           rpm.Urgency
			teamID, patientID uuid.UUID
			level             int
			exhausted         bool
			policy            *teamPolicy
			tz                string
			slots             []rota.Slot
		)
		err := tx.QueryRow(ctx, lockEscalationSQL, id).Scan(&status, &urgency, &teamID, &patientID, &level, &exhausted, &policy, &tz, &slots)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("escalate: %w", err)
		}
		if status != "open" || exhausted || level >= step || step < 1 {
			return nil // acknowledged, snoozed, resolved, or this step was taken
		}
		done = true
		now := al.now()
		levels := policy.levels()
		detail := map[string]any{"step": step}
		action := "escalation_exhausted"
		// The step's own records go in one round trip.
		b := &pgx.Batch{}
		if step >= len(levels) {
			b.Queue(markExhaustedSQL, id, step, now)
		} else {
			action = "escalated"
			n, err := al.notifyLevel(ctx, tx, id, teamID, patientID, urgency, levels[step], tz, slots, now)
			if err != nil {
				return err
			}
			detail["level"], detail["notified"] = levels[step], n
			b.Queue(markEscalatedSQL, id, step, now)
			if d := policy.deadline(urgency); d > 0 {
				job := escalateJob(id, step+1, now.Add(d))
				next = &job
			}
		}
		b.Queue(insertAlertEventSQL, id, action, nil, now, detail)
		al.audit.Queue(b, escalationActor, audit.Entry{Action: "alert.escalate", PatientID: patientID,
			ObjectType: "alert", ObjectID: id.String(), Detail: detail})
		events.Queue(b, now, events.Event{Type: events.AlertUpdated, CareTeamID: teamID, PatientID: patientID,
			Payload: map[string]any{"alert_id": id, "status": status, "urgency": urgency, "escalation_level": step,
				"escalation_exhausted": step >= len(levels)}})
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("escalate: record the step: %w", err)
		}
		return nil
	}()
	if err != nil {
		return false, nil, err
	}
	return done, next, nil
}

// notifyLevel pages one escalation level of a team about an alert: on_call
// (who is on call now, else the first level), leads (else everyone), all
// (every clinician and lead) — except those already notified of the alert.
// Medium and low notifications wait out a user's quiet hours as route's do.
// It returns how many users it notified.
func (al *Service) notifyLevel(ctx context.Context, tx pgx.Tx, alertID, teamID, patientID uuid.UUID, u rpm.Urgency, level, tz string,
	slots []rota.Slot, now time.Time) (int, error) {
	rows, err := tx.Query(ctx, recipientsSQL, teamID, patientID)
	if err != nil {
		return 0, fmt.Errorf("escalate: load recipients: %w", err)
	}
	var staff []recipient
	for rows.Next() {
		var r recipient
		if err := rows.Scan(&r.userID, &r.teamRole, &r.tz, &r.quietStart, &r.quietEnd, &r.devices); err != nil {
			rows.Close()
			return 0, fmt.Errorf("escalate: load recipients: %w", err)
		}
		if r.teamRole != "patient" {
			staff = append(staff, r)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("escalate: load recipients: %w", err)
	}
	var to []recipient
	switch level {
	case "on_call":
		loc, err := time.LoadLocation(tz)
		if err != nil {
			loc = time.UTC
		}
		first, _ := firstLevel(staff)
		to = pageOnCall(first, staff, rota.OnCall(slots, loc, now))
	case "leads":
		for _, r := range staff {
			if r.teamRole == "lead" {
				to = append(to, r)
			}
		}
		if len(to) == 0 {
			to = staff
		}
	default: // all
		to = staff
	}
	// Escalation widens the circle: whoever was already told of the alert
	// is not paged again by a step.
	rows, err = tx.Query(ctx, alertNotifiedSQL, alertID)
	if err != nil {
		return 0, fmt.Errorf("escalate: load notified: %w", err)
	}
	told, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return 0, fmt.Errorf("escalate: load notified: %w", err)
	}
	to = slices.DeleteFunc(to, func(r recipient) bool { return slices.Contains(told, r.userID) })
	var (
		nID, nUser, nAlert []uuid.UUID
		nType, nUrgency    []string
		nHeld              []*time.Time
		nDevices           []int32
		jobs               []river.InsertManyParams
	)
	for _, r := range to {
		id := pg.NewID()
		var held *time.Time
		if u == rpm.Medium || u == rpm.Low {
			if end, in := r.quietUntil(now); in {
				held = &end
			}
		}
		nID, nUser, nAlert = append(nID, id), append(nUser, r.userID), append(nAlert, alertID)
		nType, nUrgency, nHeld = append(nType, "alert"), append(nUrgency, string(u)), append(nHeld, held)
		if held != nil {
			nDevices = append(nDevices, 0)
			jobs = append(jobs, delivery.CatchupJob(r.userID, *held))
			continue
		}
		nDevices = append(nDevices, int32(len(r.devices)))
		for _, d := range r.devices {
			jobs = append(jobs, delivery.Job(id, d, alertID, u))
		}
	}
	if len(nID) > 0 {
		if _, err := tx.Exec(ctx, insertNotificationsSQL, nID, nUser, nType, nAlert, nUrgency, nHeld, nDevices, now); err != nil {
			return 0, fmt.Errorf("escalate: record notifications: %w", err)
		}
	}
	if len(jobs) > 0 {
		if _, err := al.jobs().InsertManyTx(ctx, tx, jobs); err != nil {
			return 0, fmt.Errorf("escalate: enqueue deliveries: %w", err)
		}
	}
	return len(to), nil
}

// EnqueueEscalations inserts step of each alert's escalation, due at at
// (zero: at once), with COPY: for benchmarks that measure an escalation
// sweep alone.
func (al *Service) EnqueueEscalations(ctx context.Context, alerts []uuid.UUID, step int, at time.Time) error {
	jobs := make([]river.InsertManyParams, len(alerts))
	for i, id := range alerts {
		jobs[i] = escalateJob(id, step, at)
	}
	if _, err := al.jobs().InsertManyFast(ctx, jobs); err != nil {
		return fmt.Errorf("enqueue escalations: %w", err)
	}
	return nil
}
