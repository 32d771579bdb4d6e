package delivery_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/engine/enginetest/pushtest"
	"github.com/tendhealth/tend/rpm"
)

// TestOrganisationQuietHoursAreTheDefault: a clinician who set no quiet hours
// of their own takes their organisation's, in the organisation's zone (not
// the clinician's own, Tokyo, where it is afternoon) — a medium alert at 23:00
// Chicago time waits for 07:00, and the catch-up at 03:30 still holds it —
// while a clinician's own quiet hours win over the organisation's.
func TestOrganisationQuietHoursAreTheDefault(t *testing.T) {
	t.Parallel()
	chi := enginetest.Chicago(t)
	w := pushtest.NewQuiet(t, time.Date(2026, 3, 7, 23, 0, 0, 0, chi))
	ctx := context.Background()
	if _, err := w.Pool.Exec(ctx, `UPDATE users SET timezone = 'Asia/Tokyo', quiet_start = NULL, quiet_end = NULL WHERE id = $1`,
		w.Clinician.UserID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Pool.Exec(ctx, `UPDATE organisations SET timezone = 'America/Chicago', quiet_start = '22:00', quiet_end = '07:00'
		WHERE id = $1`, access.DefaultOrgID()); err != nil {
		t.Fatal(err)
	}

	fever := ingest(t, w, w.Patient.ID, enginetest.Fever())
	if fever.Urgency != rpm.Medium {
		t.Fatalf("urgency %s, want medium", fever.Urgency)
	}
	if n := jobsFor(t, w, fever.ID); n != 0 {
		t.Errorf("medium alert in the organisation's quiet hours: %d delivery jobs, want 0", n)
	}
	wantEnd := time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC) // 07:00 CDT
	if n := w.Count(t, `SELECT count(*) FROM notifications WHERE alert_id = $1 AND held_until = $2`, fever.ID, wantEnd); n != 1 {
		t.Errorf("%d notifications held until 07:00 CDT, want 1", n)
	}
	// The catch-up reads the same default: still quiet at 03:30, released at 07:00.
	w.Clock.Set(time.Date(2026, 3, 8, 3, 30, 0, 0, chi))
	if id, err := w.Eng.Shared().Delivery.CatchUp(ctx, w.Clinician.UserID); err != nil || id != uuid.Nil {
		t.Fatalf("catch-up inside the organisation's window = %s, %v; want nothing", id, err)
	}
	w.Clock.Set(time.Date(2026, 3, 8, 7, 0, 5, 0, chi))
	if id, err := w.Eng.Shared().Delivery.CatchUp(ctx, w.Clinician.UserID); err != nil || id == uuid.Nil {
		t.Fatalf("catch-up at 07:00 = %s, %v; want one", id, err)
	}

	// The clinician's own window (afternoons) wins: at 23:00 they are not quiet.
	w.Clock.Set(time.Date(2026, 3, 8, 23, 0, 0, 0, chi))
	if _, err := w.Eng.SetPreferences(ctx, w.Clinician, engine.Preferences{Timezone: "America/Chicago",
		QuietHours: &engine.QuietHours{Start: "13:00", End: "15:00"}}); err != nil {
		t.Fatal(err)
	}
	fever2 := ingest(t, w, w.Patient2, enginetest.Fever())
	if n := jobsFor(t, w, fever2.ID); n != 3 {
		t.Errorf("medium alert outside the clinician's own quiet hours: %d delivery jobs, want 3 (one per device)", n)
	}
	// And inside their own window it is held, though the organisation's is over.
	w.Clock.Set(time.Date(2026, 3, 9, 14, 0, 0, 0, chi))
	p3, err := w.Eng.CreatePatient(ctx, w.Clinician, engine.NewPatient{DisplayName: "Jo Park", Timezone: "America/Chicago",
		CareTeamID: w.Patient.CareTeamID, Programs: []string{"hypertension"}})
	if err != nil {
		t.Fatal(err)
	}
	fever3 := ingest(t, w, p3.ID, enginetest.Fever())
	if n := jobsFor(t, w, fever3.ID); n != 0 {
		t.Errorf("medium alert inside the clinician's own quiet hours: %d delivery jobs, want 0", n)
	}
	if n := w.Count(t, `SELECT count(*) FROM notifications WHERE alert_id = $1 AND held_until = $2`, fever3.ID,
		time.Date(2026, 3, 9, 20, 0, 0, 0, time.UTC)); n != 1 { // 15:00 CDT
		t.Errorf("%d notifications held until 15:00 CDT, want 1", n)
	}
}
