package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/delivery"
	"github.com/tendhealth/tend/engine/internal/events"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/scope"
	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/rules"
)

// Retake before paging, in the engine. Evaluate sets a finding whose rule
// asks for a retake (rules.Finding.RetakeBy) aside instead of raising it:
// askRetakes stores it in retakes, pushes a generic "please measure again"
// to the patient's devices and schedules retakeDeadlineArgs at RetakeBy —
// all in the ingest transaction. The next reading of the kind decides it
// (decideRetakes, in its own ingest transaction): confirmed raises the
// finding with the retake as a second finding of the same alert, not
// confirmed pages no one. The deadline job raises a still-pending finding,
// so a patient who never measures again is not lost.

// retake is a finding waiting for its retake.
type retake struct {
	id          uuid.UUID
	ruleID      string
	kind        rpm.Kind
	readingID   uuid.UUID
	observedAt  time.Time
	finding     rules.Finding
	decided     bool
	confirmedBy *Stored
	// ask is set on a symptom rule's request to measure (ask.go): its
	// readingID is the symptom report's id.
	ask bool
}

// Retakes are a patient's findings waiting for a retake. Ingest loads them
// with the patient's scope, as the column PendingRetakesSQL, and passes them
// to Evaluate.
type Retakes []*retake

// PendingRetakesSQL is a scalar subquery (jsonb) of the pending retakes of
// the patient aliased p, which scans into Retakes.
const PendingRetakesSQL = `(SELECT coalesce(jsonb_agg(jsonb_build_object('id', r.id, 'rule_id', r.rule_id, 'kind', r.kind,
	'reading_id', r.reading_id, 'observed_at', r.observed_at, 'finding', r.finding,
	'ask', r.symptom_report_id IS NOT NULL) ORDER BY r.observed_at), '[]')
	FROM retakes r WHERE r.patient_id = p.id AND r.status = 'pending')`

// Earliest is the observation time of the earliest reading of kind that
// waits for a retake.
func (rs Retakes) Earliest(kind rpm.Kind) (time.Time, bool) {
	var t time.Time
	for _, r := range rs {
		if r.kind == kind && (t.IsZero() || r.observedAt.Before(t)) {
			t = r.observedAt
		}
	}
	return t, !t.IsZero()
}

// UnmarshalJSON reads PendingRetakesSQL's column.
func (rs *Retakes) UnmarshalJSON(b []byte) error {
	var rows []struct {
		ID         uuid.UUID     `json:"id"`
		RuleID     string        `json:"rule_id"`
		Kind       rpm.Kind      `json:"kind"`
		ReadingID  uuid.UUID     `json:"reading_id"`
		ObservedAt time.Time     `json:"observed_at"`
		Finding    rules.Finding `json:"finding"`
		Ask        bool          `json:"ask"`
	}
	if err := json.Unmarshal(b, &rows); err != nil {
		return err
	}
	*rs = make(Retakes, len(rows))
	for i, r := range rows {
		(*rs)[i] = &retake{id: r.ID, ruleID: r.RuleID, kind: r.Kind, readingID: r.ReadingID, observedAt: r.ObservedAt, finding: r.Finding,
			ask: r.Ask}
	}
	return nil
}

// decideRetakes lets reading s (with its history hist) decide the pending
// retakes of its kind it may settle, and records the decisions. It returns
// the hits to raise: each confirmed finding, on its original reading.
func (al *Service) decideRetakes(ctx context.Context, tx pgx.Tx, pack *rules.Pack, pending Retakes, s Stored,
	hist []rules.Observation, in rules.Input) ([]Hit, error) {
	var hits []Hit
	for _, p := range pending {
		if p.decided || p.kind != s.Kind || !s.ObservedAt.After(p.observedAt) {
			continue
		}
		if p.ask {
			if err := al.answerAsk(ctx, tx, pack, p, s, hist, in); err != nil {
				return nil, err
			}
			continue
		}
		d := pack.DecideRetake(rules.RetakeInput{Finding: p.finding, Readings: hist, Programs: in.Programs, Params: in.Params,
			Baseline: in.Baseline, Now: s.ObservedAt})
		if !d.Outcome.Final() || d.Outcome == rules.RetakeTimedOut {
			continue // waiting still, or past its deadline: the deadline job pages it
		}
		if d.Err != nil {
			al.log.WarnContext(ctx, "retake could not be judged: paging", "rule_id", p.ruleID, "error", EvalErrorText(d.Err))
		}
		status := "not_confirmed"
		if d.Outcome == rules.RetakeConfirmed {
			status = "confirmed"
		}
		var retakeReading *uuid.UUID
		if d.Retake.ID == s.ID.String() {
			retakeReading = &s.ID
		}
		tag, err := tx.Exec(ctx, decideRetakeSQL,
			p.id, status, retakeReading, al.now())
		if err != nil {
			return nil, fmt.Errorf("decide retake: %w", err)
		}
		p.decided = true
		if tag.RowsAffected() == 0 || status != "confirmed" {
			continue // decided meanwhile (what was decided stands), or refuted: nobody is paged
		}
		trigger, err := triggerReading(ctx, tx, hist, p)
		if err != nil {
			return nil, err
		}
		f := p.finding
		f.RetakeBy = time.Time{}
		hits = append(hits, Hit{Reading: trigger, Findings: []rules.Finding{f}})
		p.confirmedBy = &s
	}
	return hits, nil
}

// setAside splits a reading's findings into those that page now and those
// that wait for a retake. A finding of a rule whose retake this very reading
// confirmed pages with it (it is the second reading of that alert); one of a
// rule that already waits for a retake is not asked again.
func setAside(findings []rules.Finding, pending Retakes, s Stored) (paging []rules.Finding, asks []newRetake) {
	for _, f := range findings {
		if f.RetakeBy.IsZero() {
			paging = append(paging, f)
			continue
		}
		waiting := false
		for _, p := range pending {
			if p.ruleID != f.RuleID {
				continue
			}
			if p.confirmedBy != nil && p.confirmedBy.ID == s.ID {
				f.RetakeBy = time.Time{}
				paging = append(paging, f)
			}
			waiting = true
		}
		if !waiting {
			asks = append(asks, newRetake{reading: s, finding: f})
		}
	}
	return paging, asks
}

// triggerReading is the reading a retake was asked for, from the history
// when it is there, else from the database.
func triggerReading(ctx context.Context, tx pgx.Tx, hist []rules.Observation, p *retake) (Stored, error) {
	id := p.readingID.String()
	for _, o := range hist {
		if o.ID == id {
			return Stored{ID: p.readingID, Measurement: rpm.Measurement{Kind: o.Kind, Value: o.Value, Systolic: o.Systolic,
				Diastolic: o.Diastolic, Unit: o.Unit, ObservedAt: o.ObservedAt}}, nil
		}
	}
	var s Stored
	s.ID = p.readingID
	err := tx.QueryRow(ctx, triggerReadingSQL,
		p.id, p.observedAt, p.readingID).Scan(&s.Kind, &s.Value, &s.Systolic, &s.Diastolic, &s.Unit, &s.ObservedAt)
	if err != nil {
		return Stored{}, fmt.Errorf("retake: load the first reading: %w", err)
	}
	return s, nil
}

// newRetake is a finding to set aside for a retake.
type newRetake struct {
	reading Stored
	finding rules.Finding
	// report is set on a request to measure: the symptom report that asked
	// (reading.ID is then the report's id).
	report bool
}

// RetakeRef tells the client of an ingest that a reading waits for a retake:
// the patient should measure again before RetakeBy. For a symptom report's
// request to measure, ReadingID is the report's id.
type RetakeRef struct {
	RuleID    string    `json:"rule_id"`
	ReadingID uuid.UUID `json:"reading_id"`
	RetakeBy  time.Time `json:"retake_by"`
	// Kind is the vital sign to measure.
	Kind rpm.Kind `json:"kind"`
}

// askRetakes stores findings that wait for a retake, asks the patient's
// devices to measure (a push of type typ: "retake", or "measure" for a
// symptom report's requests), and schedules each deadline. It returns the
// retakes it asked for.
func (al *Service) askRetakes(ctx context.Context, tx pgx.Tx, patientID uuid.UUID, asks []newRetake, typ string) ([]RetakeRef, error) {
	now := al.now()
	var jobs []river.InsertManyParams
	var refs []RetakeRef
	urgency := rpm.Low
	for _, a := range asks {
		id := pg.NewID()
		finding, err := json.Marshal(a.finding)
		if err != nil {
			return nil, fmt.Errorf("retake: %w", err)
		}
		var report *uuid.UUID
		if a.report {
			report = &a.reading.ID
		}
		tag, err := tx.Exec(ctx, insertRetakeSQL,
			id, patientID, a.finding.RuleID, a.finding.Kind, a.reading.ID, a.reading.ObservedAt, a.finding.RetakeBy, finding, now, report)
		if err != nil {
			return nil, fmt.Errorf("retake: %w", err)
		}
		if tag.RowsAffected() == 0 {
			continue // one is already waiting for this rule
		}
		refs = append(refs, RetakeRef{RuleID: a.finding.RuleID, ReadingID: a.reading.ID, RetakeBy: a.finding.RetakeBy, Kind: a.finding.Kind})
		jobs = append(jobs, river.InsertManyParams{Args: retakeDeadlineArgs{RetakeID: id},
			InsertOpts: &river.InsertOpts{ScheduledAt: a.finding.RetakeBy, Priority: 1, MaxAttempts: 25,
				UniqueOpts: river.UniqueOpts{ByArgs: true}}})
		if a.finding.Urgency.Rank() > urgency.Rank() {
			urgency = a.finding.Urgency
		}
	}
	if len(jobs) == 0 {
		return nil, nil
	}
	push, err := al.notifyPatient(ctx, tx, patientID, typ, urgency)
	if err != nil {
		return nil, err
	}
	// Every process follows the event log: the one holding the patient's
	// MQTT devices sends them the requests, whoever took this ingest.
	if err := events.Publish(ctx, tx, now, events.Event{Type: events.RetakeRequested, PatientID: patientID,
		Payload: map[string]any{"patient_id": patientID, "retakes": refs}}); err != nil {
		return nil, fmt.Errorf("retake: %w", err)
	}
	if _, err := al.jobs().InsertManyTx(ctx, tx, append(jobs, push...)); err != nil {
		return nil, fmt.Errorf("retake: enqueue: %w", err)
	}
	return refs, nil
}

// notifyPatient records a notification of typ for each of the patient's
// users and returns the delivery jobs to their devices.
func (al *Service) notifyPatient(ctx context.Context, tx pgx.Tx, patientID uuid.UUID, typ string, u rpm.Urgency) ([]river.InsertManyParams, error) {
	rows, err := tx.Query(ctx, patientDevicesSQL, patientID)
	if err != nil {
		return nil, fmt.Errorf("notify patient: %w", err)
	}
	type target struct {
		user    uuid.UUID
		devices []uuid.UUID
	}
	targets, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (target, error) {
		var t target
		err := r.Scan(&t.user, &t.devices)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("notify patient: %w", err)
	}
	now := al.now()
	var jobs []river.InsertManyParams
	for _, t := range targets {
		id := pg.NewID()
		if _, err := tx.Exec(ctx, insertPatientNotificationSQL, id, t.user, typ, u, len(t.devices), now); err != nil {
			return nil, fmt.Errorf("notify patient: %w", err)
		}
		for _, d := range t.devices {
			jobs = append(jobs, delivery.Job(id, d, uuid.Nil, u))
		}
	}
	return jobs, nil
}

// retakeDeadlineArgs is the job that pages a finding whose retake did not
// come in time. The kind string is stored in the database and must never
// change.
type retakeDeadlineArgs struct {
	RetakeID uuid.UUID `json:"retake_id"`
}

func (retakeDeadlineArgs) Kind() string { return "alerting.retake_deadline" }

type retakeDeadlineWorker struct {
	river.WorkerDefaults[retakeDeadlineArgs]
	al *Service
}

// Work raises the finding if it still waits: one transaction, under the
// patient's lock, so it cannot race the retake's own ingest.
func (w *retakeDeadlineWorker) Work(ctx context.Context, job *river.Job[retakeDeadlineArgs]) error {
	return w.al.RetakeDeadline(ctx, job.Args.RetakeID)
}

// retakeActor is who raises a timed-out retake.
var retakeActor = access.System("retake-deadline")

// RetakeDeadline pages the finding of retake id if it is still waiting (the
// deadline job; exported for tests and tools). A request to measure that is
// still waiting goes unanswered instead, paging no one, and so does a
// finding whose patient's processing was restricted meanwhile.
func (al *Service) RetakeDeadline(ctx context.Context, id uuid.UUID) error {
	return pg.InTx(ctx, al.pool, func(tx pgx.Tx) error {
		var patientID uuid.UUID
		err := tx.QueryRow(ctx, retakePatientSQL, id).Scan(&patientID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("retake deadline: %w", err)
		}
		if err := pg.LockPatients(ctx, tx, patientID); err != nil {
			return fmt.Errorf("retake deadline: %w", err)
		}
		var p retake
		err = tx.QueryRow(ctx, lockRetakeSQL, id).Scan(&p.id, &p.ruleID, &p.kind, &p.readingID, &p.observedAt, &p.finding, &p.ask)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // decided by a retake in time
		}
		if err != nil {
			return fmt.Errorf("retake deadline: %w", err)
		}
		if p.ask {
			return al.unanswered(ctx, tx, p.id)
		}
		if _, err := tx.Exec(ctx, timeOutRetakeSQL, id, al.now()); err != nil {
			return fmt.Errorf("retake deadline: %w", err)
		}
		sc, err := scope.OfPatient(ctx, tx, retakeActor, patientID)
		if err != nil {
			return fmt.Errorf("retake deadline: %w", err)
		}
		if sc.Restricted {
			return nil // processing restricted since: timed out, paging no one
		}
		trigger, err := triggerReading(ctx, tx, nil, &p)
		if err != nil {
			return err
		}
		f := p.finding
		f.RetakeBy = time.Time{}
		_, err = al.Raise(ctx, tx, retakeActor, patientID, sc, []Hit{{Reading: trigger, Findings: []rules.Finding{f}}})
		return err
	})
}

// AddWorkers registers alerting's workers (the retake deadline, escalation)
// and returns its periodic job: the escalation sweep, every sweepEvery
// (negative: never).
func (al *Service) AddWorkers(workers *river.Workers, sweepEvery time.Duration) []*river.PeriodicJob {
	river.AddWorker(workers, &retakeDeadlineWorker{al: al})
	river.AddWorker(workers, &escalateWorker{al: al})
	river.AddWorker(workers, &sweepWorker{al: al})
	if sweepEvery < 0 {
		return nil
	}
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(sweepEvery),
		func() (river.JobArgs, *river.InsertOpts) {
			return sweepArgs{}, &river.InsertOpts{Queue: EscalationQueue, MaxAttempts: 1}
		}, &river.PeriodicJobOpts{RunOnStart: true})}
}
