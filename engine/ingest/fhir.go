package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/check"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/readings"
	"github.com/tendhealth/tend/engine/internal/scope"
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
func (ig *Service) IngestAll(ctx context.Context, a access.Actor, reqs []IngestRequest) ([]IngestResult, error) {
	if err := access.Require(a, access.RolePatient, access.RoleDevice, access.RoleClinician); err != nil {
		return nil, err
	}
	if len(reqs) == 1 {
		res, err := ig.Ingest(ctx, a, reqs[0])
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
			return nil, &RequestError{Index: i, Err: check.FieldError("patient", "appears in more than one request")}
		}
		seen[req.PatientID] = true
		ms, err := ig.normalize(req)
		if err != nil {
			return nil, &RequestError{Index: i, Err: err}
		}
		jobs[i] = &ingestJob{actor: a, patientID: req.PatientID, ms: ms}
		all = append(all, ms...)
	}
	if len(all) > groupMaxReadings {
		return nil, check.FieldError("readings", fmt.Sprintf("at most %d readings per transaction", groupMaxReadings))
	}
	inScope := func() error {
		for i, req := range reqs {
			if err := ig.checkPatientScope(ctx, a, req.PatientID); err != nil {
				return &RequestError{Index: i, Err: err}
			}
		}
		return nil
	}
	if err := ig.ensurePartitions(ctx, all, inScope); err != nil {
		return nil, err
	}
	// Not through the group-commit batcher: its groups let a job fail
	// alone. The per-patient advisory locks taken inside still order this
	// transaction with concurrent ingests of the same patients.
	err := ig.ingestGroup(ctx, jobs, func() error {
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
				ig.metrics.Alerts.WithLabelValues(string(al.Urgency)).Inc()
			}
		}
	}
	ig.metrics.Readings.Add(float64(len(all)))
	return out, nil
}

// GetReading returns one reading in the actor's scope, located by its
// patient and observation time (how readings are stored) and its id. A
// reading retracted by its source is returned with EnteredInErrorAt set.
func (ig *Service) GetReading(ctx context.Context, a access.Actor, patientID uuid.UUID, observedAt time.Time, id uuid.UUID) (RetractedReading, error) {
	var out RetractedReading
	err := pg.InTx(ctx, ig.pool, func(tx pgx.Tx) error {
		if _, err := scope.OfPatient(ctx, tx, a, patientID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, getReadingSQL, patientID, observedAt, id)
		if err != nil {
			return fmt.Errorf("get reading: %w", err)
		}
		out, err = pgx.CollectExactlyOneRow(rows, func(row pgx.CollectableRow) (RetractedReading, error) {
			var x RetractedReading
			var value float64
			var was *time.Time
			err := row.Scan(&x.ID, &x.PatientID, &x.Kind, &value, &x.Systolic, &x.Diastolic, &x.Unit, &x.ObservedAt,
				&x.ReceivedAt, &x.SourceID, &was)
			if x.Kind != rpm.BloodPressure {
				x.Value = &value
			}
			if was != nil {
				x.EnteredInErrorAt = *was
			}
			return x, err
		})
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("reading: %w", access.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("get reading: %w", err)
		}
		return ig.audit.Write(ctx, tx, a, audit.Entry{Action: "reading.read", PatientID: patientID, ObjectType: "reading", ObjectID: id.String()})
	})
	return out, err
}

// ResolveExternalIDs maps external ids to the ids of patients in the actor's
// scope. Unknown or out-of-scope ids are absent from the map (the caller
// answers them as not found, so existence does not leak).
func (ig *Service) ResolveExternalIDs(ctx context.Context, a access.Actor, externalIDs []string) (map[string]uuid.UUID, error) {
	out := make(map[string]uuid.UUID, len(externalIDs))
	if len(externalIDs) == 0 {
		return out, nil
	}
	// Resolving an identifier reads which patient it names: audited per
	// patient found, in the transaction that reads.
	err := pg.InTx(ctx, ig.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, resolveExternalIDsSQL, externalIDs, string(a.Role), a.PatientID, a.UserID)
		if err != nil {
			return fmt.Errorf("resolve external ids: %w", err)
		}
		for rows.Next() {
			var ext string
			var id uuid.UUID
			if err := rows.Scan(&ext, &id); err != nil {
				rows.Close()
				return fmt.Errorf("resolve external ids: %w", err)
			}
			out[ext] = id
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("resolve external ids: %w", err)
		}
		if len(out) == 0 {
			return nil
		}
		b := &pgx.Batch{}
		for _, id := range out {
			ig.audit.Queue(b, a, audit.Entry{Action: "patient.resolve", PatientID: id, ObjectType: "patient", ObjectID: id.String()})
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("resolve external ids: audit: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Retraction names a stored reading its source retracts (a FHIR
// Observation with status entered-in-error): by patient, kind and the
// source_id it was stored with.
type Retraction struct {
	PatientID uuid.UUID
	Kind      rpm.Kind
	SourceID  string
}

// ErrNoStoredReading is a retraction that names no stored reading.
var ErrNoStoredReading = fmt.Errorf("no stored reading with this source_id and kind: %w", access.ErrNotFound)

// RetractedReading is a reading and when its source marked it
// entered-in-error (zero when it is current).
type RetractedReading struct {
	readings.Reading
	EnteredInErrorAt time.Time
}

// RetractReadings marks the named readings entered-in-error, all or
// nothing, each audited. A marked reading is kept but no longer counts:
// rule history and listings leave it out. Marking one again changes nothing
// and answers it as it is. A retraction that names no stored reading of
// that patient and kind, or a patient out of the actor's scope, fails all
// with a *RequestError wrapping access.ErrNotFound.
func (ig *Service) RetractReadings(ctx context.Context, a access.Actor, rs []Retraction) ([]RetractedReading, error) {
	if err := access.Require(a, access.RolePatient, access.RoleDevice, access.RoleClinician); err != nil {
		return nil, err
	}
	out := make([]RetractedReading, len(rs))
	now := ig.now()
	err := pg.InTx(ctx, ig.pool, func(tx pgx.Tx) error {
		for i, r := range rs {
			if _, err := scope.OfPatient(ctx, tx, a, r.PatientID); err != nil {
				return &RequestError{Index: i, Err: err}
			}
			var x RetractedReading
			var was *time.Time
			err := tx.QueryRow(ctx, lockSourcedReadingSQL,
				r.PatientID, r.SourceID, string(r.Kind)).Scan(&x.ID, &x.PatientID, &x.Kind, &x.Value, &x.Systolic, &x.Diastolic,
				&x.Unit, &x.ObservedAt, &x.ReceivedAt, &x.SourceID, &was)
			if errors.Is(err, pgx.ErrNoRows) {
				return &RequestError{Index: i, Err: ErrNoStoredReading}
			}
			if err != nil {
				return fmt.Errorf("retract reading: %w", err)
			}
			if x.Kind == rpm.BloodPressure {
				x.Value = nil // as scanReading: a panel's values are its components
			}
			if was != nil {
				x.EnteredInErrorAt = *was
				out[i] = x
				continue
			}
			if _, err := tx.Exec(ctx, retractReadingSQL, x.PatientID, x.ObservedAt, x.ID, now); err != nil {
				return fmt.Errorf("retract reading: %w", err)
			}
			x.EnteredInErrorAt = now
			out[i] = x
			if err := ig.audit.Write(ctx, tx, a, audit.Entry{Action: "reading.entered_in_error", PatientID: x.PatientID, ObjectType: "reading",
				ObjectID: x.ID.String(), Detail: map[string]any{"kind": string(x.Kind)}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		var re *RequestError
		if errors.As(err, &re) {
			return nil, err
		}
		return nil, fmt.Errorf("retract readings: %w", err)
	}
	return out, nil
}
