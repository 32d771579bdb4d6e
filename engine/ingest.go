package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/rules"
)

// MaxBatch is the largest number of readings one ingest accepts.
const MaxBatch = 1000

// IngestRequest is a batch of readings for one patient.
type IngestRequest struct {
	PatientID uuid.UUID
	Readings  []rpm.Reading
	// Batch reports whether the readings came as a list, so that validation
	// errors name fields as readings[i].field.
	Batch bool
}

// ReadingStatus tells the client what happened to one submitted reading.
type ReadingStatus struct {
	ID uuid.UUID `json:"id"`
	// Status is "created", or "duplicate" when its source_id was seen before
	// (ID is then the stored reading's id).
	Status string `json:"status"`
}

// AlertRef summarises an alert raised or updated by an ingest.
type AlertRef struct {
	ID      uuid.UUID   `json:"id"`
	RuleID  string      `json:"rule_id"`
	Urgency rpm.Urgency `json:"urgency"`
	Title   string      `json:"title"`
	// Status is "opened" for a new alert, "updated" for an existing open one.
	Status string `json:"status"`
}

// IngestResult is the outcome of an ingest.
type IngestResult struct {
	Readings []ReadingStatus `json:"readings"`
	Alerts   []AlertRef      `json:"alerts"`
}

// Ingest validates and stores readings, evaluates the rules, raises or updates
// alerts and enqueues the notifications about them — all in one transaction.
// An invalid reading rejects the whole batch (a *rpm.ValidationError listing
// every problem) and stores nothing.
func (e *Engine) Ingest(ctx context.Context, a Actor, req IngestRequest) (IngestResult, error) {
	if err := forbid(a, RolePatient, RoleDevice, RoleClinician); err != nil {
		return IngestResult{}, err
	}
	ms, err := e.normalize(req)
	if err != nil {
		return IngestResult{}, err
	}
	if err := e.ensurePartitions(ctx, ms); err != nil {
		return IngestResult{}, err
	}
	var res IngestResult
	err = e.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		res, err = e.ingestTx(ctx, tx, a, req.PatientID, ms)
		return err
	})
	if err != nil {
		return IngestResult{}, err
	}
	e.metrics.readings.Add(float64(len(ms)))
	for _, al := range res.Alerts {
		if al.Status == "opened" {
			e.metrics.alerts.WithLabelValues(string(al.Urgency)).Inc()
		}
	}
	return res, nil
}

func (e *Engine) normalize(req IngestRequest) ([]rpm.Measurement, error) {
	if len(req.Readings) == 0 {
		return nil, fieldError("readings", "must contain at least one reading")
	}
	if len(req.Readings) > MaxBatch {
		return nil, fieldError("readings", fmt.Sprintf("at most %d readings per request", MaxBatch))
	}
	now := e.now()
	ms := make([]rpm.Measurement, len(req.Readings))
	var all rpm.ValidationError
	for i, r := range req.Readings {
		m, err := rpm.Normalize(r, now)
		var v *rpm.ValidationError
		if errors.As(err, &v) {
			if req.Batch {
				v = v.Prefix(fmt.Sprintf("readings[%d].", i))
			}
			all.Fields = append(all.Fields, v.Fields...)
			continue
		}
		// Postgres keeps microseconds: round here so a reading reloaded from
		// history is recognisably the same instant.
		m.ObservedAt = m.ObservedAt.Truncate(time.Microsecond)
		ms[i] = m
	}
	if err := all.OrNil(); err != nil {
		return nil, err
	}
	return ms, nil
}

// stored is a measurement with its id and whether this ingest created it.
type stored struct {
	rpm.Measurement
	ID      uuid.UUID
	Created bool
}

const insertReadingsSQL = `WITH input AS (
	SELECT * FROM unnest($2::uuid[], $3::text[], $4::float8[], $5::float8[], $6::float8[], $7::text[], $8::timestamptz[], $9::text[])
		AS t(id, kind, value, systolic, diastolic, unit, observed_at, source_id)
), src AS (
	INSERT INTO reading_sources (patient_id, source_id, reading_id, observed_at)
	SELECT $1, source_id, id, observed_at FROM input WHERE source_id IS NOT NULL
	ON CONFLICT DO NOTHING
	RETURNING reading_id
)
INSERT INTO readings (id, patient_id, kind, value, systolic, diastolic, unit, observed_at, received_at, source_id, recorded_by)
SELECT id, $1, kind, value, systolic, diastolic, unit, observed_at, $10, source_id, $11 FROM input
WHERE source_id IS NULL OR id IN (SELECT reading_id FROM src)
RETURNING id`

func (e *Engine) ingestTx(ctx context.Context, tx pgx.Tx, a Actor, patientID uuid.UUID, ms []rpm.Measurement) (IngestResult, error) {
	now := e.now()
	n := len(ms)
	ids := make([]uuid.UUID, n)
	kinds := make([]string, n)
	values := make([]float64, n)
	sys := make([]*float64, n)
	dia := make([]*float64, n)
	units := make([]string, n)
	observed := make([]time.Time, n)
	sources := make([]*string, n)
	for i, m := range ms {
		ids[i] = newID()
		kinds[i], values[i], units[i], observed[i] = string(m.Kind), m.Value, m.Unit, m.ObservedAt
		if m.Kind == rpm.BloodPressure {
			sys[i], dia[i] = &ms[i].Systolic, &ms[i].Diastolic
		}
		if m.SourceID != "" {
			sources[i] = &ms[i].SourceID
		}
	}

	// One round trip: scope check, per-patient lock (so concurrent ingests for
	// one patient evaluate rules in a consistent order), insert, audit.
	b := &pgx.Batch{}
	var scope patientScope
	scopeFound := false
	b.Queue(scopeSQL, patientID, a.Role, a.PatientID, a.UserID).QueryRow(func(r pgx.Row) error {
		err := r.Scan(&scope.CareTeamID, &scope.Programs, &scope.EnrolledAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		scopeFound = err == nil
		return err
	})
	b.Queue(`SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7))`, patientID)
	created := make(map[uuid.UUID]bool, n)
	b.Queue(insertReadingsSQL, patientID, ids, kinds, values, sys, dia, units, observed, sources, now, a.UserID).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var id uuid.UUID
				if err := rows.Scan(&id); err != nil {
					return err
				}
				created[id] = true
			}
			return rows.Err()
		})
	e.queueAudit(b, a, Audit{Action: "reading.create", PatientID: patientID, ObjectType: "reading", ObjectID: ids[0].String(),
		Detail: map[string]any{"count": n}})
	var hist []rules.Observation
	if sql, args, ok := e.historyQuery(patientID, ms); ok {
		b.Queue(sql, args...).Query(func(rows pgx.Rows) error {
			var err error
			hist, err = scanHistory(rows)
			return err
		})
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return IngestResult{}, fmt.Errorf("insert readings: %w", err)
	}
	if !scopeFound {
		return IngestResult{}, fmt.Errorf("patient: %w", ErrNotFound)
	}

	res := IngestResult{Readings: make([]ReadingStatus, n)}
	var dupSources []string
	for i := range ms {
		if created[ids[i]] {
			res.Readings[i] = ReadingStatus{ID: ids[i], Status: "created"}
		} else {
			res.Readings[i] = ReadingStatus{Status: "duplicate"}
			dupSources = append(dupSources, ms[i].SourceID)
		}
	}
	if len(dupSources) > 0 {
		if err := resolveDuplicates(ctx, tx, patientID, ms, res.Readings, dupSources); err != nil {
			return IngestResult{}, err
		}
	}

	fresh := make([]stored, 0, len(created))
	for i, m := range ms {
		if created[ids[i]] {
			fresh = append(fresh, stored{Measurement: m, ID: ids[i], Created: true})
		}
	}
	if len(fresh) == 0 {
		return res, nil
	}
	alerts, err := e.evaluate(ctx, tx, a, patientID, scope, fresh, hist)
	if err != nil {
		return IngestResult{}, err
	}
	res.Alerts = alerts
	return res, nil
}

// resolveDuplicates fills in the stored ids of readings whose source_id was
// already known.
func resolveDuplicates(ctx context.Context, tx pgx.Tx, patientID uuid.UUID, ms []rpm.Measurement, out []ReadingStatus, sources []string) error {
	rows, err := tx.Query(ctx, `SELECT source_id, reading_id FROM reading_sources WHERE patient_id = $1 AND source_id = ANY($2)`,
		patientID, sources)
	if err != nil {
		return fmt.Errorf("resolve duplicates: %w", err)
	}
	known := map[string]uuid.UUID{}
	for rows.Next() {
		var s string
		var id uuid.UUID
		if err := rows.Scan(&s, &id); err != nil {
			rows.Close()
			return fmt.Errorf("resolve duplicates: %w", err)
		}
		known[s] = id
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("resolve duplicates: %w", err)
	}
	for i := range out {
		if out[i].Status == "duplicate" {
			out[i].ID = known[ms[i].SourceID]
		}
	}
	return nil
}

// historyQuery builds the one query that reads what the rules need for a
// batch: per kind, from the batch's earliest reading minus that kind's
// look-back, up to now, ordered by observation time. It runs after the insert
// in the same transaction, so it includes the batch. ok is false when no rule
// watches the batch's kinds.
func (e *Engine) historyQuery(patientID uuid.UUID, ms []rpm.Measurement) (sql string, args []any, ok bool) {
	earliest := ms[0].ObservedAt
	var batchKinds []rpm.Kind
	for _, m := range ms {
		if m.ObservedAt.Before(earliest) {
			earliest = m.ObservedAt
		}
		if !slices.Contains(batchKinds, m.Kind) {
			batchKinds = append(batchKinds, m.Kind)
		}
	}
	needs := map[rpm.Kind]time.Duration{}
	for _, k := range batchKinds {
		for kind, d := range e.pack().HistoryNeeds(k) {
			needs[kind] = max(needs[kind], d)
		}
	}
	if len(needs) == 0 {
		return "", nil, false
	}
	kinds := make([]string, 0, len(needs))
	since := make([]time.Time, 0, len(needs))
	for k, d := range needs {
		kinds = append(kinds, string(k))
		since = append(since, earliest.Add(-d))
	}
	return `SELECT r.id, r.kind, r.value, coalesce(r.systolic, 0), coalesce(r.diastolic, 0), r.unit, r.observed_at
		FROM unnest($2::text[], $3::timestamptz[]) AS w(kind, since)
		JOIN readings r ON r.patient_id = $1 AND r.kind = w.kind AND r.observed_at >= w.since
		ORDER BY r.observed_at, r.id`, []any{patientID, kinds, since}, true
}

// scanHistory collects the rows of historyQuery.
func scanHistory(rows pgx.Rows) ([]rules.Observation, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (rules.Observation, error) {
		var o rules.Observation
		var id uuid.UUID
		var kind string
		err := r.Scan(&id, &kind, &o.Value, &o.Systolic, &o.Diastolic, &o.Unit, &o.ObservedAt)
		o.ID, o.Kind = id.String(), rpm.Kind(kind)
		return o, err
	})
}

// batchHistories gives each fresh reading (in hist order) its own history:
// everything in hist up to and including itself, plus stored readings
// observed after it. Later readings of the same batch are left out, so a
// batch is evaluated as if its readings had arrived one by one in time order,
// and only readings stored before this ingest can make one of them late.
// Usually nothing stored is later, and each history is a sub-slice of hist.
func batchHistories(hist []rules.Observation, fresh []stored) map[uuid.UUID][]rules.Observation {
	isFresh := make(map[string]uuid.UUID, len(fresh))
	for _, s := range fresh {
		isFresh[s.ID.String()] = s.ID
	}
	var storedAt []int // indexes in hist of readings stored before this ingest
	for i, o := range hist {
		if _, ok := isFresh[o.ID]; !ok {
			storedAt = append(storedAt, i)
		}
	}
	out := make(map[uuid.UUID][]rules.Observation, len(fresh))
	for i, o := range hist {
		id, ok := isFresh[o.ID]
		if !ok {
			continue
		}
		j, _ := slices.BinarySearch(storedAt, i)
		if j == len(storedAt) {
			out[id] = hist[:i+1]
			continue
		}
		h := slices.Clone(hist[:i+1])
		for _, k := range storedAt[j:] {
			h = append(h, hist[k])
		}
		out[id] = h
	}
	return out
}

func observation(s stored) rules.Observation {
	return rules.Observation{ID: s.ID.String(), Kind: s.Kind, Value: s.Value, Systolic: s.Systolic, Diastolic: s.Diastolic,
		Unit: s.Unit, ObservedAt: s.ObservedAt}
}
