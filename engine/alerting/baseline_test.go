package alerting_test

import (
	"context"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rpm"
)

// A COPD patient's SpO2 rule is relative to their own baseline: with a week
// of readings at 93 %, two readings of 89 % (a fall of 4 points, yet above
// the population's 88 % floor) raise spo2-copd-below-usual.
func TestCOPDBaselineRule(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := enginetest.NewWorld(t, false)
	p, err := w.Eng.CreatePatient(ctx, w.Clinician, engine.NewPatient{DisplayName: "Jo Park", Timezone: "Europe/London",
		CareTeamID: w.Patient.CareTeamID, Programs: []string{"copd"}})
	if err != nil {
		t.Fatal(err)
	}
	dev := engine.Actor{UserID: w.Clinician.UserID, Role: engine.RoleClinician, RequestID: "test"}
	now := time.Now()
	var week []rpm.Reading
	for d := 8; d >= 1; d-- {
		week = append(week, enginetest.SpO2(93, now.Add(-time.Duration(d)*24*time.Hour)))
	}
	if _, err := w.Eng.Ingest(ctx, dev, engine.IngestRequest{PatientID: p.ID, Readings: week, Batch: true}); err != nil {
		t.Fatal(err)
	}
	var fired bool
	for _, at := range []time.Time{now.Add(-5 * time.Hour), now.Add(-time.Minute)} {
		res, err := w.Eng.Ingest(ctx, dev, engine.IngestRequest{PatientID: p.ID, Readings: []rpm.Reading{enginetest.SpO2(89, at)}})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range res.Alerts {
			fired = fired || a.RuleID == "spo2-copd-below-usual"
		}
	}
	if !fired {
		t.Fatal("spo2-copd-below-usual did not fire on a 4-point fall below the patient's baseline")
	}
}
