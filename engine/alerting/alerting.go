package alerting

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/events"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/scope"
	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/rules"
)

// Hit is one reading on which at least one rule fired or was held back by
// hysteresis; Findings are sorted most urgent first.
type Hit struct {
	Reading  Stored
	Findings []rules.Finding
	// UpdateOnly is set when every finding was suppressed by hysteresis: the
	// episode was already reported, so the reading only updates the open
	// alert (occurrences, last reading) and pages no one.
	UpdateOnly bool
}

// Evaluate runs the rules over a patient's freshly stored readings in
// observation order and returns what they found (for RaiseMany); rules that
// could not be evaluated are recorded. A finding whose rule asks for a retake
// is set aside (retake.go) rather than returned, and each reading first
// decides the pending retakes it may settle. params are the patient's personalised
// rule parameters.
func (al *Service) Evaluate(ctx context.Context, tx pgx.Tx, patientID uuid.UUID, scope scope.Patient, pack *rules.Pack,
	fresh []Stored, hist []rules.Observation, params map[string]map[string]float64, pending Retakes) ([]Hit, []RetakeRef, error) {
	slices.SortStableFunc(fresh, func(x, y Stored) int { return x.ObservedAt.Compare(y.ObservedAt) })
	histories := BatchHistories(hist, fresh)
	now := al.now()
	var hits []Hit
	var evalErrs []evalError
	var asks []newRetake
	for _, s := range fresh {
		hist := histories[s.ID]
		in := rules.Input{Reading: Observation(s), History: hist, Programs: scope.Programs, Params: params, Now: now}
		if pack.UsesBaseline(s.Kind, scope.Programs) {
			in.Baseline = pack.Baselines(hist, s.ObservedAt)
		}
		if len(pending) > 0 {
			confirmed, err := al.decideRetakes(ctx, tx, pack, pending, s, hist, in)
			if err != nil {
				return nil, nil, err
			}
			hits = append(hits, confirmed...)
		}
		res := pack.Evaluate(in)
		for _, ee := range res.Errors {
			al.metrics.RuleErrors.WithLabelValues(ee.RuleID).Inc()
			al.log.WarnContext(ctx, "rule evaluation failed", "rule_id", ee.RuleID, "rule_version", ee.Version,
				"reading_id", s.ID, "error", ee.Err)
			evalErrs = append(evalErrs, evalError{EvalError: ee, readingID: s.ID})
		}
		paging, ask := setAside(res.Findings, pending, s)
		asks = append(asks, ask...)
		switch {
		case len(paging) > 0:
			hits = append(hits, Hit{Reading: s, Findings: append(paging, res.Suppressed...)})
		case len(res.Suppressed) > 0:
			hits = append(hits, Hit{Reading: s, Findings: res.Suppressed, UpdateOnly: true})
		}
	}
	var retakes []RetakeRef
	if len(asks) > 0 {
		var err error
		if retakes, err = al.askRetakes(ctx, tx, patientID, asks, "retake"); err != nil {
			return nil, nil, err
		}
	}
	if len(evalErrs) > 0 {
		if err := al.recordEvalErrors(ctx, tx, patientID, evalErrs); err != nil {
			return nil, nil, err
		}
	}
	return hits, retakes, nil
}

// alertGroup gathers the findings of one batch that land on one alert: the
// most urgent finding of each reading decides the alert (rule), the others
// ride along as inhibited findings.
type alertGroup struct {
	top       rules.Finding
	first     Stored
	last      Stored
	count     int
	paging    bool // at least one finding is not late
	fires     bool // at least one reading fired (not only suppressed)
	findings  []findingRow
	dropped   bool // update-only and no unresolved alert to update
	alertID   uuid.UUID
	inserted  bool
	status    string
	urgency   rpm.Urgency
	title     string
	notifyNow bool
}

type findingRow struct {
	f       rules.Finding
	reading Stored
}

// Raise upserts one alert per rule group, records every finding, and routes
// the alerts that should page someone now, for one patient.
func (al *Service) Raise(ctx context.Context, tx pgx.Tx, a access.Actor, patientID uuid.UUID, scope scope.Patient, hits []Hit) ([]AlertRef, error) {
	r := NewRequest(a, patientID, scope, hits)
	if err := al.RaiseMany(ctx, tx, []*Request{r}); err != nil {
		return nil, err
	}
	return r.refs, nil
}

// Request is one patient's findings to raise, and (after RaiseMany) the
// alerts they raised or updated.
type Request struct {
	actor     access.Actor
	patientID uuid.UUID
	scope     scope.Patient
	hits      []Hit

	groups map[string]*alertGroup
	order  []string // rule ids in first-seen order
	refs   []AlertRef
}

// NewRequest is patient's hits to raise, found for actor a.
func NewRequest(a access.Actor, patientID uuid.UUID, scope scope.Patient, hits []Hit) *Request {
	return &Request{actor: a, patientID: patientID, scope: scope, hits: hits}
}

// Refs are the alerts the request raised or updated (after RaiseMany).
func (r *Request) Refs() []AlertRef { return r.refs }

// group gathers r's hits by the rule of each reading's most urgent finding.
func (r *Request) group() {
	r.groups = map[string]*alertGroup{}
	for _, h := range r.hits {
		top := h.Findings[0]
		g := r.groups[top.RuleID]
		if g == nil {
			g = &alertGroup{top: top, first: h.Reading}
			r.groups[top.RuleID] = g
			r.order = append(r.order, top.RuleID)
		}
		if top.Urgency.Rank() > g.top.Urgency.Rank() {
			g.top = top
		}
		g.last = h.Reading
		g.count++
		g.fires = g.fires || !h.UpdateOnly
		g.paging = g.paging || (!top.Late && !h.UpdateOnly)
		for _, f := range h.Findings {
			g.findings = append(g.findings, findingRow{f: f, reading: h.Reading})
		}
	}
}

// RaiseMany raises the findings of several patients in shared round trips:
// one for every alert upsert, one (rarely) to reopen, one for every finding,
// event and audit entry; then routing per patient with alerts that page.
func (al *Service) RaiseMany(ctx context.Context, tx pgx.Tx, reqs []*Request) error {
	now := al.now()
	if err := al.upsertAlerts(ctx, tx, reqs, now); err != nil {
		return err
	}
	if err := al.recordFindings(ctx, tx, reqs, now); err != nil {
		return err
	}
	for _, r := range reqs {
		var paging []*alertGroup
		for _, id := range r.order {
			if g := r.groups[id]; g.notifyNow {
				paging = append(paging, g)
			}
		}
		if len(paging) > 0 {
			if err := al.route(ctx, tx, r.patientID, r.scope.CareTeamID, paging); err != nil {
				return err
			}
		}
		slices.SortStableFunc(r.refs, func(x, y AlertRef) int { return y.Urgency.Rank() - x.Urgency.Rank() })
	}
	return nil
}

// upsertAlerts raises or updates the alert of every rule group of reqs in
// one pipelined round trip, then reopens (in another) the groups whose
// suppressed finding had no unresolved alert to join.
func (al *Service) upsertAlerts(ctx context.Context, tx pgx.Tx, reqs []*Request, now time.Time) error {
	upsert := func(b *pgx.Batch, r *Request, g *alertGroup) {
		b.Queue(upsertAlertSQL, pg.NewID(), r.patientID, r.scope.CareTeamID, g.top.RuleID, g.top.Version, g.top.Urgency,
			g.top.Urgency.Rank(), g.top.Title, g.count, pg.NilIfZero(g.first.ID), pg.NilIfZero(g.last.ID), g.first.ObservedAt, g.last.ObservedAt, now).
			QueryRow(g.scan(now))
	}
	b := &pgx.Batch{}
	for _, r := range reqs {
		r.group()
		for _, id := range r.order {
			g := r.groups[id]
			if !g.fires {
				b.Queue(updateAlertSQL, r.patientID, g.top.RuleID, g.count, pg.NilIfZero(g.last.ID), g.first.ObservedAt, g.last.ObservedAt, now).
					QueryRow(g.scan(now))
				continue
			}
			upsert(b, r, g)
		}
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("upsert alerts: %w", err)
	}
	// A suppressed finding with no unresolved alert to join (a clinician
	// resolved it while the episode goes on) opens a new alert after all: a
	// continuing crisis must not go unseen.
	b = &pgx.Batch{}
	for _, r := range reqs {
		for _, id := range r.order {
			if g := r.groups[id]; g.dropped {
				g.dropped, g.fires = false, true
				g.paging = g.paging || !g.top.Late
				upsert(b, r, g)
			}
		}
	}
	if b.Len() > 0 {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("reopen alerts: %w", err)
		}
	}
	return nil
}

// recordFindings records every finding of reqs' groups, their alerts'
// events, audit entries and stream events in one round trip.
func (al *Service) recordFindings(ctx context.Context, tx pgx.Tx, reqs []*Request, now time.Time) error {
	// Record every finding, the alert events and audit entries.
	var (
		fAlert          []uuid.UUID
		fReading        []*uuid.UUID
		fRule, fUrgency []string
		fVersion        []int32
		fLate           []bool
		fObserved       []time.Time
	)
	b := &pgx.Batch{}
	for _, r := range reqs {
		for _, id := range r.order {
			g := r.groups[id]
			for _, fr := range g.findings {
				fAlert = append(fAlert, g.alertID)
				fReading = append(fReading, pg.NilIfZero(fr.reading.ID))
				fRule = append(fRule, fr.f.RuleID)
				fVersion = append(fVersion, int32(fr.f.Version))
				fUrgency = append(fUrgency, string(fr.f.Urgency))
				fLate = append(fLate, fr.f.Late)
				fObserved = append(fObserved, fr.reading.ObservedAt)
			}
			action, status := "alert.update", "updated"
			if g.inserted {
				action, status = "alert.create", "opened"
			}
			b.Queue(insertAlertEventSQL,
				g.alertID, status, pg.NilIfZero(r.actor.UserID), now, map[string]any{"occurrences": g.count, "late": !g.paging})
			al.audit.Queue(b, r.actor, audit.Entry{Action: action, PatientID: r.patientID, ObjectType: "alert", ObjectID: g.alertID.String()})
			evType := events.AlertUpdated
			if g.inserted {
				evType = events.AlertCreated
			}
			events.Queue(b, now, events.Event{Type: evType, CareTeamID: r.scope.CareTeamID, PatientID: r.patientID,
				Payload: map[string]any{"alert_id": g.alertID, "rule_id": g.top.RuleID, "urgency": g.urgency, "status": g.status}})
			r.refs = append(r.refs, AlertRef{ID: g.alertID, RuleID: g.top.RuleID, Urgency: g.urgency, Title: g.title, Status: status})
		}
	}
	b.Queue(insertFindingsSQL, fAlert, fReading, fRule, fVersion, fUrgency, fLate, fObserved, now)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("record findings: %w", err)
	}
	return nil
}

// scan reads an upserted or updated alert into g and decides whether it
// pages now. An update-only group that found no unresolved alert is marked
// dropped (to be reopened).
func (g *alertGroup) scan(now time.Time) func(pgx.Row) error {
	return func(r pgx.Row) error {
		var notifiedAt *time.Time
		var rank, notifiedRank int
		var teamRepeat *string // the team's repeat interval for the urgency, if it sets one
		err := r.Scan(&g.alertID, &g.inserted, &g.status, &g.urgency, &rank, &g.title, &notifiedAt, &notifiedRank, &teamRepeat)
		if errors.Is(err, pgx.ErrNoRows) && !g.fires {
			g.dropped = true
			return nil
		}
		if err != nil {
			return err
		}
		repeat := g.urgency.RepeatInterval()
		if teamRepeat != nil {
			if d, err := rules.ParseDuration(*teamRepeat); err == nil && d.Std() > 0 {
				repeat = d.Std()
			}
		}
		g.notifyNow = g.paging && shouldNotify(g, rank, notifiedRank, notifiedAt, now, repeat)
		return nil
	}
}

// shouldNotify decides whether an upserted alert pages now: a new alert
// always; an existing one when its urgency rose above what was last notified,
// or when it is still open and its repeat interval (the team's, else the
// urgency's) has passed.
func shouldNotify(g *alertGroup, rank, notifiedRank int, notifiedAt *time.Time, now time.Time, repeat time.Duration) bool {
	switch {
	case g.inserted:
		return true
	case rank > notifiedRank:
		return true
	case g.status != "open":
		return false // acknowledged or snoozed: someone is on it
	case notifiedAt == nil:
		return true
	}
	return now.Sub(*notifiedAt) >= repeat
}
