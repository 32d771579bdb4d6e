package triage_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rpm"
)

func TestTriageQueueOrder(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	now := time.Now()
	for _, r := range []rpm.Reading{
		{Kind: rpm.BodyTemperature, Value: enginetest.Ptr(39), Unit: "Cel", ObservedAt: now.Add(-3 * time.Minute)}, // medium
		enginetest.BP(205, 100, now.Add(-2*time.Minute), ""),                                                       // critical
		{Kind: rpm.HeartRate, Value: enginetest.Ptr(150), Unit: "/min", ObservedAt: now.Add(-time.Minute)},         // high
	} {
		if _, err := w.Eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID, Readings: []rpm.Reading{r}}); err != nil {
			t.Fatal(err)
		}
	}
	items, _, err := w.Eng.ListAlerts(ctx, w.Clinician, engine.AlertFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []rpm.Urgency
	for _, a := range items {
		got = append(got, a.Urgency)
	}
	if want := []rpm.Urgency{rpm.Critical, rpm.High, rpm.Medium}; !slices.Equal(got, want) {
		t.Errorf("queue order = %v, want %v", got, want)
	}
	page1, next, err := w.Eng.ListAlerts(ctx, w.Clinician, engine.AlertFilter{Limit: 2})
	if err != nil || len(page1) != 2 || next == "" {
		t.Fatalf("page 1 = %d items, next %q, %v", len(page1), next, err)
	}
	page2, next2, err := w.Eng.ListAlerts(ctx, w.Clinician, engine.AlertFilter{Limit: 2, Cursor: next})
	if err != nil || len(page2) != 1 || next2 != "" || page2[0].Urgency != rpm.Medium {
		t.Fatalf("page 2 = %+v, next %q, %v", page2, next2, err)
	}
}
