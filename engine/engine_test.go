package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/notify"
	"github.com/tendhealth/tend/notify/notifytest"
	"github.com/tendhealth/tend/notify/webpush"
	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/sealed"
)

// world is a migrated database with a care team, a clinician with a browser
// subscription on a fake push service, and a patient.
type world struct {
	pool      *pgxpool.Pool
	push      *notifytest.WebPush
	senders   notify.Senders
	eng       *engine.Engine
	admin     engine.Actor
	clinician engine.Actor
	patient   engine.Patient
	device    engine.Actor // the patient's cuff
	sub       notifytest.Subscription
}

func newWorld(t testing.TB, runWorkers bool) *world {
	t.Helper()
	w := &world{pool: enginetest.NewPool(t), push: notifytest.NewWebPush()}
	t.Cleanup(w.push.Close)
	pub, priv, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	w.push.RequireVAPIDKey(pub)
	wp, err := webpush.New(webpush.Config{PublicKey: pub, PrivateKey: priv, Subject: "mailto:ops@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	w.senders = notify.Senders{notify.WebPush: wp}
	w.eng = w.newEngine(t, runWorkers)
	ctx := context.Background()
	w.admin = engine.System("test")
	doc, err := w.eng.CreateUser(ctx, w.admin, engine.NewUser{Name: "Dr Ada Osei", Role: engine.RoleClinician})
	if err != nil {
		t.Fatal(err)
	}
	w.clinician = engine.Actor{UserID: doc.ID, Role: engine.RoleClinician, RequestID: "test"}
	team, err := w.eng.CreateCareTeam(ctx, w.admin, engine.NewCareTeam{Name: "Cardiology RPM", MemberIDs: []uuid.UUID{doc.ID}})
	if err != nil {
		t.Fatal(err)
	}
	w.patient, err = w.eng.CreatePatient(ctx, w.clinician, engine.NewPatient{DisplayName: "Sam Lee", Timezone: "America/Chicago",
		CareTeamID: team.ID, Programs: []string{"hypertension"}})
	if err != nil {
		t.Fatal(err)
	}
	cuff, err := w.eng.CreateUser(ctx, w.admin, engine.NewUser{Name: "cuff-77", Role: engine.RoleDevice, PatientID: w.patient.ID})
	if err != nil {
		t.Fatal(err)
	}
	w.device = engine.Actor{UserID: cuff.ID, Role: engine.RoleDevice, PatientID: w.patient.ID, RequestID: "test"}
	w.sub = w.push.NewSubscription()
	if _, _, err := w.eng.RegisterDevice(ctx, w.clinician, engine.NewDevice{Platform: notify.WebPush,
		Endpoint: w.sub.Endpoint, P256dh: w.sub.P256dh, Auth: w.sub.Auth}); err != nil {
		t.Fatal(err)
	}
	return w
}

// newEngine builds another engine (another process, in effect) on w's database.
func (w *world) newEngine(t testing.TB, runWorkers bool) *engine.Engine {
	t.Helper()
	return w.newEngineWith(t, engine.Config{RunWorkers: runWorkers})
}

// newEngineWith is newEngine with more settings.
func (w *world) newEngineWith(t testing.TB, cfg engine.Config) *engine.Engine {
	t.Helper()
	cfg.Pool, cfg.Senders, cfg.WebPushAllowedHosts, cfg.FetchCooldown = w.pool, w.senders, []string{"127.0.0.1"}, 5*time.Millisecond
	return startEngine(t, cfg)
}

// startEngine builds and starts an engine, stopped when t ends.
func startEngine(t testing.TB, cfg engine.Config) *engine.Engine { return enginetest.Start(t, cfg) }

func (w *world) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := w.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// testKeys is a keyring of one new key.
func testKeys(t testing.TB) *sealed.Keyring { return enginetest.Keys(t) }

func ptr(v float64) *float64 { return &v }

func bp(sys, dia float64, at time.Time, source string) rpm.Reading {
	return rpm.Reading{Kind: rpm.BloodPressure, Systolic: ptr(sys), Diastolic: ptr(dia), Unit: "mm[Hg]", ObservedAt: at, SourceID: source}
}

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestCriticalReadingRaisesAlertAndDeliversWebPush(t *testing.T) {
	t.Parallel()
	w := newWorld(t, true)
	ctx := context.Background()
	res, err := w.eng.Ingest(ctx, w.device, engine.IngestRequest{PatientID: w.patient.ID,
		Readings: []rpm.Reading{bp(204, 131, time.Now().Add(-time.Minute), "cuff-77:1")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Readings) != 1 || res.Readings[0].Status != "created" {
		t.Fatalf("readings = %+v", res.Readings)
	}
	if len(res.Alerts) != 1 || res.Alerts[0].RuleID != "bp-crisis" || res.Alerts[0].Urgency != rpm.Critical || res.Alerts[0].Status != "opened" {
		t.Fatalf("alerts = %+v", res.Alerts)
	}
	got, err := w.push.Wait(waitCtx(t), 1)
	if err != nil {
		t.Fatalf("no push received: %v (rejected: %+v)", err, w.push.Rejected())
	}
	p := got[0]
	if p.Endpoint != w.sub.Endpoint {
		t.Errorf("pushed to %s, want the clinician's subscription", p.Endpoint)
	}
	if u := p.Header.Get("Urgency"); u != "high" {
		t.Errorf("Urgency = %q, want high", u)
	}
	if topic := p.Header.Get("Topic"); len(topic) != 22 {
		t.Errorf("Topic = %q, want the alert id as 22 base64url characters", topic)
	}
	if ttl := p.Header.Get("TTL"); ttl == "" || ttl == "0" {
		t.Errorf("TTL = %q, want a positive TTL", ttl)
	}
	var payload struct {
		Type string            `json:"type"`
		Data map[string]string `json:"data"`
	}
	if err := json.Unmarshal(p.Payload, &payload); err != nil {
		t.Fatalf("payload %s: %v", p.Payload, err)
	}
	if payload.Type != "alert" || payload.Data["alert_id"] != res.Alerts[0].ID.String() {
		t.Errorf("payload = %s", p.Payload)
	}
	// Whole words and numbers only: an id's hex may hold "131".
	scanPHI(t, "push payload", string(p.Payload), []string{"204", "131", "Sam", "Lee", "mm[Hg]", "blood", "pressure", w.patient.ID.String()})
	if len(w.push.Rejected()) > 0 {
		t.Errorf("fake push service rejected requests: %+v", w.push.Rejected())
	}
	waitFor(t, func() bool {
		return w.count(t, `SELECT count(*) FROM deliveries WHERE outcome = 'sent' AND provider_status = 201`) == 1
	})
}

func TestInvalidReadingInBatchStoresNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, false)
	now := time.Now()
	_, err := w.eng.Ingest(context.Background(), w.device, engine.IngestRequest{PatientID: w.patient.ID, Batch: true, Readings: []rpm.Reading{
		bp(204, 131, now, ""),
		{Kind: rpm.SpO2, Value: ptr(140), Unit: "%", ObservedAt: now},
		{Kind: rpm.HeartRate, Value: ptr(80), Unit: "furlongs", ObservedAt: now.Add(time.Hour)},
	}})
	wantFields(t, err, "readings[1].value", "readings[2].unit", "readings[2].observed_at")
	if n := w.count(t, `SELECT count(*) FROM readings`); n != 0 {
		t.Errorf("%d readings stored, want 0", n)
	}
	if n := w.count(t, `SELECT count(*) FROM alerts`); n != 0 {
		t.Errorf("%d alerts stored, want 0", n)
	}
}

func TestSourceIDDeduplicates(t *testing.T) {
	t.Parallel()
	w := newWorld(t, false)
	ctx := context.Background()
	r := bp(205, 100, time.Now().Add(-time.Minute), "cuff-77:42")
	first, err := w.eng.Ingest(ctx, w.device, engine.IngestRequest{PatientID: w.patient.ID, Readings: []rpm.Reading{r}})
	if err != nil {
		t.Fatal(err)
	}
	second, err := w.eng.Ingest(ctx, w.device, engine.IngestRequest{PatientID: w.patient.ID, Readings: []rpm.Reading{r}})
	if err != nil {
		t.Fatal(err)
	}
	if second.Readings[0].Status != "duplicate" || second.Readings[0].ID != first.Readings[0].ID {
		t.Errorf("second ingest = %+v, want duplicate of %s", second.Readings[0], first.Readings[0].ID)
	}
	if len(second.Alerts) != 0 {
		t.Errorf("duplicate raised alerts: %+v", second.Alerts)
	}
	if n := w.count(t, `SELECT count(*) FROM readings`); n != 1 {
		t.Errorf("%d readings, want 1", n)
	}
	if n := w.count(t, `SELECT occurrences FROM alerts`); n != 1 {
		t.Errorf("occurrences = %d, want 1", n)
	}
	if n := w.count(t, `SELECT count(*) FROM river_job WHERE kind = 'notify.deliver'`); n != 1 {
		t.Errorf("%d delivery jobs, want 1", n)
	}
}

func TestOpenAlertIsUpdatedNotDuplicated(t *testing.T) {
	t.Parallel()
	w := newWorld(t, false)
	ctx := context.Background()
	now := time.Now()
	a, err := w.eng.Ingest(ctx, w.device, engine.IngestRequest{PatientID: w.patient.ID, Readings: []rpm.Reading{bp(205, 100, now.Add(-2*time.Minute), "")}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := w.eng.Ingest(ctx, w.device, engine.IngestRequest{PatientID: w.patient.ID, Readings: []rpm.Reading{bp(188, 100, now.Add(-time.Minute), "")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Alerts) != 1 || b.Alerts[0].ID != a.Alerts[0].ID || b.Alerts[0].Status != "updated" {
		t.Fatalf("second alerts = %+v, want update of %s", b.Alerts, a.Alerts[0].ID)
	}
	d, err := w.eng.GetAlert(ctx, w.clinician, a.Alerts[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Occurrences != 2 || len(d.Readings) != 2 || d.LastReadingID == nil || *d.LastReadingID != b.Readings[0].ID {
		t.Errorf("alert = %+v", d)
	}
	// Within the repeat interval the update does not page again.
	if n := w.count(t, `SELECT count(*) FROM river_job WHERE kind = 'notify.deliver'`); n != 1 {
		t.Errorf("%d delivery jobs, want 1", n)
	}
}

func TestMostUrgentFindingRaisesTheAlertOthersAreRecorded(t *testing.T) {
	t.Parallel()
	w := newWorld(t, false)
	res, err := w.eng.Ingest(context.Background(), w.device, engine.IngestRequest{PatientID: w.patient.ID, Readings: []rpm.Reading{
		{Kind: rpm.BloodGlucose, Value: ptr(40), Unit: "mg/dL", ObservedAt: time.Now()},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Alerts) != 1 || res.Alerts[0].RuleID != "glucose-critical-low" {
		t.Fatalf("alerts = %+v, want one glucose-critical-low", res.Alerts)
	}
	if n := w.count(t, `SELECT count(*) FROM alert_findings WHERE alert_id = $1 AND rule_id = 'glucose-low'`, res.Alerts[0].ID); n != 1 {
		t.Errorf("glucose-low recorded %d times on the alert, want 1", n)
	}
}

func TestUnitsAreConvertedBeforeRules(t *testing.T) {
	t.Parallel()
	w := newWorld(t, false)
	// 2.5 mmol/L is 45 mg/dL: critically low.
	res, err := w.eng.Ingest(context.Background(), w.device, engine.IngestRequest{PatientID: w.patient.ID, Readings: []rpm.Reading{
		{Kind: rpm.BloodGlucose, Value: ptr(2.5), Unit: "mmol/L", ObservedAt: time.Now()},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Alerts) != 1 || res.Alerts[0].RuleID != "glucose-critical-low" {
		t.Fatalf("alerts = %+v", res.Alerts)
	}
	if n := w.count(t, `SELECT count(*) FROM readings WHERE unit = 'mg/dL' AND value BETWEEN 45.0 AND 45.1`); n != 1 {
		t.Errorf("stored reading not in canonical units")
	}
}

// TestFailureBeforeCommitLeavesNothing injects an error at commit time, after
// the reading, alert, jobs and audit entry were written: nothing may remain.
func TestFailureBeforeCommitLeavesNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, false)
	ctx := context.Background()
	before := w.count(t, `SELECT count(*) FROM audit_entries`)
	if _, err := w.pool.Exec(ctx, `
		CREATE FUNCTION fail_commit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'injected failure before commit'; END $$;
		CREATE CONSTRAINT TRIGGER fail_commit AFTER INSERT ON alerts DEFERRABLE INITIALLY DEFERRED
		FOR EACH ROW EXECUTE FUNCTION fail_commit();`); err != nil {
		t.Fatal(err)
	}
	_, err := w.eng.Ingest(ctx, w.device, engine.IngestRequest{PatientID: w.patient.ID, Readings: []rpm.Reading{bp(200, 125, time.Now(), "x:1")}})
	if err == nil || !strings.Contains(err.Error(), "injected failure") {
		t.Fatalf("err = %v, want the injected failure", err)
	}
	for table, sql := range map[string]string{
		"readings":        `SELECT count(*) FROM readings`,
		"reading_sources": `SELECT count(*) FROM reading_sources`,
		"alerts":          `SELECT count(*) FROM alerts`,
		"alert_findings":  `SELECT count(*) FROM alert_findings`,
		"notifications":   `SELECT count(*) FROM notifications`,
		"river_job":       `SELECT count(*) FROM river_job`,
	} {
		if n := w.count(t, sql); n != 0 {
			t.Errorf("%s has %d rows after the failed ingest, want 0", table, n)
		}
	}
	if n := w.count(t, `SELECT count(*) FROM audit_entries`); n != before {
		t.Errorf("audit entries %d → %d, want unchanged", before, n)
	}
	// The client's retry (same source_id) then succeeds once.
	if _, err := w.pool.Exec(ctx, `DROP TRIGGER fail_commit ON alerts`); err != nil {
		t.Fatal(err)
	}
	res, err := w.eng.Ingest(ctx, w.device, engine.IngestRequest{PatientID: w.patient.ID, Readings: []rpm.Reading{bp(200, 125, time.Now(), "x:1")}})
	if err != nil || res.Readings[0].Status != "created" || len(res.Alerts) != 1 {
		t.Fatalf("retry = %+v, %v", res, err)
	}
}

// TestCommittedIngestIsDeliveredAfterRestart: the process that accepted the
// reading dies before any worker ran; a new process delivers the push.
func TestCommittedIngestIsDeliveredAfterRestart(t *testing.T) {
	t.Parallel()
	w := newWorld(t, false) // no workers: the job is only inserted
	res, err := w.eng.Ingest(context.Background(), w.device, engine.IngestRequest{PatientID: w.patient.ID,
		Readings: []rpm.Reading{{Kind: rpm.SpO2, Value: ptr(84), Unit: "%", ObservedAt: time.Now()}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(w.push.Received()) != 0 {
		t.Fatal("delivered without workers")
	}
	w.newEngine(t, true) // "restart"
	got, err := w.push.Wait(waitCtx(t), 1)
	if err != nil {
		t.Fatalf("push not delivered after restart: %v", err)
	}
	if !strings.Contains(string(got[0].Payload), res.Alerts[0].ID.String()) {
		t.Errorf("payload %s does not name alert %s", got[0].Payload, res.Alerts[0].ID)
	}
}

func TestGoneSubscriptionDisablesDeviceAndFlagsUndelivered(t *testing.T) {
	t.Parallel()
	w := newWorld(t, true)
	w.push.Script(w.sub.Endpoint, notifytest.Response{Status: 410})
	res, err := w.eng.Ingest(context.Background(), w.device, engine.IngestRequest{PatientID: w.patient.ID,
		Readings: []rpm.Reading{bp(201, 90, time.Now(), "")}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		return w.count(t, `SELECT count(*) FROM devices WHERE NOT enabled AND disabled_reason IS NOT NULL`) == 1
	})
	waitFor(t, func() bool {
		return w.count(t, `SELECT count(*) FROM alerts WHERE id = $1 AND undelivered`, res.Alerts[0].ID) == 1
	})
	if n := w.count(t, `SELECT count(*) FROM deliveries WHERE outcome = 'unregistered' AND provider_status = 410`); n != 1 {
		t.Errorf("%d unregistered deliveries recorded, want 1", n)
	}
}

func TestScopeHidesOtherTeamsPatients(t *testing.T) {
	t.Parallel()
	w := newWorld(t, false)
	ctx := context.Background()
	other, err := w.eng.CreateUser(ctx, w.admin, engine.NewUser{Name: "Dr Other", Role: engine.RoleClinician})
	if err != nil {
		t.Fatal(err)
	}
	stranger := engine.Actor{UserID: other.ID, Role: engine.RoleClinician}
	if _, err := w.eng.GetPatient(ctx, stranger, w.patient.ID); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("GetPatient by another team's clinician: err = %v, want ErrNotFound", err)
	}
	if _, err := w.eng.Ingest(ctx, stranger, engine.IngestRequest{PatientID: w.patient.ID, Readings: []rpm.Reading{bp(120, 80, time.Now(), "")}}); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Ingest by another team's clinician: err = %v, want ErrNotFound", err)
	}
	otherDevice := engine.Actor{UserID: uuid.New(), Role: engine.RoleDevice, PatientID: uuid.New()}
	if _, err := w.eng.Ingest(ctx, otherDevice, engine.IngestRequest{PatientID: w.patient.ID, Readings: []rpm.Reading{bp(120, 80, time.Now(), "")}}); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Ingest by another patient's device: err = %v, want ErrNotFound", err)
	}
	if n := w.count(t, `SELECT count(*) FROM readings`); n != 0 {
		t.Errorf("%d readings stored by out-of-scope actors", n)
	}
	alerts, _, err := w.eng.ListAlerts(ctx, stranger, engine.AlertFilter{})
	if err != nil || len(alerts) != 0 {
		t.Errorf("stranger's triage queue = %v, %v", alerts, err)
	}
}

func TestEveryPHIAccessIsAudited(t *testing.T) {
	t.Parallel()
	w := newWorld(t, false)
	ctx := context.Background()
	res, err := w.eng.Ingest(ctx, w.device, engine.IngestRequest{PatientID: w.patient.ID, Readings: []rpm.Reading{bp(202, 100, time.Now(), "")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.eng.GetPatient(ctx, w.clinician, w.patient.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.eng.ListReadings(ctx, w.clinician, engine.ReadingFilter{PatientID: w.patient.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.eng.GetAlert(ctx, w.clinician, res.Alerts[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.eng.AckAlert(ctx, w.clinician, res.Alerts[0].ID, ""); err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"patient.create", "reading.create", "alert.create", "patient.read", "reading.list", "alert.read", "alert.ack"} {
		if n := w.count(t, `SELECT count(*) FROM audit_entries WHERE action = $1 AND patient_id = $2`, action, w.patient.ID); n == 0 {
			t.Errorf("no audit entry for %s", action)
		}
	}
	if n := w.count(t, `SELECT count(*) FROM audit_entries WHERE action = 'reading.create' AND actor_id = $1 AND request_id = 'test'`, w.device.UserID); n != 1 {
		t.Errorf("reading.create audit entries by the device = %d, want 1", n)
	}
}

func TestTriageQueueOrder(t *testing.T) {
	t.Parallel()
	w := newWorld(t, false)
	ctx := context.Background()
	now := time.Now()
	for _, r := range []rpm.Reading{
		{Kind: rpm.BodyTemperature, Value: ptr(39), Unit: "Cel", ObservedAt: now.Add(-3 * time.Minute)}, // medium
		bp(205, 100, now.Add(-2*time.Minute), ""),                                                       // critical
		{Kind: rpm.HeartRate, Value: ptr(150), Unit: "/min", ObservedAt: now.Add(-time.Minute)},         // high
	} {
		if _, err := w.eng.Ingest(ctx, w.device, engine.IngestRequest{PatientID: w.patient.ID, Readings: []rpm.Reading{r}}); err != nil {
			t.Fatal(err)
		}
	}
	items, _, err := w.eng.ListAlerts(ctx, w.clinician, engine.AlertFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []rpm.Urgency
	for _, a := range items {
		got = append(got, a.Urgency)
	}
	if want := []rpm.Urgency{rpm.Critical, rpm.High, rpm.Medium}; !equal(got, want) {
		t.Errorf("queue order = %v, want %v", got, want)
	}
	page1, next, err := w.eng.ListAlerts(ctx, w.clinician, engine.AlertFilter{Limit: 2})
	if err != nil || len(page1) != 2 || next == "" {
		t.Fatalf("page 1 = %d items, next %q, %v", len(page1), next, err)
	}
	page2, next2, err := w.eng.ListAlerts(ctx, w.clinician, engine.AlertFilter{Limit: 2, Cursor: next})
	if err != nil || len(page2) != 1 || next2 != "" || page2[0].Urgency != rpm.Medium {
		t.Fatalf("page 2 = %+v, next %q, %v", page2, next2, err)
	}
}

// wantFields fails t unless err is a *rpm.ValidationError naming every field
// in want, and returns the fields it names.
func wantFields(t testing.TB, err error, want ...string) []rpm.FieldError {
	t.Helper()
	var v *rpm.ValidationError
	if !errors.As(err, &v) {
		t.Fatalf("err = %v, want a validation error", err)
	}
	named := map[string]bool{}
	for _, f := range v.Fields {
		named[f.Field] = true
	}
	for _, w := range want {
		if !named[w] {
			t.Errorf("no error for %s in %+v", w, v.Fields)
		}
	}
	return v.Fields
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// waitFor polls cond until it holds or 15 s pass.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
