package alerting_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/notify"
	"github.com/tendhealth/tend/rpm"
)

// theRetake returns the id of the one retake in status.
func theRetake(t *testing.T, w *enginetest.World, status string) uuid.UUID {
	t.Helper()
	ids := enginetest.Column[uuid.UUID](t, w, `SELECT id FROM retakes WHERE status = $1`, status)
	if len(ids) != 1 {
		t.Fatalf("%d retakes %s, want 1", len(ids), status)
	}
	return ids[0]
}

// retakeWorld is a world whose patient has a user with a phone, to receive
// "please measure again".
func retakeWorld(t *testing.T) *enginetest.World {
	t.Helper()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	u, err := w.Eng.CreateUser(ctx, w.Admin, engine.NewUser{Name: "Sam", Role: engine.RolePatient, PatientID: w.Patient.ID})
	if err != nil {
		t.Fatal(err)
	}
	sub := w.Push.NewSubscription()
	if _, _, err := w.Eng.RegisterDevice(ctx, engine.Actor{UserID: u.ID, Role: engine.RolePatient, PatientID: w.Patient.ID},
		engine.NewDevice{Platform: notify.WebPush, Endpoint: sub.Endpoint, P256dh: sub.P256dh, Auth: sub.Auth}); err != nil {
		t.Fatal(err)
	}
	return w
}

func ingestBP(t *testing.T, w *enginetest.World, sys, dia float64, at time.Time) engine.IngestResult {
	t.Helper()
	res, err := w.Eng.Ingest(context.Background(), w.Device, engine.IngestRequest{PatientID: w.Patient.ID, Readings: []rpm.Reading{enginetest.BP(sys, dia, at, "")}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// A crisis-range reading below the hard limit asks the patient to measure
// again — a generic push to the patient, nothing to the team — and waits; a
// retake that confirms it pages the team with one alert holding both readings.
func TestRetakeConfirmedPagesWithBothReadings(t *testing.T) {
	t.Parallel()
	w := retakeWorld(t)
	now := time.Now()
	first := ingestBP(t, w, 185, 100, now.Add(-3*time.Minute))
	if len(first.Alerts) != 0 {
		t.Fatalf("the first reading paged at once: %+v", first.Alerts)
	}
	if len(first.Retakes) != 1 || first.Retakes[0].RuleID != "bp-crisis" || first.Retakes[0].ReadingID != first.Readings[0].ID ||
		!first.Retakes[0].RetakeBy.After(now.Add(5*time.Minute)) {
		t.Errorf("retakes = %+v, want bp-crisis for the first reading, due in about 10 minutes", first.Retakes)
	}
	if n := w.Count(t, `SELECT count(*) FROM retakes WHERE status = 'pending' AND rule_id = 'bp-crisis'`); n != 1 {
		t.Fatalf("%d pending retakes, want 1", n)
	}
	if n := w.Count(t, `SELECT count(*) FROM notifications WHERE type = 'retake' AND device_count = 1`); n != 1 {
		t.Errorf("%d retake notifications to the patient, want 1", n)
	}
	if n := w.Count(t, `SELECT count(*) FROM notifications WHERE type = 'alert'`); n != 0 {
		t.Errorf("the team got %d notifications before the retake", n)
	}
	if n := w.Count(t, `SELECT count(*) FROM river_job WHERE kind = 'alerting.retake_deadline' AND scheduled_at > now() + interval '5 minutes'`); n != 1 {
		t.Errorf("%d deadline jobs at the retake's deadline, want 1", n)
	}
	second := ingestBP(t, w, 187, 102, now.Add(-time.Minute))
	if len(second.Alerts) != 1 || second.Alerts[0].RuleID != "bp-crisis" || second.Alerts[0].Status != "opened" {
		t.Fatalf("retake alerts = %+v, want bp-crisis opened", second.Alerts)
	}
	d, err := w.Eng.GetAlert(context.Background(), w.Clinician, second.Alerts[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Readings) != 2 || d.Readings[0].ID != first.Readings[0].ID || d.Readings[1].ID != second.Readings[0].ID {
		t.Errorf("alert readings = %+v, want the first reading and its retake", d.Readings)
	}
	if n := w.Count(t, `SELECT count(*) FROM retakes WHERE status = 'confirmed' AND retake_reading_id = $1`, second.Readings[0].ID); n != 1 {
		t.Error("the retake is not recorded as confirmed by the second reading")
	}
	if n := w.Count(t, `SELECT count(*) FROM notifications WHERE type = 'alert' AND alert_id = $1`, second.Alerts[0].ID); n != 1 {
		t.Errorf("%d team notifications, want 1", n)
	}
}

// A retake in the normal range pages no one, now or at the deadline.
func TestRetakeNotConfirmedPagesNobody(t *testing.T) {
	t.Parallel()
	w := retakeWorld(t)
	now := time.Now()
	ingestBP(t, w, 185, 100, now.Add(-3*time.Minute))
	if res := ingestBP(t, w, 132, 84, now.Add(-time.Minute)); len(res.Alerts) != 0 {
		t.Fatalf("a normal retake raised %+v", res.Alerts)
	}
	id := theRetake(t, w, "not_confirmed")
	if err := w.Eng.Shared().Alerting.RetakeDeadline(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if n := w.Count(t, `SELECT count(*) FROM alerts`); n != 0 {
		t.Errorf("%d alerts after a refuted retake and its deadline", n)
	}
}

// With no retake by the deadline, the deadline job pages: nothing is lost.
// It pages once, however often it runs.
func TestRetakeTimeoutPages(t *testing.T) {
	t.Parallel()
	w := retakeWorld(t)
	ingestBP(t, w, 185, 100, time.Now().Add(-time.Minute))
	id := theRetake(t, w, "pending")
	for range 2 {
		if err := w.Eng.Shared().Alerting.RetakeDeadline(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	if n := w.Count(t, `SELECT count(*) FROM alerts WHERE rule_id = 'bp-crisis' AND urgency = 'critical'`); n != 1 {
		t.Fatalf("%d bp-crisis alerts after the deadline, want 1", n)
	}
	if n := w.Count(t, `SELECT count(*) FROM notifications WHERE type = 'alert'`); n != 1 {
		t.Errorf("%d team notifications, want 1", n)
	}
	if n := w.Count(t, `SELECT count(*) FROM retakes WHERE status = 'timed_out'`); n != 1 {
		t.Error("the retake is not recorded as timed out")
	}
}

// A reading past the hard limit pages at once, without a retake.
func TestHardLimitPagesAtOnce(t *testing.T) {
	t.Parallel()
	w := retakeWorld(t)
	if res := ingestBP(t, w, 245, 100, time.Now().Add(-time.Minute)); len(res.Alerts) != 1 {
		t.Fatalf("alerts = %+v, want bp-crisis at once", res.Alerts)
	}
	if n := w.Count(t, `SELECT count(*) FROM retakes`); n != 0 {
		t.Errorf("%d retakes for a reading past the hard limit", n)
	}
}

// Two processes (two engines on one database) running the same retake
// deadline at once, four times each, page the team once: one alert, one
// notification, one timed-out retake.
func TestRacingRetakeDeadlinesPageOnce(t *testing.T) {
	t.Parallel()
	w := retakeWorld(t)
	ingestBP(t, w, 185, 100, time.Now().Add(-time.Minute))
	id := theRetake(t, w, "pending")
	enginetest.Race(t, 8, [2]*engine.Engine{w.Eng, w.NewEngine(t, false)}, func(eng *engine.Engine) (int, error) {
		return 0, eng.Shared().Alerting.RetakeDeadline(context.Background(), id)
	})
	if n := w.Count(t, `SELECT count(*) FROM alerts WHERE rule_id = 'bp-crisis'`); n != 1 {
		t.Errorf("%d bp-crisis alerts after racing deadlines, want 1", n)
	}
	if n := w.Count(t, `SELECT count(*) FROM notifications WHERE type = 'alert'`); n != 1 {
		t.Errorf("%d team notifications after racing deadlines, want 1", n)
	}
	if n := w.Count(t, `SELECT count(*) FROM retakes WHERE status = 'timed_out'`); n != 1 {
		t.Errorf("%d timed-out retakes, want 1", n)
	}
}

// A retake still waiting when the patient's processing is restricted times
// out at its deadline without paging: restriction stops alerts already on
// their way too.
func TestRetakeDeadlineRestrictedPagesNobody(t *testing.T) {
	t.Parallel()
	w := retakeWorld(t)
	ingestBP(t, w, 185, 100, time.Now().Add(-time.Minute))
	id := theRetake(t, w, "pending")
	if _, err := w.Eng.RestrictPatient(context.Background(), w.Admin, w.Patient.ID, "objects to processing"); err != nil {
		t.Fatal(err)
	}
	if err := w.Eng.Shared().Alerting.RetakeDeadline(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if n := w.Count(t, `SELECT count(*) FROM alerts`); n != 0 {
		t.Errorf("%d alerts at a restricted patient's retake deadline", n)
	}
	if n := w.Count(t, `SELECT count(*) FROM retakes WHERE status = 'timed_out'`); n != 1 {
		t.Errorf("%d timed-out retakes, want 1", n)
	}
}
