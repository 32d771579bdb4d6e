package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/rpm"
)

func (c *clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// raiseCritical ingests a hypertensive crisis and returns its alert id.
func raiseCritical(t *testing.T, w *world, eng *engine.Engine, at time.Time) uuid.UUID {
	t.Helper()
	res, err := eng.Ingest(context.Background(), w.device, engine.IngestRequest{PatientID: w.patient.ID,
		Readings: []rpm.Reading{bp(205, 100, at, "")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Alerts) != 1 {
		t.Fatalf("alerts = %+v", res.Alerts)
	}
	return res.Alerts[0].ID
}

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
	w := newWorld(t, false)
	ctx := context.Background()
	id := raiseCritical(t, w, w.eng, time.Now().Add(-time.Minute))
	eventsBefore := w.count(t, `SELECT count(*) FROM events WHERE type = 'alert.updated' AND payload->>'alert_id' = $1`, id.String())

	al, err := w.eng.SnoozeAlert(ctx, w.clinician, id, time.Now().Add(time.Hour), "will call at noon")
	if err != nil {
		t.Fatal(err)
	}
	if al.Status != "snoozed" || al.SnoozedUntil == nil {
		t.Errorf("after snooze: %+v", al)
	}
	_, err = w.eng.SnoozeAlert(ctx, w.clinician, id, time.Now().Add(-time.Minute), "")
	wantFields(t, err, "until")
	_, err = w.eng.SnoozeAlert(ctx, w.clinician, id, time.Now().Add(8*24*time.Hour), "")
	wantFields(t, err, "until")

	stranger, err := w.eng.CreateUser(ctx, w.admin, engine.NewUser{Name: "Dr Elsewhere", Role: engine.RoleClinician})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.eng.AssignAlert(ctx, w.clinician, id, stranger.ID, "")
	wantFields(t, err, "user_id")
	if al, err = w.eng.AssignAlert(ctx, w.clinician, id, w.clinician.UserID, "mine"); err != nil {
		t.Fatal(err)
	}
	if al.AssignedTo == nil || *al.AssignedTo != w.clinician.UserID {
		t.Errorf("after assign: %+v", al)
	}

	_, err = w.eng.ResolveAlert(ctx, w.clinician, id, "shrugged", "")
	wantFields(t, err, "disposition")
	_, err = w.eng.ResolveAlert(ctx, w.clinician, id, "", "")
	wantFields(t, err, "disposition")
	if al, err = w.eng.ResolveAlert(ctx, w.clinician, id, "called_patient", "advised to rest"); err != nil {
		t.Fatal(err)
	}
	if al.Status != "resolved" || al.Disposition == nil || *al.Disposition != "called_patient" || al.ResolvedBy == nil ||
		al.SnoozedUntil != nil {
		t.Errorf("after resolve: %+v", al)
	}

	_, err = w.eng.ResolveAlert(ctx, w.clinician, id, "other", "")
	wantConflict(t, err, "resolved")
	_, err = w.eng.AckAlert(ctx, w.clinician, id, "")
	wantConflict(t, err, "resolved")
	_, err = w.eng.SnoozeAlert(ctx, w.clinician, id, time.Now().Add(time.Hour), "")
	wantConflict(t, err, "resolved")
	_, err = w.eng.AssignAlert(ctx, w.clinician, id, w.clinician.UserID, "")
	wantConflict(t, err, "resolved")

	d, err := w.eng.GetAlert(ctx, w.clinician, id)
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
		if n := w.count(t, `SELECT count(*) FROM audit_entries WHERE action = $1 AND object_id = $2`, action, id.String()); n != 1 {
			t.Errorf("%d %s audit entries, want 1", n, action)
		}
	}
	if n := w.count(t, `SELECT count(*) FROM events WHERE type = 'alert.updated' AND payload->>'alert_id' = $1`, id.String()); n != eventsBefore+3 {
		t.Errorf("%d alert.updated events, want %d", n, eventsBefore+3)
	}
	if n := w.count(t, `SELECT count(*) FROM river_job WHERE kind = 'triage.snooze_end'`); n != 1 {
		t.Errorf("%d snooze-end jobs, want 1", n)
	}
}

// A snooze ends at its time (the job, with an injected clock), not before;
// and early when the alert's urgency rises.
func TestSnoozeEnds(t *testing.T) {
	t.Parallel()
	w := newWorld(t, false)
	ctx := context.Background()
	clk := &clock{t: time.Now().Truncate(time.Second)}
	eng := w.newEngineWith(t, engine.Config{Now: clk.Now})
	id := raiseCritical(t, w, eng, clk.Now().Add(-time.Minute))
	if _, err := eng.SnoozeAlert(ctx, w.clinician, id, clk.Now().Add(30*time.Minute), ""); err != nil {
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
	al, err := eng.GetAlert(ctx, w.clinician, id)
	if err != nil || al.Status != "open" || al.SnoozedUntil != nil {
		t.Fatalf("after the snooze: %+v %v", al.Alert, err)
	}

	// Early end: the alert is made less urgent than its rule's next finding.
	if _, err := w.pool.Exec(ctx, `UPDATE alerts SET urgency = 'high', urgency_rank = 3, notified_urgency_rank = 3 WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.SnoozeAlert(ctx, w.clinician, id, clk.Now().Add(2*time.Hour), ""); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	// A normal reading re-arms the rule, so the next crisis fires again.
	if _, err := eng.Ingest(ctx, w.device, engine.IngestRequest{PatientID: w.patient.ID,
		Readings: []rpm.Reading{bp(125, 80, clk.Now().Add(-20*time.Second), "")}}); err != nil {
		t.Fatal(err)
	}
	raiseCritical(t, w, eng, clk.Now().Add(-10*time.Second))
	al, err = eng.GetAlert(ctx, w.clinician, id)
	if err != nil || al.Status != "open" || al.Urgency != rpm.Critical {
		t.Fatalf("after a more urgent finding: %+v %v", al.Alert, err)
	}
}

// The queue filters by assignee and care team; counts cover the unresolved
// alerts per urgency and status; the detail lists the recent readings of
// the alert's kind.
func TestQueueFiltersCountsAndRecent(t *testing.T) {
	t.Parallel()
	w := newWorld(t, false)
	ctx := context.Background()
	now := time.Now()
	if _, err := w.eng.Ingest(ctx, w.device, engine.IngestRequest{PatientID: w.patient.ID, Readings: []rpm.Reading{
		bp(130, 85, now.Add(-3*time.Hour), ""),
		{Kind: rpm.HeartRate, Value: ptr(72), Unit: "/min", ObservedAt: now.Add(-2 * time.Hour)},
	}}); err != nil {
		t.Fatal(err)
	}
	id := raiseCritical(t, w, w.eng, now.Add(-time.Minute))
	items, _, err := w.eng.ListAlerts(ctx, w.clinician, engine.AlertFilter{Assignee: w.clinician.UserID})
	if err != nil || len(items) != 0 {
		t.Fatalf("assigned before assigning: %v %v", items, err)
	}
	if _, err := w.eng.AssignAlert(ctx, w.clinician, id, w.clinician.UserID, ""); err != nil {
		t.Fatal(err)
	}
	items, _, err = w.eng.ListAlerts(ctx, w.clinician, engine.AlertFilter{Assignee: w.clinician.UserID, CareTeamID: w.patient.CareTeamID})
	if err != nil || len(items) != 1 || items[0].ID != id {
		t.Fatalf("assigned: %v %v", items, err)
	}
	items, _, err = w.eng.ListAlerts(ctx, w.clinician, engine.AlertFilter{CareTeamID: uuid.New()})
	if err != nil || len(items) != 0 {
		t.Fatalf("another team: %v %v", items, err)
	}
	c, err := w.eng.CountAlerts(ctx, w.clinician, uuid.Nil)
	if err != nil || c.Urgency[rpm.Critical] != 1 || c.Status["open"] != 1 || c.Status["snoozed"] != 0 {
		t.Fatalf("counts = %+v, %v", c, err)
	}
	if _, err := w.eng.ResolveAlert(ctx, w.clinician, id, "false_reading", ""); err != nil {
		t.Fatal(err)
	}
	if c, err = w.eng.CountAlerts(ctx, w.clinician, uuid.Nil); err != nil || c.Urgency[rpm.Critical] != 0 {
		t.Fatalf("counts after resolving = %+v, %v", c, err)
	}
	d, err := w.eng.GetAlert(ctx, w.clinician, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Recent) != 2 || d.Recent[0].Kind != rpm.BloodPressure || !d.Recent[0].ObservedAt.Before(d.Recent[1].ObservedAt) {
		t.Errorf("recent = %+v", d.Recent)
	}
}
