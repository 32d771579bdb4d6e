package care_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rpm"
)

func TestScopeHidesOtherTeamsPatients(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	other, err := w.Eng.CreateUser(ctx, w.Admin, engine.NewUser{Name: "Dr Other", Role: engine.RoleClinician})
	if err != nil {
		t.Fatal(err)
	}
	stranger := engine.Actor{UserID: other.ID, Role: engine.RoleClinician}
	if _, err := w.Eng.GetPatient(ctx, stranger, w.Patient.ID); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("GetPatient by another team's clinician: err = %v, want ErrNotFound", err)
	}
	if _, err := w.Eng.Ingest(ctx, stranger, engine.IngestRequest{PatientID: w.Patient.ID, Readings: []rpm.Reading{enginetest.BP(120, 80, time.Now(), "")}}); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Ingest by another team's clinician: err = %v, want ErrNotFound", err)
	}
	otherDevice := engine.Actor{UserID: uuid.New(), Role: engine.RoleDevice, PatientID: uuid.New()}
	if _, err := w.Eng.Ingest(ctx, otherDevice, engine.IngestRequest{PatientID: w.Patient.ID, Readings: []rpm.Reading{enginetest.BP(120, 80, time.Now(), "")}}); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Ingest by another patient's device: err = %v, want ErrNotFound", err)
	}
	if n := w.Count(t, `SELECT count(*) FROM readings`); n != 0 {
		t.Errorf("%d readings stored by out-of-scope actors", n)
	}
	alerts, _, err := w.Eng.ListAlerts(ctx, stranger, engine.AlertFilter{})
	if err != nil || len(alerts) != 0 {
		t.Errorf("stranger's triage queue = %v, %v", alerts, err)
	}
}
