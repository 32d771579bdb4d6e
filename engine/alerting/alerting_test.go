package alerting_test

import (
	"context"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rpm"
)

func TestOpenAlertIsUpdatedNotDuplicated(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	now := time.Now()
	a, err := w.Eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID, Readings: []rpm.Reading{enginetest.BP(205, 100, now.Add(-2*time.Minute), "")}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := w.Eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID, Readings: []rpm.Reading{enginetest.BP(188, 100, now.Add(-time.Minute), "")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Alerts) != 1 || b.Alerts[0].ID != a.Alerts[0].ID || b.Alerts[0].Status != "updated" {
		t.Fatalf("second alerts = %+v, want update of %s", b.Alerts, a.Alerts[0].ID)
	}
	d, err := w.Eng.GetAlert(ctx, w.Clinician, a.Alerts[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Occurrences != 2 || len(d.Readings) != 2 || d.LastReadingID == nil || *d.LastReadingID != b.Readings[0].ID {
		t.Errorf("alert = %+v", d)
	}
	// Within the repeat interval the update does not page again.
	if n := w.Count(t, `SELECT count(*) FROM river_job WHERE kind = 'notify.deliver'`); n != 1 {
		t.Errorf("%d delivery jobs, want 1", n)
	}
}

func TestMostUrgentFindingRaisesTheAlertOthersAreRecorded(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	res, err := w.Eng.Ingest(context.Background(), w.Device, engine.IngestRequest{PatientID: w.Patient.ID, Readings: []rpm.Reading{
		{Kind: rpm.BloodGlucose, Value: enginetest.Ptr(40), Unit: "mg/dL", ObservedAt: time.Now()},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Alerts) != 1 || res.Alerts[0].RuleID != "glucose-critical-low" {
		t.Fatalf("alerts = %+v, want one glucose-critical-low", res.Alerts)
	}
	if n := w.Count(t, `SELECT count(*) FROM alert_findings WHERE alert_id = $1 AND rule_id = 'glucose-low'`, res.Alerts[0].ID); n != 1 {
		t.Errorf("glucose-low recorded %d times on the alert, want 1", n)
	}
}
