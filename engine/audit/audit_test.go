package audit_test

import (
	"context"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rpm"
)

func TestEveryPHIAccessIsAudited(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	res, err := w.Eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID, Readings: []rpm.Reading{enginetest.BP(202, 100, time.Now(), "")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Eng.GetPatient(ctx, w.Clinician, w.Patient.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.Eng.ListReadings(ctx, w.Clinician, engine.ReadingFilter{PatientID: w.Patient.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Eng.GetAlert(ctx, w.Clinician, res.Alerts[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Eng.AckAlert(ctx, w.Clinician, res.Alerts[0].ID, ""); err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"patient.create", "reading.create", "alert.create", "patient.read", "reading.list", "alert.read", "alert.ack"} {
		if n := w.Count(t, `SELECT count(*) FROM audit_entries WHERE action = $1 AND patient_id = $2`, action, w.Patient.ID); n == 0 {
			t.Errorf("no audit entry for %s", action)
		}
	}
	if n := w.Count(t, `SELECT count(*) FROM audit_entries WHERE action = 'reading.create' AND actor_id = $1 AND request_id = 'test'`, w.Device.UserID); n != 1 {
		t.Errorf("reading.create audit entries by the device = %d, want 1", n)
	}
}
