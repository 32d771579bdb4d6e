package triage_test

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

func wantConflict(t *testing.T, err error, status string) {
	t.Helper()
	var c *engine.AlertConflict
	if !errors.As(err, &c) || !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("err = %v, want a conflict", err)
	}
	if c.Alert.Status != status {
		t.Errorf("conflict carries status %q, want %q", c.Alert.Status, status)
	}
}

// Snooze, assign and resolve each record an event (with the note), an
// audit entry and an alert.updated stream event; a resolved alert cannot be
// resolved, acknowledged, snoozed or assigned again.
func TestAlertLifecycle(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	id := enginetest.RaiseCritical(t, w, w.Eng, time.Now().Add(-time.Minute))
	eventsBefore := w.Count(t, `SELECT count(*) FROM events WHERE type = 'alert.updated' AND payload->>'alert_id' = $1`, id.String())

	al, err := w.Eng.SnoozeAlert(ctx, w.Clinician, id, time.Now().Add(time.Hour), "will call at noon")
	if err != nil {
		t.Fatal(err)
	}
	if al.Status != "snoozed" || al.SnoozedUntil == nil {
		t.Errorf("after snooze: %+v", al)
	}
	_, err = w.Eng.SnoozeAlert(ctx, w.Clinician, id, time.Now().Add(-time.Minute), "")
	enginetest.WantFields(t, err, "until")
	_, err = w.Eng.SnoozeAlert(ctx, w.Clinician, id, time.Now().Add(8*24*time.Hour), "")
	enginetest.WantFields(t, err, "until")

	stranger, err := w.Eng.CreateUser(ctx, w.Admin, engine.NewUser{Name: "Dr Elsewhere", Role: engine.RoleClinician})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Eng.AssignAlert(ctx, w.Clinician, id, stranger.ID, "")
	enginetest.WantFields(t, err, "user_id")
	if al, err = w.Eng.AssignAlert(ctx, w.Clinician, id, w.Clinician.UserID, "mine"); err != nil {
		t.Fatal(err)
	}
	if al.AssignedTo == nil || *al.AssignedTo != w.Clinician.UserID {
		t.Errorf("after assign: %+v", al)
	}

	_, err = w.Eng.ResolveAlert(ctx, w.Clinician, id, "shrugged", "")
	enginetest.WantFields(t, err, "disposition")
	_, err = w.Eng.ResolveAlert(ctx, w.Clinician, id, "", "")
	enginetest.WantFields(t, err, "disposition")
	if al, err = w.Eng.ResolveAlert(ctx, w.Clinician, id, "called_patient", "advised to rest"); err != nil {
		t.Fatal(err)
	}
	if al.Status != "resolved" || al.Disposition == nil || *al.Disposition != "called_patient" || al.ResolvedBy == nil ||
		al.SnoozedUntil != nil {
		t.Errorf("after resolve: %+v", al)
	}

	_, err = w.Eng.ResolveAlert(ctx, w.Clinician, id, "other", "")
	wantConflict(t, err, "resolved")
	_, err = w.Eng.AckAlert(ctx, w.Clinician, id, "")
	wantConflict(t, err, "resolved")
	_, err = w.Eng.SnoozeAlert(ctx, w.Clinician, id, time.Now().Add(time.Hour), "")
	wantConflict(t, err, "resolved")
	_, err = w.Eng.AssignAlert(ctx, w.Clinician, id, w.Clinician.UserID, "")
	wantConflict(t, err, "resolved")

	d, err := w.Eng.GetAlert(ctx, w.Clinician, id)
	if err != nil {
		t.Fatal(err)
	}
	notes := map[string]string{}
	for _, e := range d.Events {
		notes[e.Action] = e.Note
	}
	if notes["snoozed"] != "will call at noon" || notes["assigned"] != "mine" || notes["resolved"] != "advised to rest" {
		t.Errorf("events = %+v", d.Events)
	}
	for _, action := range []string{"alert.snooze", "alert.assign", "alert.resolve"} {
		if n := w.Count(t, `SELECT count(*) FROM audit_entries WHERE action = $1 AND object_id = $2`, action, id.String()); n != 1 {
			t.Errorf("%d %s audit entries, want 1", n, action)
		}
	}
	if n := w.Count(t, `SELECT count(*) FROM events WHERE type = 'alert.updated' AND payload->>'alert_id' = $1`, id.String()); n != eventsBefore+3 {
		t.Errorf("%d alert.updated events, want %d", n, eventsBefore+3)
	}
	if n := w.Count(t, `SELECT count(*) FROM river_job WHERE kind = 'triage.snooze_end'`); n != 1 {
		t.Errorf("%d snooze-end jobs, want 1", n)
	}
}

// A snooze ends at its time (the job, with an injected clock), not before;
// and early when the alert's urgency rises.
func TestSnoozeEnds(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	eng, clk := w.NewClockedEngine(t, time.Time{}, engine.Config{})
	id := enginetest.RaiseCritical(t, w, eng, clk.Now().Add(-time.Minute))
	if _, err := eng.SnoozeAlert(ctx, w.Clinician, id, clk.Now().Add(30*time.Minute), ""); err != nil {
		t.Fatal(err)
	}
	clk.Advance(29 * time.Minute)
	if ended, err := eng.EndSnooze(ctx, id); err != nil || ended {
		t.Fatalf("EndSnooze before the time = %v, %v", ended, err)
	}
	clk.Advance(time.Minute)
	if ended, err := eng.EndSnooze(ctx, id); err != nil || !ended {
		t.Fatalf("EndSnooze at the time = %v, %v", ended, err)
	}
	al, err := eng.GetAlert(ctx, w.Clinician, id)
	if err != nil || al.Status != "open" || al.SnoozedUntil != nil {
		t.Fatalf("after the snooze: %+v %v", al.Alert, err)
	}

	// Early end: the alert is made less urgent than its rule's next finding.
	if _, err := w.Pool.Exec(ctx, `UPDATE alerts SET urgency = 'high', urgency_rank = 3, notified_urgency_rank = 3 WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.SnoozeAlert(ctx, w.Clinician, id, clk.Now().Add(2*time.Hour), ""); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	// A normal reading re-arms the rule, so the next crisis fires again.
	if _, err := eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID,
		Readings: []rpm.Reading{enginetest.BP(125, 80, clk.Now().Add(-20*time.Second), "")}}); err != nil {
		t.Fatal(err)
	}
	enginetest.RaiseCritical(t, w, eng, clk.Now().Add(-10*time.Second))
	al, err = eng.GetAlert(ctx, w.Clinician, id)
	if err != nil || al.Status != "open" || al.Urgency != rpm.Critical {
		t.Fatalf("after a more urgent finding: %+v %v", al.Alert, err)
	}
}

// The queue filters by assignee and care team; counts cover the unresolved
// alerts per urgency and status; the detail lists the recent readings of
// the alert's kind.
func TestQueueFiltersCountsAndRecent(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	now := time.Now()
	if _, err := w.Eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID, Readings: []rpm.Reading{
		enginetest.BP(130, 85, now.Add(-3*time.Hour), ""),
		{Kind: rpm.HeartRate, Value: enginetest.Ptr(72), Unit: "/min", ObservedAt: now.Add(-2 * time.Hour)},
	}}); err != nil {
		t.Fatal(err)
	}
	id := enginetest.RaiseCritical(t, w, w.Eng, now.Add(-time.Minute))
	items, _, err := w.Eng.ListAlerts(ctx, w.Clinician, engine.AlertFilter{Assignee: w.Clinician.UserID})
	if err != nil || len(items) != 0 {
		t.Fatalf("assigned before assigning: %v %v", items, err)
	}
	if _, err := w.Eng.AssignAlert(ctx, w.Clinician, id, w.Clinician.UserID, ""); err != nil {
		t.Fatal(err)
	}
	items, _, err = w.Eng.ListAlerts(ctx, w.Clinician, engine.AlertFilter{Assignee: w.Clinician.UserID, CareTeamID: w.Patient.CareTeamID})
	if err != nil || len(items) != 1 || items[0].ID != id {
		t.Fatalf("assigned: %v %v", items, err)
	}
	items, _, err = w.Eng.ListAlerts(ctx, w.Clinician, engine.AlertFilter{CareTeamID: uuid.New()})
	if err != nil || len(items) != 0 {
		t.Fatalf("another team: %v %v", items, err)
	}
	c, err := w.Eng.CountAlerts(ctx, w.Clinician, uuid.Nil)
	if err != nil || c.Urgency[rpm.Critical] != 1 || c.Status["open"] != 1 || c.Status["snoozed"] != 0 {
		t.Fatalf("counts = %+v, %v", c, err)
	}
	if _, err := w.Eng.ResolveAlert(ctx, w.Clinician, id, "false_reading", ""); err != nil {
		t.Fatal(err)
	}
	if c, err = w.Eng.CountAlerts(ctx, w.Clinician, uuid.Nil); err != nil || c.Urgency[rpm.Critical] != 0 {
		t.Fatalf("counts after resolving = %+v, %v", c, err)
	}
	d, err := w.Eng.GetAlert(ctx, w.Clinician, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Recent) != 2 || d.Recent[0].Kind != rpm.BloodPressure || !d.Recent[0].ObservedAt.Before(d.Recent[1].ObservedAt) {
		t.Errorf("recent = %+v", d.Recent)
	}
}

// Critical and high alerts page who is on call now by the team's rota (in
// its zone); medium ones, and any alert when nobody is on call, page every
// clinician.
func TestRoutingPagesOnCall(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	night := enginetest.AddClinician(t, w, "Dr Night")
	lead := enginetest.AddClinician(t, w, "Dr Lead")
	// Monday 2026-12-07 10:00 UTC is 04:00 in Chicago.
	eng, clk := w.NewClockedEngine(t, time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC), engine.Config{})
	if _, err := eng.UpdateCareTeam(ctx, w.Admin, w.Patient.CareTeamID, engine.CareTeamUpdate{
		Members:  []engine.TeamMember{{UserID: w.Clinician.UserID, Role: "clinician"}, {UserID: night.UserID, Role: "clinician"}, {UserID: lead.UserID, Role: "lead"}},
		Timezone: "America/Chicago",
		OnCall:   []engine.OnCallSlot{{UserID: night.UserID, Weekday: "sunday", Start: "22:00", End: "06:00"}},
	}); err != nil {
		t.Fatal(err)
	}
	_, err := eng.UpdateCareTeam(ctx, w.Admin, w.Patient.CareTeamID, engine.CareTeamUpdate{
		OnCall: []engine.OnCallSlot{{UserID: uuid.New(), Weekday: "someday", Start: "6", End: "06:00"}}})
	enginetest.WantFields(t, err, "on_call[0].user_id", "on_call[0].weekday", "on_call[0].start")

	critical := enginetest.RaiseCritical(t, w, eng, clk.Now().Add(-time.Minute))
	if got := enginetest.Paged(t, w, critical); len(got) != 1 || !got[night.UserID] {
		t.Errorf("critical at 04:00 paged %v, want only the night clinician %s", got, night.UserID)
	}
	res, err := eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID, Readings: []rpm.Reading{
		{Kind: rpm.BodyTemperature, Value: enginetest.Ptr(39.6), Unit: "Cel", ObservedAt: clk.Now().Add(-30 * time.Second)}}})
	if err != nil || len(res.Alerts) != 1 || res.Alerts[0].Urgency != rpm.Medium {
		t.Fatalf("fever: %+v %v", res.Alerts, err)
	}
	if got := enginetest.Paged(t, w, res.Alerts[0].ID); len(got) != 2 || !got[night.UserID] || !got[w.Clinician.UserID] {
		t.Errorf("medium paged %v, want both clinicians (not the lead)", got)
	}

	// At 07:00 in Chicago nobody is on call: every clinician is paged.
	if _, err := eng.ResolveAlert(ctx, w.Clinician, critical, "false_reading", ""); err != nil {
		t.Fatal(err)
	}
	clk.Set(clk.Now().Add(3 * time.Hour))
	again := enginetest.RaiseCritical(t, w, eng, clk.Now().Add(-time.Minute))
	if got := enginetest.Paged(t, w, again); len(got) != 2 || !got[night.UserID] || !got[w.Clinician.UserID] {
		t.Errorf("critical with nobody on call paged %v, want both clinicians", got)
	}
}
