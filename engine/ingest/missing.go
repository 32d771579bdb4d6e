package ingest

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/alerting"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/scope"
	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/rules"
)

// missingArgs is the periodic job that raises missing-data alerts.
type missingArgs struct{}

// Kind is stable: it is stored in river_job.
func (missingArgs) Kind() string { return "rules.missing_data" }

type missingWorker struct {
	river.WorkerDefaults[missingArgs]
	ig *Service
}

// Work runs one missing-data check.
func (w *missingWorker) Work(ctx context.Context, _ *river.Job[missingArgs]) error {
	_, err := w.ig.CheckMissingData(ctx)
	return err
}

// Timeout bounds one check; a large population takes a while.
func (w *missingWorker) Timeout(*river.Job[missingArgs]) time.Duration { return 10 * time.Minute }

// MissingDataResult summarises one missing-data check.
type MissingDataResult struct {
	// Patients is how many patients were checked.
	Patients int `json:"patients"`
	// Findings is how many gaps were reported (one alert finding each).
	Findings int `json:"findings"`
	// Alerts are the alerts raised or updated.
	Alerts []alerting.AlertRef `json:"alerts"`
}

// missingPage is how many patients one query of the check reads.
const missingPage = 500

// missingActor is who raises missing-data alerts.
var missingActor = access.System("missing-data")

// CheckMissingData runs the enabled missing-data rules over every patient
// enrolled in their programs, each with their organisation's pack: for each
// patient it finds the newest reading of each watched kind and asks
// Pack.EvaluateMissing which gaps are open. Each gap is reported once: the
// check passes, per rule version, the time of its previous run as
// MissingInput.Since, and skips a gap whose finding is already recorded (a
// rerun after a crash, or two runs at once). Alerts are raised through the
// same path as readings, one transaction per patient with a gap. The
// periodic River job calls it every Config.MissingDataInterval.
func (ig *Service) CheckMissingData(ctx context.Context) (MissingDataResult, error) {
	var res MissingDataResult
	now := ig.now()
	groups, err := ig.missingGroups(ctx)
	if err != nil {
		return res, err
	}
	for _, g := range groups {
		if err := ig.checkMissingGroup(ctx, g, now, &res); err != nil {
			return res, err
		}
	}
	for _, r := range res.Alerts {
		if r.Status == "opened" {
			ig.metrics.Alerts.WithLabelValues(string(r.Urgency)).Inc()
		}
	}
	return res, nil
}

// missingGroup is the patients one pack judges: those of every organisation
// without overrides (the default pack; orgs lists the organisations left
// out), or those of one organisation with overrides (org; orgs is it alone).
type missingGroup struct {
	pack *rules.Pack
	org  *uuid.UUID
	orgs []uuid.UUID
}

// missingGroups groups the organisations by the pack in force for them: the
// default pack's group first, then one per organisation with its own.
func (ig *Service) missingGroups(ctx context.Context) ([]missingGroup, error) {
	rows, err := ig.pool.Query(ctx, organisationsSQL)
	if err != nil {
		return nil, fmt.Errorf("missing-data organisations: %w", err)
	}
	orgs, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("missing-data organisations: %w", err)
	}
	def := ig.pack(uuid.Nil)
	groups := []missingGroup{{pack: def, orgs: []uuid.UUID{}}}
	for _, org := range orgs {
		if p := ig.pack(org); p != def {
			groups[0].orgs = append(groups[0].orgs, org)
			groups = append(groups, missingGroup{pack: p, org: &org, orgs: []uuid.UUID{org}})
		}
	}
	return groups, nil
}

// checkMissingGroup runs one group's missing-data rules over its patients.
func (ig *Service) checkMissingGroup(ctx context.Context, g missingGroup, now time.Time, res *MissingDataResult) error {
	var watched []rules.Rule
	var kinds []string
	var programs []string
	everyone := false
	for _, r := range g.pack.Rules() {
		if r.Type() != rules.MissingRule || !r.IsEnabled() {
			continue
		}
		watched = append(watched, r)
		if !slices.Contains(kinds, string(r.Kind)) {
			kinds = append(kinds, string(r.Kind))
		}
		if len(r.Programs) == 0 {
			everyone = true
		}
		programs = append(programs, r.Programs...)
	}
	if len(watched) == 0 {
		return nil
	}
	since, err := ig.missingSince(ctx, watched, g.org)
	if err != nil {
		return err
	}
	after := uuid.Nil
	for {
		page, err := ig.missingPage(ctx, after, everyone, programs, kinds, g)
		if err != nil {
			return err
		}
		for _, p := range page {
			res.Patients++
			fs := dueGaps(g.pack, p.in(now), since)
			if len(fs) == 0 {
				continue
			}
			n, refs, err := ig.raiseMissing(ctx, g.pack, p, kinds, now, since)
			if err != nil {
				return err
			}
			res.Findings += n
			res.Alerts = append(res.Alerts, refs...)
		}
		if len(page) < missingPage {
			break
		}
		after = page[len(page)-1].id
	}
	b := &pgx.Batch{}
	for _, r := range watched {
		b.Queue(recordJobRunSQL, missingRunName(r, g.org), now)
	}
	if err := ig.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("record missing-data Run: %w", err)
	}
	return nil
}

// missingRunName keys a rule version's last check: a changed rule starts
// afresh, so the gaps already open under its new definition are reported.
// The default pack's rules are checked for every organisation without
// overrides at once; an organisation's own pack is checked apart (org).
func missingRunName(r rules.Rule, org *uuid.UUID) string {
	if org != nil {
		return fmt.Sprintf("missing-data:%s@%d:%s", r.ID, max(r.Version, 1), org)
	}
	return fmt.Sprintf("missing-data:%s@%d", r.ID, max(r.Version, 1))
}

// missingSince returns, per rule id, the time of the rule version's previous
// check (zero for none).
func (ig *Service) missingSince(ctx context.Context, watched []rules.Rule, org *uuid.UUID) (map[string]time.Time, error) {
	names := make([]string, len(watched))
	for i, r := range watched {
		names[i] = missingRunName(r, org)
	}
	rows, err := ig.pool.Query(ctx, jobRunsSQL, names)
	if err != nil {
		return nil, fmt.Errorf("missing-data runs: %w", err)
	}
	ran := map[string]time.Time{}
	for rows.Next() {
		var n string
		var t time.Time
		if err := rows.Scan(&n, &t); err != nil {
			rows.Close()
			return nil, fmt.Errorf("missing-data runs: %w", err)
		}
		ran[n] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("missing-data runs: %w", err)
	}
	out := make(map[string]time.Time, len(watched))
	for _, r := range watched {
		out[r.ID] = ran[missingRunName(r, org)]
	}
	return out, nil
}

// dueGaps evaluates the missing-data rules and keeps the gaps that became
// due after their rule's previous check.
func dueGaps(pack *rules.Pack, in rules.MissingInput, since map[string]time.Time) []rules.Finding {
	var out []rules.Finding
	for _, f := range pack.EvaluateMissing(in) {
		if s := since[f.RuleID]; s.IsZero() || f.At.After(s) {
			out = append(out, f)
		}
	}
	return out
}

// missingPatient is one patient of the check with the newest reading of each
// watched kind.
type missingPatient struct {
	id    uuid.UUID
	scope scope.Patient
	last  map[rpm.Kind]time.Time
}

func (p missingPatient) in(now time.Time) rules.MissingInput {
	return rules.MissingInput{Programs: p.scope.Programs, EnrolledAt: p.scope.EnrolledAt, LastObserved: p.last, Now: now}
}

// missingPage reads the next page of group g's patients (by id) with their
// newest reading per kind, one index probe per (patient, kind).
func (ig *Service) missingPage(ctx context.Context, after uuid.UUID, everyone bool, programs, kinds []string, g missingGroup) ([]missingPatient, error) {
	rows, err := ig.pool.Query(ctx, missingPageSQL, after, everyone, programs, missingPage, kinds, g.orgs, g.org == nil)
	if err != nil {
		return nil, fmt.Errorf("missing-data patients: %w", err)
	}
	defer rows.Close()
	var out []missingPatient
	for rows.Next() {
		var id uuid.UUID
		var s scope.Patient
		var kind string
		var last *time.Time
		if err := rows.Scan(&id, &s.CareTeamID, &s.Programs, &s.EnrolledAt, &s.OrgID, &kind, &last); err != nil {
			return nil, fmt.Errorf("missing-data patients: %w", err)
		}
		if len(out) == 0 || out[len(out)-1].id != id {
			out = append(out, missingPatient{id: id, scope: s, last: map[rpm.Kind]time.Time{}})
		}
		if last != nil {
			out[len(out)-1].last[rpm.Kind(kind)] = *last
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("missing-data patients: %w", err)
	}
	return out, nil
}

// raiseMissing re-checks one patient's gaps under the patient's ingest lock
// (a reading may have arrived since the page was read) and raises an alert
// finding for each gap not already recorded.
func (ig *Service) raiseMissing(ctx context.Context, pack *rules.Pack, p missingPatient, kinds []string, now time.Time, since map[string]time.Time) (int, []alerting.AlertRef, error) {
	var n int
	var refs []alerting.AlertRef
	err := pg.InTx(ctx, ig.pool, func(tx pgx.Tx) error {
		if err := pg.LockPatients(ctx, tx, p.id); err != nil {
			return fmt.Errorf("missing data: %w", err)
		}
		rows, err := tx.Query(ctx, lastObservedSQL, p.id, kinds)
		if err != nil {
			return fmt.Errorf("missing data: last readings: %w", err)
		}
		last := map[rpm.Kind]time.Time{}
		for rows.Next() {
			var k string
			var t time.Time
			if err := rows.Scan(&k, &t); err != nil {
				rows.Close()
				return fmt.Errorf("missing data: last readings: %w", err)
			}
			last[rpm.Kind(k)] = t
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("missing data: last readings: %w", err)
		}
		p.last = last
		fs := dueGaps(pack, p.in(now), since)
		if len(fs) == 0 {
			return nil
		}
		ruleIDs := make([]string, len(fs))
		dues := make([]time.Time, len(fs))
		for i, f := range fs {
			ruleIDs[i], dues[i] = f.RuleID, f.At
		}
		rows, err = tx.Query(ctx, reportedMissingSQL, p.id, ruleIDs, dues)
		if err != nil {
			return fmt.Errorf("missing data: recorded gaps: %w", err)
		}
		type gap struct {
			rule string
			at   time.Time
		}
		seen := map[gap]bool{}
		for rows.Next() {
			var g gap
			if err := rows.Scan(&g.rule, &g.at); err != nil {
				rows.Close()
				return fmt.Errorf("missing data: recorded gaps: %w", err)
			}
			seen[gap{g.rule, g.at.UTC()}] = true
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("missing data: recorded gaps: %w", err)
		}
		var hits []alerting.Hit
		for _, f := range fs {
			f.At = f.At.Truncate(time.Microsecond) // as Postgres stores it, so the check above matches next time
			if seen[gap{f.RuleID, f.At.UTC()}] {
				continue
			}
			hits = append(hits, alerting.Hit{Reading: alerting.Stored{Measurement: rpm.Measurement{ObservedAt: f.At, Kind: f.Kind}}, Findings: []rules.Finding{f}})
		}
		if len(hits) == 0 {
			return nil
		}
		refs, err = ig.alerting.Raise(ctx, tx, missingActor, p.id, p.scope, hits)
		n = len(hits)
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	return n, refs, nil
}
