package ingest

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/alerting"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/metrics"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/pgtest"
	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/rules"
	"github.com/tendhealth/tend/sealed"
)

// askPack is a small pack of its own: a report of breathlessness asks for
// SpO2 within 30 minutes, chest pain pages at once, and a low SpO2 asks for
// a retake before paging.
const askPack = `
- id: breathless-ask
  title: Breathlessness reported
  symptom: shortness_of_breath
  urgency: medium
  ask: {kind: spo2, within: 30m}
- id: chest-pain
  title: Chest pain reported
  symptom: chest_pain
  urgency: critical
- id: spo2-low
  title: SpO2 low
  kind: spo2
  when: "value < 90"
  urgency: high
  retake: {within: 10m}
`

// clock is a settable clock, safe to read from the group commit's goroutine.
type clock struct{ t atomic.Pointer[time.Time] }

func (c *clock) now() time.Time  { return *c.t.Load() }
func (c *clock) set(t time.Time) { c.t.Store(&t) }

// askWorld is one patient (with a phone) of a care team with a clinician
// (with a phone), ingest and alerting wired over a fresh database, and an
// insert-only River client: jobs are looked at, not run.
type askWorld struct {
	pool      *pgxpool.Pool
	ig        *Service
	al        *alerting.Service
	clock     *clock
	pack      atomic.Pointer[rules.Pack]
	patient   uuid.UUID
	patientUA access.Actor
	device    access.Actor
}

func newAskWorld(t *testing.T) *askWorld {
	t.Helper()
	ctx := context.Background()
	pool := pgtest.NewPool(t, pg.ConfigurePool)
	pack, err := rules.Load([]byte(askPack))
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := metrics.New(prometheus.NewRegistry(), pool)
	if err != nil {
		t.Fatal(err)
	}
	keyText, err := sealed.Generate("test")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := sealed.ParseKeyring(keyText)
	if err != nil {
		t.Fatal(err)
	}
	w := &askWorld{pool: pool, clock: &clock{}, patient: uuid.New()}
	w.clock.set(time.Now().UTC().Truncate(time.Second))
	w.pack.Store(pack)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	aw := audit.Writer{Now: w.clock.now}
	w.al = alerting.New(alerting.Config{Pool: pool, Logger: log, Now: w.clock.now, Audit: aw, Metrics: m,
		Jobs: func() *river.Client[pgx.Tx] { return jobs }})
	w.ig = New(Config{Pool: pool, Logger: log, Now: w.clock.now, Metrics: m, Audit: aw, Alerting: w.al,
		Rules: func(uuid.UUID) *rules.Pack { return w.pack.Load() }, Transactions: 2, ObservedHorizon: DefaultObservedHorizon, Keys: keys})
	team, doc, patientUser, cuff := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO care_teams (id, name, org_id) VALUES ($1, 'Pulmonary RPM', '00000000-0000-0000-0000-000000000001')`, []any{team}},
		{`INSERT INTO users (id, name, role, org_id) VALUES ($1, 'Dr Ada Osei', 'clinician', '00000000-0000-0000-0000-000000000001')`, []any{doc}},
		{`INSERT INTO care_team_members (care_team_id, user_id, role, org_id) VALUES ($1, $2, 'clinician', '00000000-0000-0000-0000-000000000001')`, []any{team, doc}},
		{`INSERT INTO patients (id, display_name, timezone, care_team_id, programs, org_id) VALUES ($1, 'Sam Lee', 'UTC', $2, '{copd}', '00000000-0000-0000-0000-000000000001')`,
			[]any{w.patient, team}},
		{`INSERT INTO users (id, name, role, patient_id, org_id) VALUES ($1, 'Sam', 'patient', $2, '00000000-0000-0000-0000-000000000001'), ($3, 'oximeter-7', 'device', $2, '00000000-0000-0000-0000-000000000001')`,
			[]any{patientUser, w.patient, cuff}},
		{`INSERT INTO devices (id, user_id, platform, address) VALUES ($1, $2, 'fcm', 'doc-phone'), ($3, $4, 'fcm', 'sam-phone')`,
			[]any{uuid.New(), doc, uuid.New(), patientUser}},
	} {
		if _, err := pool.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	w.patientUA = access.Actor{UserID: patientUser, Role: access.RolePatient, PatientID: w.patient}
	w.device = access.Actor{UserID: cuff, Role: access.RoleDevice, PatientID: w.patient}
	return w
}

func (w *askWorld) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := w.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func (w *askWorld) report(t *testing.T, symptoms ...rpm.Symptom) SymptomReportResult {
	t.Helper()
	res, err := w.ig.ReportSymptoms(context.Background(), w.patientUA, NewSymptomReport{PatientID: w.patient, Symptoms: symptoms})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (w *askWorld) spo2(t *testing.T, v float64, at time.Time) IngestResult {
	t.Helper()
	res, err := w.ig.Ingest(context.Background(), w.device, IngestRequest{PatientID: w.patient,
		Readings: []rpm.Reading{{Kind: rpm.SpO2, Value: &v, Unit: "%", ObservedAt: at}}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// deadline runs the request's deadline job as River would, at its time.
func (w *askWorld) deadline(t *testing.T, id uuid.UUID, at time.Time) {
	t.Helper()
	w.clock.set(at)
	if err := w.al.RetakeDeadline(context.Background(), id); err != nil {
		t.Fatal(err)
	}
}

func (w *askWorld) requestID(t *testing.T, reportID uuid.UUID) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	if err := w.pool.QueryRow(context.Background(), `SELECT id FROM retakes WHERE symptom_report_id = $1`, reportID).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

var breathless = rpm.Symptom{Code: rpm.ShortnessOfBreath, Severity: 5}

// A report of breathlessness under a rule with ask stores one pending
// request to measure SpO2, pushes a generic "measure" to the patient's
// phone, schedules the deadline — and opens no alert and pages no one.
func TestAskStoresRequestAndPagesNobody(t *testing.T) {
	t.Parallel()
	w := newAskWorld(t)
	now := w.clock.now()
	res := w.report(t, breathless)
	if len(res.Alerts) != 0 {
		t.Fatalf("the request to measure opened alerts: %+v", res.Alerts)
	}
	want := alerting.RetakeRef{RuleID: "breathless-ask", ReadingID: res.ID, RetakeBy: now.Add(30 * time.Minute), Kind: rpm.SpO2}
	if len(res.Retakes) != 1 || res.Retakes[0] != want {
		t.Fatalf("retakes = %+v, want %+v", res.Retakes, want)
	}
	if n := w.count(t, `SELECT count(*) FROM retakes WHERE status = 'pending' AND rule_id = 'breathless-ask' AND kind = 'spo2'
		AND reading_id = $1 AND symptom_report_id = $1 AND retake_by = $2`, res.ID, want.RetakeBy); n != 1 {
		t.Errorf("%d pending requests for the report, want 1", n)
	}
	if n := w.count(t, `SELECT count(*) FROM notifications n JOIN users u ON u.id = n.user_id
		WHERE n.type = 'measure' AND u.role = 'patient' AND n.device_count = 1`); n != 1 {
		t.Errorf("%d measure notifications to the patient, want 1", n)
	}
	if n := w.count(t, `SELECT count(*) FROM river_job WHERE kind = 'notify.deliver'`); n != 1 {
		t.Errorf("%d push jobs, want 1 (the patient's phone)", n)
	}
	if n := w.count(t, `SELECT count(*) FROM river_job WHERE kind = 'alerting.retake_deadline' AND scheduled_at = $1`, want.RetakeBy); n != 1 {
		t.Errorf("%d deadline jobs at the request's deadline, want 1", n)
	}
	if n := w.count(t, `SELECT (SELECT count(*) FROM alerts) + (SELECT count(*) FROM notifications WHERE type = 'alert')`); n != 0 {
		t.Errorf("%d alerts and team notifications, want none", n)
	}
	// A second report while the request waits asks nothing new.
	again := w.report(t, breathless)
	if len(again.Retakes) != 0 || w.count(t, `SELECT count(*) FROM retakes`) != 1 {
		t.Errorf("a second report asked again: %+v", again.Retakes)
	}
}

// The next SpO2 reading by the deadline answers the request and pages no
// one for it; a low one is judged by the reading rules as any other, and
// asks for its own retake.
func TestAskAnsweredByNextReading(t *testing.T) {
	t.Parallel()
	w := newAskWorld(t)
	start := w.clock.now()
	rep := w.report(t, breathless)
	w.clock.set(start.Add(5 * time.Minute))
	read := w.spo2(t, 86, start.Add(4*time.Minute))
	if n := w.count(t, `SELECT count(*) FROM retakes WHERE symptom_report_id = $1 AND status = 'answered'
		AND retake_reading_id = $2 AND decided_at IS NOT NULL`, rep.ID, read.Readings[0].ID); n != 1 {
		t.Fatalf("the request was not answered by the reading")
	}
	if len(read.Alerts) != 0 || len(read.Retakes) != 1 || read.Retakes[0].RuleID != "spo2-low" ||
		read.Retakes[0].ReadingID != read.Readings[0].ID {
		t.Fatalf("the low reading: alerts %+v, retakes %+v; want spo2-low's own retake", read.Alerts, read.Retakes)
	}
	// Its retake confirms, and spo2-low pages the team: the answered
	// request does not stand in the way.
	w.clock.set(start.Add(8 * time.Minute))
	conf := w.spo2(t, 85, start.Add(7*time.Minute))
	if len(conf.Alerts) != 1 || conf.Alerts[0].RuleID != "spo2-low" || conf.Alerts[0].Status != "opened" {
		t.Fatalf("the retake's alerts = %+v, want spo2-low opened", conf.Alerts)
	}
	if n := w.count(t, `SELECT count(*) FROM alerts WHERE rule_id = 'breathless-ask'`); n != 0 {
		t.Errorf("the request opened %d alerts", n)
	}
	// The deadline job, when it comes, leaves the answer as it was.
	w.deadline(t, w.requestID(t, rep.ID), start.Add(30*time.Minute))
	if n := w.count(t, `SELECT count(*) FROM retakes WHERE symptom_report_id = $1 AND status = 'answered'`, rep.ID); n != 1 {
		t.Errorf("the deadline changed an answered request")
	}
}

// A reading observed before the report does not answer it; with none by
// the deadline, the job closes the request as unanswered and pages no one.
func TestAskUnansweredAtDeadline(t *testing.T) {
	t.Parallel()
	w := newAskWorld(t)
	start := w.clock.now()
	rep := w.report(t, breathless)
	w.spo2(t, 95, start.Add(-time.Minute))
	if n := w.count(t, `SELECT count(*) FROM retakes WHERE status = 'pending'`); n != 1 {
		t.Fatalf("an earlier reading answered the request")
	}
	id := w.requestID(t, rep.ID)
	w.deadline(t, id, start.Add(30*time.Minute))
	if n := w.count(t, `SELECT count(*) FROM retakes WHERE id = $1 AND status = 'unanswered' AND retake_reading_id IS NULL`, id); n != 1 {
		t.Fatalf("the request is not unanswered")
	}
	if n := w.count(t, `SELECT (SELECT count(*) FROM alerts) + (SELECT count(*) FROM notifications WHERE type = 'alert')`); n != 0 {
		t.Errorf("the unanswered request raised %d alerts and team notifications", n)
	}
	// The job runs again (a retry): nothing changes. A reading after the
	// deadline answers nothing, and a new report may ask again.
	w.deadline(t, id, start.Add(31*time.Minute))
	w.spo2(t, 94, start.Add(32*time.Minute))
	if n := w.count(t, `SELECT count(*) FROM retakes WHERE status = 'unanswered'`); n != 1 {
		t.Errorf("%d unanswered requests, want 1", n)
	}
	if again := w.report(t, breathless); len(again.Retakes) != 1 {
		t.Errorf("a report after the request closed asked nothing")
	}
}

// A report of chest pain (a paging rule) and breathlessness: chest pain
// pages the team in the report's transaction, and the request to measure
// waits alongside it.
func TestAskBesidePagingSymptom(t *testing.T) {
	t.Parallel()
	w := newAskWorld(t)
	res := w.report(t, rpm.Symptom{Code: rpm.ChestPain, Severity: 7}, breathless)
	if len(res.Alerts) != 1 || res.Alerts[0].RuleID != "chest-pain" || res.Alerts[0].Status != "opened" {
		t.Fatalf("alerts = %+v, want chest-pain opened", res.Alerts)
	}
	if len(res.Retakes) != 1 || res.Retakes[0].RuleID != "breathless-ask" {
		t.Fatalf("retakes = %+v, want breathless-ask's request", res.Retakes)
	}
	if n := w.count(t, `SELECT count(*) FROM notifications n JOIN users u ON u.id = n.user_id
		WHERE n.type = 'alert' AND n.alert_id = $1 AND u.role = 'clinician'`, res.Alerts[0].ID); n != 1 {
		t.Errorf("%d pages to the clinician about chest pain, want 1", n)
	}
	if n := w.count(t, `SELECT count(*) FROM symptom_report_alerts WHERE report_id = $1 AND alert_id = $2`,
		res.ID, res.Alerts[0].ID); n != 1 {
		t.Errorf("the chest-pain alert is not linked to the report")
	}
	if n := w.count(t, `SELECT count(*) FROM alerts`); n != 1 {
		t.Errorf("%d alerts, want chest-pain's alone", n)
	}
	if n := w.count(t, `SELECT count(*) FROM retakes WHERE status = 'pending' AND symptom_report_id = $1`, res.ID); n != 1 {
		t.Errorf("%d pending requests, want 1", n)
	}
	if n := w.count(t, `SELECT count(*) FROM notifications WHERE type = 'measure'`); n != 1 {
		t.Errorf("%d measure notifications, want 1", n)
	}
}

// A request made under a rule that is gone by the time the patient measures
// is answered all the same: the patient was asked, and nobody is paged.
func TestAskAnsweredAfterRuleRemoved(t *testing.T) {
	t.Parallel()
	w := newAskWorld(t)
	start := w.clock.now()
	rep := w.report(t, breathless)
	without, err := rules.Load([]byte(askPack[strings.Index(askPack, "- id: chest-pain"):]))
	if err != nil {
		t.Fatal(err)
	}
	w.pack.Store(without)
	w.clock.set(start.Add(3 * time.Minute))
	read := w.spo2(t, 95, start.Add(2*time.Minute))
	if n := w.count(t, `SELECT count(*) FROM retakes WHERE symptom_report_id = $1 AND status = 'answered' AND retake_reading_id = $2`,
		rep.ID, read.Readings[0].ID); n != 1 {
		t.Errorf("the request was not answered")
	}
	if len(read.Alerts) != 0 || w.count(t, `SELECT count(*) FROM alerts`) != 0 {
		t.Errorf("answering a request of a removed rule raised alerts: %+v", read.Alerts)
	}
}
