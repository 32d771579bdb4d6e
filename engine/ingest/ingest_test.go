package ingest_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rpm"
)

func TestCriticalReadingRaisesAlertAndDeliversWebPush(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, true)
	ctx := context.Background()
	res, err := w.Eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID,
		Readings: []rpm.Reading{enginetest.BP(204, 131, time.Now().Add(-time.Minute), "cuff-77:1")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Readings) != 1 || res.Readings[0].Status != "created" {
		t.Fatalf("readings = %+v", res.Readings)
	}
	if len(res.Alerts) != 1 || res.Alerts[0].RuleID != "bp-crisis" || res.Alerts[0].Urgency != rpm.Critical || res.Alerts[0].Status != "opened" {
		t.Fatalf("alerts = %+v", res.Alerts)
	}
	got, err := w.Push.Wait(enginetest.WaitCtx(t), 1)
	if err != nil {
		t.Fatalf("no push received: %v (rejected: %+v)", err, w.Push.Rejected())
	}
	p := got[0]
	if p.Endpoint != w.Sub.Endpoint {
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
	enginetest.ScanPHI(t, "push payload", string(p.Payload), []string{"204", "131", "Sam", "Lee", "mm[Hg]", "blood", "pressure", w.Patient.ID.String()})
	if len(w.Push.Rejected()) > 0 {
		t.Errorf("fake push service rejected requests: %+v", w.Push.Rejected())
	}
	enginetest.WaitFor(t, func() bool {
		return w.Count(t, `SELECT count(*) FROM deliveries WHERE outcome = 'sent' AND provider_status = 201`) == 1
	})
}

func TestInvalidReadingInBatchStoresNothing(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	now := time.Now()
	_, err := w.Eng.Ingest(context.Background(), w.Device, engine.IngestRequest{PatientID: w.Patient.ID, Batch: true, Readings: []rpm.Reading{
		enginetest.BP(204, 131, now, ""),
		{Kind: rpm.SpO2, Value: enginetest.Ptr(140), Unit: "%", ObservedAt: now},
		{Kind: rpm.HeartRate, Value: enginetest.Ptr(80), Unit: "furlongs", ObservedAt: now.Add(time.Hour)},
	}})
	enginetest.WantFields(t, err, "readings[1].value", "readings[2].unit", "readings[2].observed_at")
	if n := w.Count(t, `SELECT count(*) FROM readings`); n != 0 {
		t.Errorf("%d readings stored, want 0", n)
	}
	if n := w.Count(t, `SELECT count(*) FROM alerts`); n != 0 {
		t.Errorf("%d alerts stored, want 0", n)
	}
}

func TestSourceIDDeduplicates(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	r := enginetest.BP(205, 100, time.Now().Add(-time.Minute), "cuff-77:42")
	first, err := w.Eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID, Readings: []rpm.Reading{r}})
	if err != nil {
		t.Fatal(err)
	}
	second, err := w.Eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID, Readings: []rpm.Reading{r}})
	if err != nil {
		t.Fatal(err)
	}
	if second.Readings[0].Status != "duplicate" || second.Readings[0].ID != first.Readings[0].ID {
		t.Errorf("second ingest = %+v, want duplicate of %s", second.Readings[0], first.Readings[0].ID)
	}
	if len(second.Alerts) != 0 {
		t.Errorf("duplicate raised alerts: %+v", second.Alerts)
	}
	if n := w.Count(t, `SELECT count(*) FROM readings`); n != 1 {
		t.Errorf("%d readings, want 1", n)
	}
	if n := w.Count(t, `SELECT occurrences FROM alerts`); n != 1 {
		t.Errorf("occurrences = %d, want 1", n)
	}
	if n := w.Count(t, `SELECT count(*) FROM river_job WHERE kind = 'notify.deliver'`); n != 1 {
		t.Errorf("%d delivery jobs, want 1", n)
	}
}

func TestUnitsAreConvertedBeforeRules(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	// 2.5 mmol/L is 45 mg/dL: critically low.
	res, err := w.Eng.Ingest(context.Background(), w.Device, engine.IngestRequest{PatientID: w.Patient.ID, Readings: []rpm.Reading{
		{Kind: rpm.BloodGlucose, Value: enginetest.Ptr(2.5), Unit: "mmol/L", ObservedAt: time.Now()},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Alerts) != 1 || res.Alerts[0].RuleID != "glucose-critical-low" {
		t.Fatalf("alerts = %+v", res.Alerts)
	}
	if n := w.Count(t, `SELECT count(*) FROM readings WHERE unit = 'mg/dL' AND value BETWEEN 45.0 AND 45.1`); n != 1 {
		t.Errorf("stored reading not in canonical units")
	}
}

// TestFailureBeforeCommitLeavesNothing injects an error at commit time, after
// the reading, alert, jobs and audit entry were written: nothing may remain.
func TestFailureBeforeCommitLeavesNothing(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	before := w.Count(t, `SELECT count(*) FROM audit_entries`)
	if _, err := w.Pool.Exec(ctx, `
		CREATE FUNCTION fail_commit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'injected failure before commit'; END $$;
		CREATE CONSTRAINT TRIGGER fail_commit AFTER INSERT ON alerts DEFERRABLE INITIALLY DEFERRED
		FOR EACH ROW EXECUTE FUNCTION fail_commit();`); err != nil {
		t.Fatal(err)
	}
	_, err := w.Eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID, Readings: []rpm.Reading{enginetest.BP(200, 125, time.Now(), "x:1")}})
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
		if n := w.Count(t, sql); n != 0 {
			t.Errorf("%s has %d rows after the failed ingest, want 0", table, n)
		}
	}
	if n := w.Count(t, `SELECT count(*) FROM audit_entries`); n != before {
		t.Errorf("audit entries %d → %d, want unchanged", before, n)
	}
	// The client's retry (same source_id) then succeeds once.
	if _, err := w.Pool.Exec(ctx, `DROP TRIGGER fail_commit ON alerts`); err != nil {
		t.Fatal(err)
	}
	res, err := w.Eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID, Readings: []rpm.Reading{enginetest.BP(200, 125, time.Now(), "x:1")}})
	if err != nil || res.Readings[0].Status != "created" || len(res.Alerts) != 1 {
		t.Fatalf("retry = %+v, %v", res, err)
	}
}

// TestCommittedIngestIsDeliveredAfterRestart: the process that accepted the
// reading dies before any worker ran; a new process delivers the push.
func TestCommittedIngestIsDeliveredAfterRestart(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false) // no workers: the job is only inserted
	res, err := w.Eng.Ingest(context.Background(), w.Device, engine.IngestRequest{PatientID: w.Patient.ID,
		Readings: []rpm.Reading{{Kind: rpm.SpO2, Value: enginetest.Ptr(84), Unit: "%", ObservedAt: time.Now()}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Push.Received()) != 0 {
		t.Fatal("delivered without workers")
	}
	w.NewEngine(t, true) // "restart"
	got, err := w.Push.Wait(enginetest.WaitCtx(t), 1)
	if err != nil {
		t.Fatalf("push not delivered after restart: %v", err)
	}
	if !strings.Contains(string(got[0].Payload), res.Alerts[0].ID.String()) {
		t.Errorf("payload %s does not name alert %s", got[0].Payload, res.Alerts[0].ID)
	}
}
