package alerting

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/rules"
)

// Requests to measure, in the engine. A symptom rule with `ask` finds on a
// report (rules.Finding.Ask) and asks the patient to measure a vital sign now
// instead of paging: AskToMeasure stores the request in retakes (its
// reading_id and symptom_report_id are the report's id), pushes a generic
// "please take a reading" to the patient's devices and schedules
// retakeDeadlineArgs at the deadline — all in the report's transaction. The
// next reading of the kind answers it (answerAsk, in that reading's ingest
// transaction) and is judged by the reading rules like any other reading;
// the deadline job closes a request still waiting as unanswered. A request
// opens no alert and pages no one either way.

// AskToMeasure sets aside a symptom report's findings that ask the patient
// to measure (Finding.Ask; the others are ignored): one pending request per
// patient and rule, a "measure" push to the patient's devices, a deadline
// job. at is the report's time. It returns the requests it made (none for a
// rule whose request still waits).
func (al *Service) AskToMeasure(ctx context.Context, tx pgx.Tx, patientID, reportID uuid.UUID, at time.Time,
	findings []rules.Finding) ([]RetakeRef, error) {
	var asks []newRetake
	for _, f := range findings {
		if !f.Ask {
			continue
		}
		asks = append(asks, newRetake{finding: f, report: true,
			reading: Stored{ID: reportID, Measurement: rpm.Measurement{Kind: f.Kind, ObservedAt: at}}})
	}
	if len(asks) == 0 {
		return nil, nil
	}
	return al.askRetakes(ctx, tx, patientID, asks, "measure")
}

// answerAsk lets reading s (with its history hist) answer the pending
// request to measure p: the first reading of its kind observed after the
// report and by the deadline answers it. Nothing is raised here: the reading
// goes through the reading rules as any other.
func (al *Service) answerAsk(ctx context.Context, tx pgx.Tx, pack *rules.Pack, p *retake, s Stored,
	hist []rules.Observation, in rules.Input) error {
	d := pack.DecideRetake(rules.RetakeInput{Finding: p.finding, Readings: hist, Programs: in.Programs, Params: in.Params,
		Baseline: in.Baseline, Now: s.ObservedAt})
	switch {
	case d.Outcome == rules.RetakeAnswered:
	case d.Err != nil && !s.ObservedAt.After(p.finding.RetakeBy):
		// The rule changed or went since it asked: the patient was asked
		// all the same, and this reading answers.
		d.Retake = Observation(s)
	default:
		return nil // waiting still, or past its deadline: the deadline job closes it
	}
	var by *uuid.UUID
	if id, err := uuid.Parse(d.Retake.ID); err == nil {
		by = &id
	}
	if _, err := tx.Exec(ctx, decideRetakeSQL, p.id, "answered", by, al.now()); err != nil {
		return fmt.Errorf("answer request to measure: %w", err)
	}
	p.decided = true
	return nil
}

// unanswered closes a request to measure that no reading answered by its
// deadline. It pages no one: the symptom's own paging rules, if any, paged
// with the report.
func (al *Service) unanswered(ctx context.Context, tx pgx.Tx, id uuid.UUID) error {
	if _, err := tx.Exec(ctx, decideRetakeSQL, id, "unanswered", nil, al.now()); err != nil {
		return fmt.Errorf("request to measure unanswered: %w", err)
	}
	return nil
}
