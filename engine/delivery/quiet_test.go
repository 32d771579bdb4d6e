package delivery_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/delivery"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/engine/enginetest/pushtest"
	"github.com/tendhealth/tend/notify/notifytest"
	"github.com/tendhealth/tend/rpm"
)

func TestQuietWindowAcrossDST(t *testing.T) {
	t.Parallel()
	chi := enginetest.Chicago(t)
	at := func(y int, m time.Month, d, hh, mm int) time.Time { return time.Date(y, m, d, hh, mm, 0, 0, chi) }
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name       string
		start, end string
		now        time.Time
		quiet      bool
		until      time.Time
	}{
		{"evening inside", "22:00", "07:00", at(2026, 11, 20, 23, 0), true, utc("2026-11-21T13:00:00Z")},
		{"start is inside", "22:00", "07:00", at(2026, 11, 20, 22, 0), true, utc("2026-11-21T13:00:00Z")},
		{"morning inside", "22:00", "07:00", at(2026, 11, 21, 6, 59), true, utc("2026-11-21T13:00:00Z")},
		{"end is outside", "22:00", "07:00", at(2026, 11, 21, 7, 0), false, time.Time{}},
		{"day outside", "22:00", "07:00", at(2026, 11, 21, 12, 0), false, time.Time{}},
		{"just before", "22:00", "07:00", at(2026, 11, 21, 21, 59), false, time.Time{}},
		// Spring forward (2026-03-08 02:00 CST → 03:00 CDT): 07:00 CDT, 8 h after 22:00 CST.
		{"spring forward night", "22:00", "07:00", at(2026, 3, 7, 23, 0), true, utc("2026-03-08T12:00:00Z")},
		{"spring forward morning", "22:00", "07:00", utc("2026-03-08T11:30:00Z"), true, utc("2026-03-08T12:00:00Z")},
		{"spring forward after", "22:00", "07:00", utc("2026-03-08T12:00:00Z"), false, time.Time{}},
		// An end that does not exist that day ends at the jump (03:00 CDT).
		{"end in the gap", "22:00", "02:30", at(2026, 3, 7, 23, 0), true, utc("2026-03-08T08:00:00Z")},
		// Fall back (2026-11-01 02:00 CDT → 01:00 CST): 07:00 CST, 10 h after 22:00 CDT.
		{"fall back night", "22:00", "07:00", at(2026, 10, 31, 23, 0), true, utc("2026-11-01T13:00:00Z")},
		// An end that occurs twice ends at its first occurrence (01:30 CDT).
		{"end repeated", "22:00", "01:30", at(2026, 10, 31, 23, 0), true, utc("2026-11-01T06:30:00Z")},
		{"after first 01:30", "22:00", "01:30", utc("2026-11-01T06:45:00Z"), false, time.Time{}},
		{"same-day window", "13:00", "15:00", at(2026, 11, 21, 14, 0), true, utc("2026-11-21T21:00:00Z")},
		{"same-day window after", "13:00", "15:00", at(2026, 11, 21, 15, 0), false, time.Time{}},
		{"midnight start", "00:00", "06:00", at(2026, 11, 21, 0, 0), true, utc("2026-11-21T12:00:00Z")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			until, quiet := delivery.QuietUntil("America/Chicago", tc.start, tc.end, tc.now)
			if quiet != tc.quiet || !until.Equal(tc.until) {
				t.Errorf("%s–%s at %s: quiet %v until %s, want %v until %s", tc.start, tc.end, tc.now.In(chi),
					quiet, until.In(chi), tc.quiet, tc.until.In(chi))
			}
		})
	}
	// Zones east of UTC and with half-hour offsets work the same way.
	if until, quiet := delivery.QuietUntil("Asia/Kolkata", "22:00", "07:00", utc("2026-11-21T18:00:00Z")); !quiet || !until.Equal(utc("2026-11-22T01:30:00Z")) {
		t.Errorf("Kolkata: quiet %v until %s", quiet, until)
	}
}

func TestSetPreferencesValidates(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	for _, tc := range []struct {
		p      engine.Preferences
		fields []string
	}{
		{engine.Preferences{Timezone: "Mars/Olympus_Mons"}, []string{"timezone"}},
		{engine.Preferences{Timezone: "Local"}, []string{"timezone"}},
		{engine.Preferences{QuietHours: &engine.QuietHours{Start: "22:00", End: "07:00"}}, []string{"timezone"}},
		{engine.Preferences{Timezone: "UTC", QuietHours: &engine.QuietHours{Start: "24:00", End: "7:00"}}, []string{"quiet_hours.start", "quiet_hours.end"}},
		{engine.Preferences{Timezone: "UTC", QuietHours: &engine.QuietHours{Start: "22:00", End: "22:00"}}, []string{"quiet_hours.end"}},
	} {
		_, err := w.Eng.SetPreferences(ctx, w.Clinician, tc.p)
		var v *rpm.ValidationError
		if !errors.As(err, &v) {
			t.Errorf("%+v: err = %v, want a validation error", tc.p, err)
			continue
		}
		var got []string
		for _, f := range v.Fields {
			got = append(got, f.Field)
		}
		if !slices.Equal(got, tc.fields) {
			t.Errorf("%+v: fields %v, want %v", tc.p, got, tc.fields)
		}
	}
	want := engine.Preferences{Timezone: "Europe/Berlin", QuietHours: &engine.QuietHours{Start: "21:30", End: "06:45"}}
	if _, err := w.Eng.SetPreferences(ctx, w.Clinician, want); err != nil {
		t.Fatal(err)
	}
	got, err := w.Eng.GetPreferences(ctx, w.Clinician)
	if err != nil || got.Timezone != want.Timezone || got.QuietHours == nil || *got.QuietHours != *want.QuietHours {
		t.Errorf("GetPreferences = %+v, %v; want %+v", got, err, want)
	}
	if _, err := w.Eng.GetPreferences(ctx, engine.System("test")); !errors.Is(err, engine.ErrForbidden) {
		t.Errorf("system actor: err = %v, want ErrForbidden", err)
	}
}

// ingest posts one reading for patient (as the clinician), observed a minute
// ago by the world's clock, and returns the alert it raised.
func ingest(t *testing.T, w *pushtest.Quiet, patient uuid.UUID, r rpm.Reading) engine.AlertRef {
	t.Helper()
	r.ObservedAt = w.Clock.Now().Add(-time.Minute)
	res, err := w.Eng.Ingest(context.Background(), w.Clinician, engine.IngestRequest{PatientID: patient, Readings: []rpm.Reading{r}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Alerts) != 1 {
		t.Fatalf("alerts = %+v, want one", res.Alerts)
	}
	return res.Alerts[0]
}

func tachycardia() rpm.Reading {
	return rpm.Reading{Kind: rpm.HeartRate, Value: enginetest.Ptr(150), Unit: "/min"}
}

func jobsFor(t *testing.T, w *pushtest.Quiet, alertID uuid.UUID) int {
	t.Helper()
	return w.Count(t, `SELECT count(*) FROM river_job WHERE kind = 'notify.deliver' AND args->>'alert_id' = $1`, alertID.String())
}

// TestQuietHoursHoldMediumAndLowUntilOneCatchUp: during the clinician's
// quiet hours, medium alerts wait while critical and high go out at once;
// at the window's end (07:00 local, the morning after the clocks sprang
// forward) one catch-up per device says how many alerts waited.
func TestQuietHoursHoldMediumAndLowUntilOneCatchUp(t *testing.T) {
	t.Parallel()
	chi := enginetest.Chicago(t)
	w := pushtest.NewQuiet(t, time.Date(2026, 3, 7, 23, 0, 0, 0, chi))
	ctx := context.Background()

	fever1 := ingest(t, w, w.Patient.ID, enginetest.Fever())
	w.Clock.Set(time.Date(2026, 3, 7, 23, 40, 0, 0, chi))
	fever2 := ingest(t, w, w.Patient2, enginetest.Fever())
	crisis := ingest(t, w, w.Patient.ID, enginetest.BP(204, 131, time.Time{}, ""))
	fast := ingest(t, w, w.Patient2, tachycardia())
	if fever1.Urgency != rpm.Medium || fever2.Urgency != rpm.Medium || crisis.Urgency != rpm.Critical || fast.Urgency != rpm.High {
		t.Fatalf("urgencies %s %s %s %s, want medium medium critical high", fever1.Urgency, fever2.Urgency, crisis.Urgency, fast.Urgency)
	}
	for _, a := range []engine.AlertRef{fever1, fever2} {
		if n := jobsFor(t, w, a.ID); n != 0 {
			t.Errorf("medium alert %s: %d delivery jobs during quiet hours, want 0", a.ID, n)
		}
	}
	for _, a := range []engine.AlertRef{crisis, fast} {
		if n := jobsFor(t, w, a.ID); n != 3 {
			t.Errorf("%s alert: %d delivery jobs during quiet hours, want 3 (one per device)", a.Urgency, n)
		}
	}
	wantEnd := time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC) // 07:00 CDT
	if n := w.Count(t, `SELECT count(*) FROM notifications WHERE held_until = $1 AND catchup_id IS NULL`, wantEnd); n != 2 {
		t.Errorf("%d notifications held until 07:00 CDT, want 2", n)
	}
	var jobs int
	var scheduled time.Time
	var user string
	if err := w.Pool.QueryRow(ctx, `SELECT count(*), max(scheduled_at), max(args->>'user_id') FROM river_job WHERE kind = 'notify.catchup'`).
		Scan(&jobs, &scheduled, &user); err != nil {
		t.Fatal(err)
	}
	if jobs != 1 || !scheduled.Equal(wantEnd) || user != w.Clinician.UserID.String() {
		t.Errorf("catch-up jobs: %d scheduled at %s for %s, want one at %s for the clinician", jobs, scheduled, user, wantEnd)
	}

	// Still quiet at 03:30 (just after the jump): nothing is released.
	w.Clock.Set(time.Date(2026, 3, 8, 3, 30, 0, 0, chi))
	if id, err := w.Eng.Shared().Delivery.CatchUp(ctx, w.Clinician.UserID); err != nil || id != uuid.Nil {
		t.Fatalf("catch-up inside the window = %s, %v; want nothing", id, err)
	}

	w.Clock.Set(time.Date(2026, 3, 8, 7, 0, 5, 0, chi))
	id, err := w.Eng.Shared().Delivery.CatchUp(ctx, w.Clinician.UserID)
	if err != nil || id == uuid.Nil {
		t.Fatalf("catch-up at 07:00 = %s, %v; want one", id, err)
	}
	if again, err := w.Eng.Shared().Delivery.CatchUp(ctx, w.Clinician.UserID); err != nil || again != uuid.Nil {
		t.Errorf("second catch-up = %s, %v; want nothing left to release", again, err)
	}
	if n := w.Count(t, `SELECT count(*) FROM notifications WHERE catchup_id = $1`, id); n != 2 {
		t.Errorf("%d notifications marked delivered by the catch-up, want 2", n)
	}
	if n := w.Count(t, `SELECT item_count FROM notifications WHERE id = $1 AND type = 'catchup' AND urgency = 'medium'`, id); n != 2 {
		t.Errorf("catch-up item_count = %d, want 2", n)
	}
	rows, err := w.Pool.Query(ctx, `SELECT id FROM river_job WHERE kind = 'notify.deliver' AND args->>'notification_id' = $1`, id.String())
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var j int64
		_ = rows.Scan(&j)
		ids = append(ids, j)
	}
	rows.Close()
	if len(ids) != 3 {
		t.Fatalf("%d catch-up delivery jobs, want one per device (3)", len(ids))
	}
	for _, j := range ids {
		job, err := w.Eng.Jobs().JobGet(ctx, j)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Eng.Shared().Delivery.Work(ctx, job); err != nil {
			t.Fatal(err)
		}
	}
	const title = "2 new alerts while quiet hours were on"
	wp := w.Push.Received()
	var p struct {
		Type, Title, Urgency string
		Data                 map[string]string
	}
	if len(wp) != 1 || json.Unmarshal(wp[0].Payload, &p) != nil || p.Type != "catchup" || p.Title != title || p.Data["count"] != "2" {
		t.Errorf("browser got %d pushes, payload %s; want one catch-up %q", len(wp), payloadOf(wp), title)
	}
	if f := w.FCM.Received(); len(f) != 1 || f[0].Message.Notification.Title != title || f[0].Message.Data["type"] != "catchup" {
		t.Errorf("Android got %+v", f)
	}
	if a := w.APNs.Received(); len(a) != 1 || !jsonContains(a[0].Payload, title) {
		t.Errorf("iPhone got %+v", a)
	}
	for _, r := range wp {
		enginetest.ScanPHI(t, "catch-up", string(r.Payload), []string{"Sam", "Lee", "Alex", "Kim", "39", "Cel", "temperature", "fever", "150"})
	}
}

func payloadOf(r []notifytest.WebPushRequest) string {
	if len(r) == 0 {
		return "(none)"
	}
	return string(r[0].Payload)
}

func jsonContains(b []byte, s string) bool {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return false
	}
	var walk func(any) bool
	walk = func(v any) bool {
		switch x := v.(type) {
		case string:
			return x == s
		case map[string]any:
			for _, y := range x {
				if walk(y) {
					return true
				}
			}
		case []any:
			for _, y := range x {
				if walk(y) {
					return true
				}
			}
		}
		return false
	}
	return walk(v)
}

// TestClearingQuietHoursReleasesHeldAtOnce: a user who turns quiet hours off
// gets what was held straight away.
func TestClearingQuietHoursReleasesHeldAtOnce(t *testing.T) {
	t.Parallel()
	chi := enginetest.Chicago(t)
	w := pushtest.NewQuiet(t, time.Date(2026, 11, 20, 23, 0, 0, 0, chi))
	ctx := context.Background()
	fever1 := ingest(t, w, w.Patient.ID, enginetest.Fever())
	if n := jobsFor(t, w, fever1.ID); n != 0 {
		t.Fatalf("%d delivery jobs, want the alert held", n)
	}
	w.Clock.Set(time.Date(2026, 11, 20, 23, 30, 0, 0, chi))
	if _, err := w.Eng.SetPreferences(ctx, w.Clinician, engine.Preferences{Timezone: "America/Chicago"}); err != nil {
		t.Fatal(err)
	}
	var scheduled time.Time
	if err := w.Pool.QueryRow(ctx, `SELECT scheduled_at FROM river_job WHERE kind = 'notify.catchup' ORDER BY id DESC LIMIT 1`).Scan(&scheduled); err != nil {
		t.Fatal(err)
	}
	if !scheduled.Equal(w.Clock.Now()) {
		t.Errorf("catch-up scheduled at %s, want now (%s)", scheduled, w.Clock.Now())
	}
	id, err := w.Eng.Shared().Delivery.CatchUp(ctx, w.Clinician.UserID)
	if err != nil || id == uuid.Nil {
		t.Fatalf("catch-up = %s, %v", id, err)
	}
	if n := w.Count(t, `SELECT item_count FROM notifications WHERE id = $1`, id); n != 1 {
		t.Errorf("item_count = %d, want 1", n)
	}
	// A later medium alert is no longer held.
	fever2 := ingest(t, w, w.Patient2, enginetest.Fever())
	if n := jobsFor(t, w, fever2.ID); n != 3 {
		t.Errorf("%d delivery jobs for a medium alert without quiet hours, want 3", n)
	}
}

// TestSweepReleasesStragglers: a notification held by an ingest whose
// transaction was still open when the window's catch-up ran is released by
// the periodic sweep.
func TestSweepReleasesStragglers(t *testing.T) {
	t.Parallel()
	chi := enginetest.Chicago(t)
	w := pushtest.NewQuiet(t, time.Date(2026, 11, 20, 23, 0, 0, 0, chi))
	ctx := context.Background()
	ingest(t, w, w.Patient.ID, enginetest.Fever())
	// The catch-up already ran (and found nothing): its job is gone.
	if _, err := w.Pool.Exec(ctx, `DELETE FROM river_job WHERE kind = 'notify.catchup'`); err != nil {
		t.Fatal(err)
	}
	w.Clock.Set(time.Date(2026, 11, 21, 6, 59, 0, 0, chi))
	if n, err := w.Eng.Shared().Delivery.SweepHeld(ctx); err != nil || n != 0 {
		t.Fatalf("sweep inside the window = %d, %v; want 0", n, err)
	}
	w.Clock.Set(time.Date(2026, 11, 21, 7, 1, 0, 0, chi))
	if n, err := w.Eng.Shared().Delivery.SweepHeld(ctx); err != nil || n != 1 {
		t.Fatalf("sweep after the window = %d, %v; want 1", n, err)
	}
	if n, err := w.Eng.Shared().Delivery.SweepHeld(ctx); err != nil || n != 1 {
		t.Fatalf("second sweep = %d, %v", n, err)
	}
	if n := w.Count(t, `SELECT count(*) FROM river_job WHERE kind = 'notify.catchup'`); n != 1 {
		t.Errorf("%d catch-up jobs after two sweeps in one minute, want 1", n)
	}
	if id, err := w.Eng.Shared().Delivery.CatchUp(ctx, w.Clinician.UserID); err != nil || id == uuid.Nil {
		t.Fatalf("catch-up = %s, %v", id, err)
	}
}

// TestCatchUpJobRunsThroughRiver: the scheduled notify.catchup job, worked
// by River once the window is over, ends in pushes on every device.
func TestCatchUpJobRunsThroughRiver(t *testing.T) {
	t.Parallel()
	chi := enginetest.Chicago(t)
	w := pushtest.NewQuiet(t, time.Date(2026, 11, 20, 23, 0, 0, 0, chi))
	ingest(t, w, w.Patient.ID, enginetest.Fever())
	ingest(t, w, w.Patient2, enginetest.Fever())
	w.Clock.Set(time.Date(2026, 11, 21, 7, 0, 1, 0, chi))
	cfg := w.Cfg
	cfg.RunWorkers, cfg.Registerer = true, nil
	w.StartEngine(t, cfg) // a worker process on the same clock
	ctx := enginetest.WaitCtx(t)
	if _, err := w.FCM.Wait(ctx, 1); err != nil {
		t.Fatalf("Android got no catch-up: %v", err)
	}
	if _, err := w.APNs.Wait(ctx, 1); err != nil {
		t.Fatalf("iPhone got no catch-up: %v", err)
	}
	got, err := w.Push.Wait(ctx, 1)
	if err != nil {
		t.Fatalf("browser got no catch-up: %v", err)
	}
	if !jsonContains(got[0].Payload, "2 new alerts while quiet hours were on") {
		t.Errorf("payload %s", got[0].Payload)
	}
	enginetest.WaitFor(t, func() bool {
		return w.Count(t, `SELECT count(*) FROM deliveries d JOIN notifications n ON n.id = d.notification_id
			WHERE n.type = 'catchup' AND d.outcome = 'sent'`) == 3
	})
	if n := len(w.FCM.Received()) + len(w.APNs.Received()) + len(w.Push.Received()); n != 3 {
		t.Errorf("%d pushes, want one catch-up per device", n)
	}
}
