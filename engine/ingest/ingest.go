package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/alerting"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/check"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/scope"
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
	// Backfill allows readings older than Config.ObservedHorizon (down to
	// BackfillHorizon). Only clinicians may backfill.
	Backfill bool
}

// ReadingStatus tells the client what happened to one submitted reading.
type ReadingStatus struct {
	ID uuid.UUID `json:"id"`
	// Status is "created", or "duplicate" when its source_id was seen before
	// (ID is then the stored reading's id).
	Status string `json:"status"`
}

// IngestResult is the outcome of an ingest.
type IngestResult struct {
	Readings []ReadingStatus     `json:"readings"`
	Alerts   []alerting.AlertRef `json:"alerts"`
	// Retakes lists the readings that wait for a retake before anyone is
	// paged: the patient should measure again before retake_by.
	Retakes []alerting.RetakeRef `json:"retakes,omitempty"`
}

// Ingest validates and stores readings, evaluates the rules, raises or updates
// alerts and enqueues the notifications about them — all in one transaction.
// An invalid reading rejects the whole batch (a *rpm.ValidationError listing
// every problem) and stores nothing.
func (ig *Service) Ingest(ctx context.Context, a access.Actor, req IngestRequest) (IngestResult, error) {
	if err := access.Require(a, access.RolePatient, access.RoleDevice, access.RoleClinician); err != nil {
		return IngestResult{}, err
	}
	if req.Backfill && a.Role != access.RoleClinician {
		return IngestResult{}, check.FieldError("backfill", "only clinicians may backfill readings older than "+
			ig.observedHorizon.Format(time.DateOnly))
	}
	ms, err := ig.normalize(req)
	if err != nil {
		return IngestResult{}, err
	}
	// A reading for a month without a partition creates one — but only once
	// the caller is known to write to this patient, so nothing changes on a
	// request that is answered 404.
	if err := ig.ensurePartitions(ctx, ms, func() error { return ig.checkPatientScope(ctx, a, req.PatientID) }); err != nil {
		return IngestResult{}, err
	}
	j := &ingestJob{actor: a, patientID: req.PatientID, ms: ms}
	if err := ig.ingester.Do(ctx, j); err != nil {
		return IngestResult{}, err
	}
	if j.err != nil {
		return IngestResult{}, j.err
	}
	ig.metrics.Readings.Add(float64(len(ms)))
	for _, al := range j.res.Alerts {
		if al.Status == "opened" {
			ig.metrics.Alerts.WithLabelValues(string(al.Urgency)).Inc()
		}
	}
	return j.res, nil
}

// ValidateReadings checks readings the way Ingest does, without touching the
// database: a *rpm.ValidationError listing every problem, or nil.
func (ig *Service) ValidateReadings(req IngestRequest) error {
	_, err := ig.normalize(req)
	return err
}

// checkPatientScope returns access.ErrNotFound unless a may write readings for the
// patient.
func (ig *Service) checkPatientScope(ctx context.Context, a access.Actor, patientID uuid.UUID) error {
	return pg.ReadTx(ctx, ig.pool, func(tx pgx.Tx) error {
		_, err := scope.OfPatient(ctx, tx, a, patientID)
		return err
	})
}

func (ig *Service) normalize(req IngestRequest) ([]rpm.Measurement, error) {
	if len(req.Readings) == 0 {
		return nil, check.FieldError("readings", "must contain at least one reading")
	}
	if len(req.Readings) > MaxBatch {
		return nil, check.FieldError("readings", fmt.Sprintf("at most %d readings per request", MaxBatch))
	}
	now := ig.now()
	ms := make([]rpm.Measurement, len(req.Readings))
	var all rpm.ValidationError
	for i, r := range req.Readings {
		m, err := rpm.Normalize(r, now)
		if err == nil {
			err = ig.checkHorizon(r.ObservedAt, req.Backfill)
		}
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

// checkHorizon rejects an observation time before the horizon: a wrong device
// clock or a typo, not a measurement.
func (ig *Service) checkHorizon(t time.Time, backfill bool) error {
	floor := ig.observedHorizon
	if backfill {
		floor = BackfillHorizon
	}
	if t.Before(floor) {
		reason := "is before " + floor.Format(time.DateOnly) + ", the earliest time Tend accepts"
		if !backfill {
			reason += " (clinicians may backfill older readings with ?backfill=true)"
		}
		return check.FieldError("observed_at", reason)
	}
	return nil
}

// ingestGroup stores and evaluates a group of ingest jobs (one per patient)
// in one transaction, setting each job's result or error. It returns an
// error only for failures that fail the whole group, or allIn's error:
// allIn, when set, runs once the scopes are known and stops the group before
// anything is written when it fails (FHIR's all-or-nothing transaction).
//
// Round trip 1 reads which jobs may write to their patient (the others fail
// alone, not found, and write nothing), with the patients' organisations
// (whose rule packs judge them), personalised rule parameters and waiting
// retakes; it is a plain read, like the first
// statement of a READ COMMITTED transaction, which takes no lock either.
// When no reading of the group needs history and none finds anything (the
// common case: normal readings), nothing is left to decide after the insert,
// so the locks, readings and audit entries travel as one pipeline that
// Postgres runs as one implicit transaction: two round trips in all, no
// BEGIN and no COMMIT. Otherwise the group runs in a transaction, begun in
// the same round trip as the insert, that reads the history after the
// insert and raises the alerts.
func (ig *Service) ingestGroup(ctx context.Context, jobs []*ingestJob, allIn func() error) error {
	active, err := ig.loadScopes(ctx, jobs)
	if err != nil {
		return err
	}
	if allIn != nil {
		if err := allIn(); err != nil {
			return err
		}
	}
	if len(active) == 0 {
		return nil
	}
	now := ig.now()
	g := ig.newGroupRows(active, now)
	if len(g.hist.patient) == 0 && ig.quiet(active, now) {
		var created map[uuid.UUID]bool
		b := g.batch(now, &created, nil)
		if err := pg.SendAtomic(ctx, ig.pool, b); err != nil {
			return fmt.Errorf("insert readings: %w", err)
		}
		return resolveStatuses(ctx, ig.pool, active, created)
	}
	var created map[uuid.UUID]bool
	var hist []rules.Observation
	var histPatients []uuid.UUID
	b := g.batch(now, &created, func(rows pgx.Rows) error {
		var err error
		hist, histPatients, err = scanHistory(rows)
		return err
	})
	return pg.InTxBatch(ctx, ig.pool, b, func(tx pgx.Tx) error {
		if err := resolveStatuses(ctx, tx, active, created); err != nil {
			return err
		}
		return ig.raise(ctx, tx, active, created, splitHistory(hist, histPatients), now)
	})
}

// loadScopes is an ingest group's first round trip: it sets the scope,
// parameters and retakes of each job that may write to its patient, fails the
// others (not found), and returns the first.
func (ig *Service) loadScopes(ctx context.Context, jobs []*ingestJob) ([]*ingestJob, error) {
	pids := make([]uuid.UUID, len(jobs))
	roles := make([]string, len(jobs))
	apids := make([]uuid.UUID, len(jobs))
	uids := make([]uuid.UUID, len(jobs))
	for i, j := range jobs {
		pids[i], roles[i], apids[i], uids[i] = j.patientID, string(j.actor.Role), j.actor.PatientID, j.actor.UserID
	}
	rows, err := ig.pool.Query(ctx, scopeManySQL, pids, roles, apids, uids)
	if err != nil {
		return nil, fmt.Errorf("ingest scope: %w", err)
	}
	for rows.Next() {
		var i int
		var s scope.Patient
		var params map[string]map[string]float64
		var retakes alerting.Retakes
		if err := rows.Scan(&i, &s.CareTeamID, &s.Programs, &s.EnrolledAt, &s.OrgID, &params, &retakes, &s.Restricted); err != nil {
			rows.Close()
			return nil, fmt.Errorf("ingest scope: %w", err)
		}
		jobs[i-1].scope, jobs[i-1].params, jobs[i-1].retakes, jobs[i-1].inScope = s, params, retakes, true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ingest scope: %w", err)
	}
	active := jobs[:0:0]
	for _, j := range jobs {
		if j.inScope {
			active = append(active, j)
		} else {
			j.err = fmt.Errorf("patient: %w", access.ErrNotFound)
		}
	}
	return active, nil
}

// quiet reports whether no reading of the group can find anything or settle
// a retake without history: then evaluating after the insert would raise,
// record and ask nothing, and the group needs no transaction of its own.
func (ig *Service) quiet(active []*ingestJob, now time.Time) bool {
	for _, j := range active {
		if j.scope.Restricted {
			continue // stored, never evaluated
		}
		pack := ig.pack(j.scope.OrgID)
		if len(j.retakes) > 0 {
			return false
		}
		for _, m := range j.ms {
			if pack.UsesBaseline(m.Kind, j.scope.Programs) {
				return false
			}
			in := rules.Input{Reading: rules.Observation{Kind: m.Kind, Value: m.Value, Systolic: m.Systolic,
				Diastolic: m.Diastolic, Unit: m.Unit, ObservedAt: m.ObservedAt}, Programs: j.scope.Programs, Params: j.params, Now: now}
			if res := pack.Evaluate(in); len(res.Findings) > 0 || len(res.Suppressed) > 0 || len(res.Errors) > 0 {
				return false
			}
		}
	}
	return true
}

// groupRows are a group's writes as parallel arrays: per-patient locks (in
// a fixed order, so groups cannot deadlock), every reading, every audit
// entry, and the history the rules need for the readings that need any.
type groupRows struct {
	locks    []uuid.UUID
	readings readingArrays
	audits   audit.ReadingCreations
	hist     historyColumns
}

// newGroupRows gives each job's readings their ids and collects the group's
// rows.
func (ig *Service) newGroupRows(active []*ingestJob, now time.Time) *groupRows {
	g := &groupRows{locks: make([]uuid.UUID, 0, len(active))}
	for _, j := range active {
		g.locks = append(g.locks, j.patientID)
		j.ids = make([]uuid.UUID, len(j.ms))
		sources := make([]string, len(j.ms))
		for i := range j.ms {
			j.ids[i] = pg.NewID()
			sources[i] = j.ms[i].SourceID
			g.readings.add(j, i)
		}
		g.audits.Add(j.actor, j.patientID, j.scope.OrgID, j.ids, sources)
		if !j.scope.Restricted {
			g.hist.add(ig.pack(j.scope.OrgID), j, now)
		}
	}
	return g
}

// batch is the group's store round trip: the locks, the readings (setting
// *created to the ids of those it created; the others were duplicates), the
// audit entries and, when history is set and some reading needs it, the
// history the rules need — which, running after the insert, includes the new
// readings.
func (g *groupRows) batch(now time.Time, created *map[uuid.UUID]bool, history func(pgx.Rows) error) *pgx.Batch {
	c := &g.readings
	*created = make(map[uuid.UUID]bool, len(c.id))
	b := &pgx.Batch{}
	b.Queue(pg.LockPatientsSQL, g.locks)
	b.Queue(insertReadingsSQL, c.patient, c.id, c.kind, c.value, c.sys, c.dia, c.unit, c.observed,
		c.source, c.recordedBy, now).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id uuid.UUID
			if err := rows.Scan(&id); err != nil {
				return err
			}
			(*created)[id] = true
		}
		return rows.Err()
	})
	g.audits.Queue(b, now)
	if history != nil && len(g.hist.patient) > 0 {
		b.Queue(historySQL, g.hist.patient, g.hist.kind, g.hist.since, now.Add(rpm.MaxFutureSkew)).Query(history)
	}
	return b
}

// resolveStatuses sets each job's reading statuses: created, or duplicate
// (a source_id seen before) with the stored reading's id.
func resolveStatuses(ctx context.Context, q pg.Querier, active []*ingestJob, created map[uuid.UUID]bool) error {
	var dupPatients []uuid.UUID
	var dupSources []string
	for _, j := range active {
		j.res.Readings = make([]ReadingStatus, len(j.ms))
		for i, id := range j.ids {
			if created[id] {
				j.res.Readings[i] = ReadingStatus{ID: id, Status: "created"}
			} else {
				j.res.Readings[i] = ReadingStatus{Status: "duplicate"}
				dupPatients, dupSources = append(dupPatients, j.patientID), append(dupSources, j.ms[i].SourceID)
			}
		}
	}
	if len(dupSources) == 0 {
		return nil
	}
	return resolveDuplicates(ctx, q, active, dupPatients, dupSources)
}

// raise evaluates each patient's new readings with their organisation's
// pack, then raises every patient's alerts together.
func (ig *Service) raise(ctx context.Context, tx pgx.Tx, active []*ingestJob, created map[uuid.UUID]bool,
	byPatient map[uuid.UUID][]rules.Observation, now time.Time) error {
	var raises []*alerting.Request
	raised := map[*ingestJob]*alerting.Request{}
	for _, j := range active {
		if j.scope.Restricted {
			continue // processing restricted: stored, not evaluated
		}
		fresh := make([]alerting.Stored, 0, len(j.ms))
		for i, m := range j.ms {
			if created[j.ids[i]] {
				fresh = append(fresh, alerting.Stored{Measurement: m, ID: j.ids[i], Created: true})
			}
		}
		if len(fresh) == 0 {
			continue
		}
		hits, retakes, err := ig.alerting.Evaluate(ctx, tx, j.patientID, j.scope, ig.pack(j.scope.OrgID), fresh, byPatient[j.patientID], j.params, j.retakes)
		if err != nil {
			return err
		}
		j.res.Retakes = retakes
		if len(hits) > 0 {
			r := alerting.NewRequest(j.actor, j.patientID, j.scope, hits)
			raises, raised[j] = append(raises, r), r
		}
	}
	if len(raises) == 0 {
		return nil
	}
	if err := ig.alerting.RaiseMany(ctx, tx, raises); err != nil {
		return err
	}
	for j, r := range raised {
		j.res.Alerts = r.Refs()
	}
	return nil
}

// readingArrays are a group's readings as parallel arrays for unnest.
type readingArrays struct {
	patient, id, recordedBy []uuid.UUID
	kind, unit              []string
	value                   []float64
	sys, dia                []*float64
	observed                []time.Time
	source                  []*string
}

func (c *readingArrays) add(j *ingestJob, i int) {
	m := &j.ms[i]
	c.patient, c.id, c.recordedBy = append(c.patient, j.patientID), append(c.id, j.ids[i]), append(c.recordedBy, j.actor.UserID)
	c.kind, c.unit, c.value = append(c.kind, string(m.Kind)), append(c.unit, m.Unit), append(c.value, m.Value)
	c.observed = append(c.observed, m.ObservedAt)
	var sys, dia *float64
	if m.Kind == rpm.BloodPressure {
		sys, dia = &m.Systolic, &m.Diastolic
	}
	c.sys, c.dia = append(c.sys, sys), append(c.dia, dia)
	var src *string
	if m.SourceID != "" {
		src = &m.SourceID
	}
	c.source = append(c.source, src)
}

// resolveDuplicates fills in the stored ids of readings whose source_id was
// already known, for the whole group in one query.
func resolveDuplicates(ctx context.Context, q pg.Querier, jobs []*ingestJob, patients []uuid.UUID, sources []string) error {
	rows, err := q.Query(ctx, duplicateSourcesSQL, patients, sources)
	if err != nil {
		return fmt.Errorf("resolve duplicates: %w", err)
	}
	type key struct {
		patient uuid.UUID
		source  string
	}
	known := map[key]uuid.UUID{}
	for rows.Next() {
		var k key
		var id uuid.UUID
		if err := rows.Scan(&k.patient, &k.source, &id); err != nil {
			rows.Close()
			return fmt.Errorf("resolve duplicates: %w", err)
		}
		known[k] = id
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("resolve duplicates: %w", err)
	}
	for _, j := range jobs {
		for i := range j.res.Readings {
			if j.res.Readings[i].Status == "duplicate" {
				j.res.Readings[i].ID = known[key{j.patientID, j.ms[i].SourceID}]
			}
		}
	}
	return nil
}

// historyColumns are, per patient and kind, the earliest observation time
// the rules need: from the job's earliest reading that needs history minus
// that kind's look-back (Pack.HistoryNeeds).
type historyColumns struct {
	patient []uuid.UUID
	kind    []string
	since   []time.Time
}

func (c *historyColumns) add(pack *rules.Pack, j *ingestJob, now time.Time) {
	// Only readings that could find something need history
	// (Pack.NeedsHistory): a normal reading costs none.
	earliest := map[rpm.Kind]time.Time{}
	for _, m := range j.ms {
		in := rules.Input{Reading: rules.Observation{Kind: m.Kind, Value: m.Value, Systolic: m.Systolic, Diastolic: m.Diastolic,
			Unit: m.Unit, ObservedAt: m.ObservedAt}, Programs: j.scope.Programs, Params: j.params, Now: now}
		from := m.ObservedAt
		// A reading that may be the retake of a waiting finding needs the
		// history from that finding's reading, to decide it.
		if t, ok := j.retakes.Earliest(m.Kind); ok && t.Before(m.ObservedAt) {
			from = t
		} else if !pack.NeedsHistory(in) {
			continue
		}
		if t, ok := earliest[m.Kind]; !ok || from.Before(t) {
			earliest[m.Kind] = from
		}
	}
	since := map[rpm.Kind]time.Time{}
	for k, at := range earliest {
		for kind, d := range pack.HistoryNeeds(k) {
			if t, ok := since[kind]; !ok || at.Add(-d).Before(t) {
				since[kind] = at.Add(-d)
			}
		}
	}
	for k, t := range since {
		c.patient, c.kind, c.since = append(c.patient, j.patientID), append(c.kind, string(k)), append(c.since, t)
	}
}

// scanHistory collects the rows of historySQL and each row's patient.
func scanHistory(rows pgx.Rows) ([]rules.Observation, []uuid.UUID, error) {
	defer rows.Close()
	var obs []rules.Observation
	var patients []uuid.UUID
	for rows.Next() {
		var o rules.Observation
		var patient, id uuid.UUID
		var kind string
		if err := rows.Scan(&patient, &id, &kind, &o.Value, &o.Systolic, &o.Diastolic, &o.Unit, &o.ObservedAt); err != nil {
			return nil, nil, err
		}
		o.ID, o.Kind = id.String(), rpm.Kind(kind)
		obs, patients = append(obs, o), append(patients, patient)
	}
	return obs, patients, rows.Err()
}

// splitHistory cuts the group's history (ordered by patient) into one
// sub-slice per patient.
func splitHistory(hist []rules.Observation, patients []uuid.UUID) map[uuid.UUID][]rules.Observation {
	out := map[uuid.UUID][]rules.Observation{}
	for start := 0; start < len(hist); {
		end := start + 1
		for end < len(hist) && patients[end] == patients[start] {
			end++
		}
		out[patients[start]] = hist[start:end:end]
		start = end
	}
	return out
}
