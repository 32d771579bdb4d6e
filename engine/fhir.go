package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/rpm"
)

// Queries of the FHIR interface (package api's /fhir/r4 routes). They reuse
// the use cases' scope, audit and ingest machinery; only what FHIR needs
// beyond the JSON API lives here.

// RequestError is the failure of one request of IngestAll, by its index.
type RequestError struct {
	Index int
	Err   error
}

func (e *RequestError) Error() string { return fmt.Sprintf("request %d: %v", e.Index, e.Err) }
func (e *RequestError) Unwrap() error { return e.Err }

// IngestAll ingests several patients' readings all or nothing: one
// transaction stores every reading, audit entry, alert and notification job,
// or — when any request is invalid or out of scope — nothing. Requests must
// name distinct patients. It is the FHIR transaction Bundle; Ingest remains
// the path for one patient. A single request is an Ingest, sharing group
// commit with concurrent ingests (one job commits or fails as a whole).
func (e *Engine) IngestAll(ctx context.Context, a Actor, reqs []IngestRequest) ([]IngestResult, error) {
	if err := forbid(a, RolePatient, RoleDevice, RoleClinician); err != nil {
		return nil, err
	}
	if len(reqs) == 1 {
		res, err := e.Ingest(ctx, a, reqs[0])
		if err != nil {
			return nil, err
		}
		return []IngestResult{res}, nil
	}
	jobs := make([]*ingestJob, len(reqs))
	seen := make(map[uuid.UUID]bool, len(reqs))
	var all []rpm.Measurement
	for i, req := range reqs {
		if seen[req.PatientID] {
			return nil, &RequestError{Index: i, Err: fieldError("patient", "appears in more than one request")}
		}
		seen[req.PatientID] = true
		ms, err := e.normalize(req)
		if err != nil {
			return nil, &RequestError{Index: i, Err: err}
		}
		jobs[i] = &ingestJob{actor: a, patientID: req.PatientID, ms: ms}
		all = append(all, ms...)
	}
	if len(all) > groupMaxReadings {
		return nil, fieldError("readings", fmt.Sprintf("at most %d readings per transaction", groupMaxReadings))
	}
	inScope := func() error {
		for i, req := range reqs {
			if err := e.checkPatientScope(ctx, a, req.PatientID); err != nil {
				return &RequestError{Index: i, Err: err}
			}
		}
		return nil
	}
	if err := e.ensurePartitions(ctx, all, inScope); err != nil {
		return nil, err
	}
	// Not through the group-commit batcher: its groups let a job fail
	// alone. The per-patient advisory locks taken inside still order this
	// transaction with concurrent ingests of the same patients.
	err := e.inTx(ctx, func(tx pgx.Tx) error {
		if err := e.ingestGroupTx(ctx, tx, jobs); err != nil {
			return err
		}
		for i, j := range jobs {
			if j.err != nil {
				return &RequestError{Index: i, Err: j.err}
			}
		}
		return nil
	})
	if err != nil {
		var re *RequestError
		if errors.As(err, &re) {
			return nil, err
		}
		return nil, fmt.Errorf("ingest all: %w", err)
	}
	out := make([]IngestResult, len(jobs))
	for i, j := range jobs {
		out[i] = j.res
		for _, al := range j.res.Alerts {
			if al.Status == "opened" {
				e.metrics.alerts.WithLabelValues(string(al.Urgency)).Inc()
			}
		}
	}
	e.metrics.readings.Add(float64(len(all)))
	return out, nil
}

// GetReading returns one reading in the actor's scope, located by its
// patient and observation time (how readings are stored) and its id.
func (e *Engine) GetReading(ctx context.Context, a Actor, patientID uuid.UUID, observedAt time.Time, id uuid.UUID) (Reading, error) {
	var out Reading
	err := e.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := scopePatient(ctx, tx, a, patientID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+readingColumns+` FROM readings r
			WHERE r.patient_id = $1 AND r.observed_at = $2 AND r.id = $3`, patientID, observedAt, id)
		if err != nil {
			return fmt.Errorf("get reading: %w", err)
		}
		out, err = pgx.CollectExactlyOneRow(rows, scanReading)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("reading: %w", ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("get reading: %w", err)
		}
		return e.audit(ctx, tx, a, Audit{Action: "reading.read", PatientID: patientID, ObjectType: "reading", ObjectID: id.String()})
	})
	return out, err
}

// ResolveExternalIDs maps external ids to the ids of patients in the actor's
// scope. Unknown or out-of-scope ids are absent from the map (the caller
// answers them as not found, so existence does not leak).
func (e *Engine) ResolveExternalIDs(ctx context.Context, a Actor, externalIDs []string) (map[string]uuid.UUID, error) {
	out := make(map[string]uuid.UUID, len(externalIDs))
	if len(externalIDs) == 0 {
		return out, nil
	}
	rows, err := e.pool.Query(ctx, `SELECT p.external_id, p.id FROM patients p WHERE p.external_id = ANY($1) AND (
		$2 = 'admin'
		OR ($2 IN ('patient', 'device') AND p.id = $3)
		OR ($2 IN ('clinician', 'scheduler') AND EXISTS (
			SELECT 1 FROM care_team_members m WHERE m.care_team_id = p.care_team_id AND m.user_id = $4)))`,
		externalIDs, string(a.Role), a.PatientID, a.UserID)
	if err != nil {
		return nil, fmt.Errorf("resolve external ids: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ext string
		var id uuid.UUID
		if err := rows.Scan(&ext, &id); err != nil {
			return nil, fmt.Errorf("resolve external ids: %w", err)
		}
		out[ext] = id
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("resolve external ids: %w", err)
	}
	return out, nil
}
