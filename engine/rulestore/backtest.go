package rulestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/alerting"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/check"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/rules"
)

// Limits of a backtest.
const (
	// MaxBacktestSpan bounds until - since.
	MaxBacktestSpan = 366 * 24 * time.Hour
	// DefaultBacktestSpan is the period backtested when since is not given.
	DefaultBacktestSpan = 30 * 24 * time.Hour
	// MaxBacktestPatientIDs bounds the patient filter.
	MaxBacktestPatientIDs = 1000
	// MaxBacktestReported bounds the patients listed in a result (the totals
	// count every patient).
	MaxBacktestReported = 1000
	// backtestPage is how many patients one query of a backtest reads.
	backtestPage = 200
	// defaultExamples is how many findings are listed per patient.
	defaultExamples = 3
	maxExamples     = 20
)

// BacktestRequest says which rule to backtest over which stored data.
type BacktestRequest struct {
	// Rule is a rule in the rule language (JSON or YAML), backtested without
	// being stored. Exactly one of Rule and RuleID is required.
	Rule []byte
	// RuleID names a stored rule: its latest version is backtested, enabled
	// or not.
	RuleID string
	// Since and Until bound the period (findings observed in [Since, Until]).
	// Until defaults to now; Since to Until minus DefaultBacktestSpan. Readings
	// before Since that the rule looks back at are replayed as history.
	Since, Until time.Time
	// PatientIDs and Programs restrict the patients (empty: every patient the
	// rule applies to).
	PatientIDs []uuid.UUID
	Programs   []string
	// Examples is how many findings to list per patient. Defaults to 3, at
	// most 20.
	Examples int
}

// BacktestResult is what a rule would have done over stored data. Nothing
// is created by a backtest.
type BacktestResult struct {
	RuleID string `json:"rule_id"`
	// RuleVersion is the stored version backtested; 0 for a rule sent in
	// the request.
	RuleVersion int       `json:"rule_version"`
	Since       time.Time `json:"since"`
	Until       time.Time `json:"until"`
	// PatientsScanned counts the patients replayed; ReadingsScanned and
	// SymptomReportsScanned the stored items replayed (history included).
	PatientsScanned       int `json:"patients_scanned"`
	ReadingsScanned       int `json:"readings_scanned"`
	SymptomReportsScanned int `json:"symptom_reports_scanned"`
	// Findings counts the items the rule fired on (one per reading, report
	// or gap), Suppressed those of them hysteresis held back; Alerts the
	// alerts those would have opened after grouping (each would have
	// paged); Errors the evaluations that failed.
	Findings   int `json:"findings"`
	Suppressed int `json:"suppressed"`
	Alerts     int `json:"alerts"`
	Errors     int `json:"errors"`
	// Patients lists the patients with a finding or an error, in id order,
	// at most MaxBacktestReported of them (Truncated says some were left out).
	Patients  []BacktestPatient `json:"patients"`
	Truncated bool              `json:"truncated"`
}

// BacktestPatient is one patient's share of a backtest.
type BacktestPatient struct {
	PatientID  uuid.UUID `json:"patient_id"`
	Findings   int       `json:"findings"`
	Suppressed int       `json:"suppressed"`
	Alerts     int       `json:"alerts"`
	Errors     int       `json:"errors"`
	// FirstAt and LastAt bound the patient's findings.
	FirstAt *time.Time `json:"first_at"`
	LastAt  *time.Time `json:"last_at"`
	// Examples are the first findings, in time order.
	Examples []BacktestExample `json:"examples"`
	// FirstError is the first evaluation error, without PHI.
	FirstError string `json:"first_error,omitempty"`
}

// BacktestExample is one finding of a backtest.
type BacktestExample struct {
	At time.Time `json:"at"`
	// ObservationID is the reading or symptom report fired on; empty for a
	// missing-data gap.
	ObservationID string `json:"observation_id,omitempty"`
	// Opened says the finding would have opened an alert (and paged).
	Opened bool `json:"opened"`
	// Late says the reading arrived after a newer one (it pages no one).
	Late bool `json:"late"`
}

// Backtest replays stored readings (or symptom reports, or data gaps) of the
// selected patients through one rule and reports how many findings and
// alerts it would have produced, per patient, with the first examples — as
// Pack.Replay judges them, with each patient's programs and personalised
// params. It reads one consistent snapshot in a read-only transaction,
// patient page by patient page, one patient's data in memory at a time, and
// creates nothing; the read is audited afterwards. Admins only: an
// organisation's admin backtests over their organisation's patients, and a
// stored rule as their organisation has it (its override, else the default
// pack's); Tend itself over every patient, and the default pack's rules,
// unless the actor names an organisation.
//
// Event rules (missed doses) find nothing until care events are stored.
func (rs *Service) Backtest(ctx context.Context, a access.Actor, req BacktestRequest) (BacktestResult, error) {
	if err := access.Require(a, access.RoleAdmin); err != nil {
		return BacktestResult{}, err
	}
	req, err := rs.checkBacktest(req)
	if err != nil {
		return BacktestResult{}, err
	}
	org := ruleOrg(a)
	def, version, err := rs.backtestRule(ctx, req, org)
	if err != nil {
		return BacktestResult{}, err
	}
	on := true
	def.Enabled = &on // backtesting is how a rule is tried before it is enabled
	pack, err := rules.Compile([]rules.Rule{def})
	if err != nil {
		return BacktestResult{}, err
	}
	res := BacktestResult{RuleID: def.ID, RuleVersion: version, Since: req.Since, Until: req.Until, Patients: []BacktestPatient{}}
	bt := &backtest{rs: rs, req: req, def: def, pack: pack, res: &res, org: org}
	if err := pg.ReadTx(ctx, rs.pool, bt.run(ctx)); err != nil {
		return BacktestResult{}, err
	}
	err = pg.InTx(ctx, rs.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		rs.audit.Queue(b, a, audit.Entry{Action: "rule.backtest", ObjectType: "rule", ObjectID: def.ID,
			Detail: map[string]any{"patients": res.PatientsScanned, "findings": res.Findings, "alerts": res.Alerts}})
		for _, p := range res.Patients {
			rs.audit.Queue(b, a, audit.Entry{Action: "rule.backtest", PatientID: p.PatientID, ObjectType: "rule", ObjectID: def.ID})
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("audit backtest: %w", err)
		}
		return nil
	})
	if err != nil {
		return BacktestResult{}, err
	}
	return res, nil
}

// checkBacktest validates a request and fills in its defaults.
func (rs *Service) checkBacktest(req BacktestRequest) (BacktestRequest, error) {
	var v rpm.ValidationError
	switch {
	case len(req.Rule) == 0 && req.RuleID == "":
		v.Add("rule", "give a rule or a rule_id")
	case len(req.Rule) > 0 && req.RuleID != "":
		v.Add("rule_id", "give either a rule or a rule_id, not both")
	}
	if req.Until.IsZero() {
		req.Until = rs.now()
	}
	if req.Since.IsZero() {
		req.Since = req.Until.Add(-DefaultBacktestSpan)
	}
	switch {
	case !req.Until.After(req.Since):
		v.Add("until", "must be after since")
	case req.Until.Sub(req.Since) > MaxBacktestSpan:
		v.Add("since", "the period is at most 366 days")
	}
	if len(req.PatientIDs) > MaxBacktestPatientIDs {
		v.Add("patient_ids", fmt.Sprintf("at most %d patients", MaxBacktestPatientIDs))
	}
	for i, p := range req.Programs {
		if !rpm.ValidProgram(p) {
			v.Add(fmt.Sprintf("programs[%d]", i), "must be one of "+strings.Join(rpm.Programs(), ", "))
		}
	}
	switch {
	case req.Examples == 0:
		req.Examples = defaultExamples
	case req.Examples < 0 || req.Examples > maxExamples:
		v.Add("examples", fmt.Sprintf("must be from 1 to %d", maxExamples))
	}
	return req, v.OrNil()
}

// backtestRule returns the rule to backtest and its stored version (0 for
// one sent in the request).
func (rs *Service) backtestRule(ctx context.Context, req BacktestRequest, org *uuid.UUID) (rules.Rule, int, error) {
	if len(req.Rule) > 0 {
		def, err := checkRule(req.Rule)
		return def, 0, err
	}
	if err := rs.EnsureSeeded(ctx); err != nil {
		return rules.Rule{}, 0, err
	}
	var r Rule
	err := pg.ReadTx(ctx, rs.pool, func(tx pgx.Tx) error {
		var err error
		r, err = getRule(ctx, tx, req.RuleID, org)
		return err
	})
	if errors.Is(err, access.ErrNotFound) {
		return rules.Rule{}, 0, check.FieldError("rule_id", "no such rule")
	}
	if err != nil {
		return rules.Rule{}, 0, err
	}
	return r.Definition, r.Version, nil
}

// backtest is one backtest in progress.
type backtest struct {
	rs   *Service
	req  BacktestRequest
	def  rules.Rule
	pack *rules.Pack
	res  *BacktestResult
	org  *uuid.UUID // the organisation whose patients are replayed; nil: every one
}

// btPatient is a patient of a page.
type btPatient struct {
	id       uuid.UUID
	programs []string
	enrolled time.Time
	params   map[string]map[string]float64
}

func (bt *backtest) run(ctx context.Context) func(tx pgx.Tx) error {
	return func(tx pgx.Tx) error {
		typ := bt.def.Type()
		if typ == rules.EventRule {
			return nil // no care events are stored yet
		}
		after := uuid.Nil
		for {
			page, err := bt.patients(ctx, tx, after)
			if err != nil {
				return err
			}
			if len(page) == 0 {
				return nil
			}
			if err := bt.replayPage(ctx, tx, page, typ); err != nil {
				return err
			}
			if len(page) < backtestPage {
				return nil
			}
			after = page[len(page)-1].id
		}
	}
}

// patients reads the next page of patients the rule applies to, with their
// personalised params.
func (bt *backtest) patients(ctx context.Context, tx pgx.Tx, after uuid.UUID) ([]btPatient, error) {
	ids := bt.req.PatientIDs
	if ids == nil {
		ids = []uuid.UUID{}
	}
	programs := bt.req.Programs
	if programs == nil {
		programs = []string{}
	}
	rulePrograms := bt.def.Programs
	if rulePrograms == nil {
		rulePrograms = []string{}
	}
	rows, err := tx.Query(ctx, backtestPatientsSQL, after, ids, programs, rulePrograms, backtestPage, bt.org)
	if err != nil {
		return nil, fmt.Errorf("backtest patients: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (btPatient, error) {
		var p btPatient
		err := r.Scan(&p.id, &p.programs, &p.enrolled, &p.params)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("backtest patients: %w", err)
	}
	return out, nil
}

// replayPage streams the page's readings (or reports) in patient order and
// replays each patient as soon as its data is complete.
func (bt *backtest) replayPage(ctx context.Context, tx pgx.Tx, page []btPatient, typ rules.RuleType) error {
	ids := make([]uuid.UUID, len(page))
	for i, p := range page {
		ids[i] = p.id
	}
	var rows pgx.Rows
	var err error
	switch typ {
	case rules.SymptomRule:
		rows, err = tx.Query(ctx, backtestSymptomsSQL, ids, bt.req.Since, bt.req.Until)
	default:
		kinds, lookback := bt.readingNeeds()
		rows, err = tx.Query(ctx, backtestReadingsSQL, ids, kinds, bt.req.Since.Add(-lookback), bt.req.Until)
	}
	if err != nil {
		return fmt.Errorf("backtest data: %w", err)
	}
	defer rows.Close()
	next := 0 // index in page of the next patient to replay
	var cur rules.ReplayInput
	var curID uuid.UUID
	flushUpTo := func(id uuid.UUID, hasID bool) {
		// Replay every patient before id (all of them when !hasID); the
		// patient id itself is replayed when its data ends.
		for next < len(page) && (!hasID || bytes.Compare(page[next].id[:], id[:]) < 0) {
			p := page[next]
			in := rules.ReplayInput{}
			if p.id == curID {
				in = cur
			}
			bt.replay(p, in)
			next++
		}
	}
	for rows.Next() {
		var pid uuid.UUID
		var item any
		if typ == rules.SymptomRule {
			var rep rules.SymptomReport
			var id uuid.UUID
			var syms []storedSymptom
			if err := rows.Scan(&pid, &id, &rep.At, &syms); err != nil {
				return fmt.Errorf("backtest data: %w", err)
			}
			rep.ID = id.String()
			for _, s := range syms {
				rep.Symptoms = append(rep.Symptoms, rpm.Symptom{Code: s.Code, Severity: s.Severity, Text: s.Text})
			}
			item = rep
		} else {
			var o rules.Observation
			var id uuid.UUID
			var kind string
			if err := rows.Scan(&pid, &id, &kind, &o.Value, &o.Systolic, &o.Diastolic, &o.Unit, &o.ObservedAt); err != nil {
				return fmt.Errorf("backtest data: %w", err)
			}
			o.ID, o.Kind = id.String(), rpm.Kind(kind)
			item = o
		}
		if pid != curID {
			flushUpTo(pid, true)
			cur, curID = rules.ReplayInput{}, pid
		}
		switch x := item.(type) {
		case rules.SymptomReport:
			cur.SymptomReports = append(cur.SymptomReports, x)
			bt.res.SymptomReportsScanned++
		case rules.Observation:
			cur.Readings = append(cur.Readings, x)
			bt.res.ReadingsScanned++
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("backtest data: %w", err)
	}
	flushUpTo(uuid.Nil, false)
	return nil
}

// readingNeeds is which kinds a reading or missing-data rule reads, and how
// far before Since.
func (bt *backtest) readingNeeds() ([]string, time.Duration) {
	kinds := []string{string(bt.def.Kind)}
	lookback := bt.pack.Lookback()
	if bt.def.Type() == rules.MissingRule {
		return kinds, bt.def.Missing.Std()
	}
	for k, d := range bt.pack.HistoryNeeds(bt.def.Kind) {
		if !slices.Contains(kinds, string(k)) {
			kinds = append(kinds, string(k))
		}
		lookback = max(lookback, d)
	}
	return kinds, lookback
}

// replay runs one patient's data through the rule and adds the outcome.
func (bt *backtest) replay(p btPatient, in rules.ReplayInput) {
	res := bt.res
	res.PatientsScanned++
	in.Programs, in.Params, in.Until = p.programs, p.params, bt.req.Until
	if bt.def.Type() == rules.MissingRule {
		in.EnrolledAt = p.enrolled
	}
	out := bt.pack.Replay(in)
	inWindow := func(t time.Time) bool { return !t.Before(bt.req.Since) && !t.After(bt.req.Until) }
	bp := BacktestPatient{PatientID: p.id, Examples: []BacktestExample{}}
	for _, f := range out.Findings {
		if f.RuleID != bt.def.ID || !inWindow(f.At) {
			continue
		}
		bp.Findings++
		if f.Suppressed {
			bp.Suppressed++
		}
		at := f.At
		if bp.FirstAt == nil {
			bp.FirstAt = &at
		}
		bp.LastAt = &at
		if len(bp.Examples) < bt.req.Examples {
			bp.Examples = append(bp.Examples, BacktestExample{At: f.At, ObservationID: f.ObservationID, Opened: f.Opened, Late: f.Late})
		}
	}
	for _, al := range out.Alerts {
		if al.RuleID == bt.def.ID && inWindow(al.OpenedAt) {
			bp.Alerts++
		}
	}
	for _, er := range out.Errors {
		if !inWindow(er.At) {
			continue
		}
		if bp.Errors == 0 {
			bp.FirstError = alerting.EvalErrorText(er.Err)
		}
		bp.Errors++
	}
	res.Findings += bp.Findings
	res.Suppressed += bp.Suppressed
	res.Alerts += bp.Alerts
	res.Errors += bp.Errors
	if bp.Findings == 0 && bp.Errors == 0 {
		return
	}
	if len(res.Patients) >= MaxBacktestReported {
		res.Truncated = true
		return
	}
	res.Patients = append(res.Patients, bp)
}

// storedSymptom is one symptom of a stored report (symptom_reports.symptoms).
type storedSymptom struct {
	Code     rpm.SymptomCode `json:"code"`
	Severity int             `json:"severity"`
	Text     string          `json:"text,omitempty"`
}
