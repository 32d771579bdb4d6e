package engine_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
)

// escalationWorld is w's team with a lead, a second clinician on call
// around the clock, and a policy: critical alerts wait 5 minutes per level,
// levels on_call, leads, all. It returns the lead and the on-call
// clinician.
func escalationWorld(t *testing.T, w *world, eng *engine.Engine) (lead, onCall engine.Actor) {
	t.Helper()
	lead = addClinician(t, w, "Dr Lead")
	onCall = addClinician(t, w, "Dr On Call")
	var slots []engine.OnCallSlot
	for _, d := range []string{"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"} {
		slots = append(slots, engine.OnCallSlot{UserID: onCall.UserID, Weekday: d, Start: "00:00", End: "24:00"})
	}
	if _, err := eng.UpdateCareTeam(context.Background(), w.admin, w.patient.CareTeamID, engine.CareTeamUpdate{
		Members: []engine.TeamMember{{UserID: w.clinician.UserID, Role: "clinician"}, {UserID: lead.UserID, Role: "lead"},
			{UserID: onCall.UserID, Role: "clinician"}},
		OnCall: slots,
		Escalation: &engine.EscalationInput{AckDeadlines: map[string]string{"critical": "5m", "high": "30m"},
			Levels: []string{"on_call", "leads", "all"}},
	}); err != nil {
		t.Fatal(err)
	}
	return lead, onCall
}

// escalateJobs returns the scheduled times of alert id's escalation jobs by step.
func escalateJobs(t *testing.T, w *world, id uuid.UUID) map[int]time.Time {
	t.Helper()
	rows, err := w.pool.Query(context.Background(), `SELECT (args->>'step')::int, scheduled_at FROM river_job
		WHERE kind = 'alerting.escalate' AND args->>'alert_id' = $1`, id.String())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int]time.Time{}
	for rows.Next() {
		var step int
		var at time.Time
		if err := rows.Scan(&step, &at); err != nil {
			t.Fatal(err)
		}
		if _, dup := out[step]; dup {
			t.Errorf("two jobs for step %d", step)
		}
		out[step] = at
	}
	return out
}

func notifiedCount(t *testing.T, w *world, id, user uuid.UUID) int {
	t.Helper()
	return w.count(t, `SELECT count(*) FROM notifications WHERE alert_id = $1 AND user_id = $2 AND type = 'alert'`, id, user)
}

// Unacknowledged, a critical alert first paged to who is on call escalates
// at each deadline to the next level (leads, then everyone not yet told),
// then is flagged escalation_exhausted; every step is an event of the
// alert; a step is taken once.
func TestEscalationWalksTheLevels(t *testing.T) {
	t.Parallel()
	w := newWorld(t, false)
	ctx := context.Background()
	clk := &clock{t: time.Now().Truncate(time.Second)}
	eng := w.newEngineWith(t, engine.Config{Now: clk.Now})
	lead, onCall := escalationWorld(t, w, eng)
	t0 := clk.Now()
	id := raiseCritical(t, w, eng, t0.Add(-time.Minute))
	if n := notifiedCount(t, w, id, lead.UserID) + notifiedCount(t, w, id, w.clinician.UserID); n != 0 {
		t.Fatalf("the lead or the clinician off call was paged first (%d)", n)
	}
	if n := notifiedCount(t, w, id, onCall.UserID); n != 1 {
		t.Fatalf("the on-call clinician was paged %d times first, want 1", n)
	}
	jobs := escalateJobs(t, w, id)
	if len(jobs) != 1 || !jobs[1].Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("escalation jobs = %v, want step 1 at %s", jobs, t0.Add(5*time.Minute))
	}

	clk.Advance(5 * time.Minute)
	if ok, err := eng.Escalate(ctx, id, 1); err != nil || !ok {
		t.Fatalf("step 1 = %v, %v", ok, err)
	}
	if ok, err := eng.Escalate(ctx, id, 1); err != nil || ok {
		t.Fatalf("step 1 again = %v, %v", ok, err)
	}
	if n := notifiedCount(t, w, id, lead.UserID); n != 1 {
		t.Errorf("lead notified %d times at step 1, want 1", n)
	}
	if jobs := escalateJobs(t, w, id); !jobs[2].Equal(t0.Add(10 * time.Minute)) {
		t.Errorf("step 2 at %v, want %s", jobs[2], t0.Add(10*time.Minute))
	}
	clk.Advance(5 * time.Minute)
	if ok, err := eng.Escalate(ctx, id, 2); err != nil || !ok {
		t.Fatalf("step 2 = %v, %v", ok, err)
	}
	if n := notifiedCount(t, w, id, w.clinician.UserID); n != 1 {
		t.Errorf("clinician off call notified %d times after step 2 (all), want 1", n)
	}
	if a, b := notifiedCount(t, w, id, onCall.UserID), notifiedCount(t, w, id, lead.UserID); a != 1 || b != 1 {
		t.Errorf("step 2 paged again those already told: on call %d, lead %d", a, b)
	}
	clk.Advance(5 * time.Minute)
	if ok, err := eng.Escalate(ctx, id, 3); err != nil || !ok {
		t.Fatalf("step 3 = %v, %v", ok, err)
	}
	d, err := eng.GetAlert(ctx, w.clinician, id)
	if err != nil {
		t.Fatal(err)
	}
	if !d.EscalationExhausted || d.EscalationLevel != 3 {
		t.Errorf("alert after the last level: %+v", d.Alert)
	}
	var steps []string
	for _, e := range d.Events {
		if e.Action == "escalated" || e.Action == "escalation_exhausted" {
			steps = append(steps, e.Action)
		}
	}
	if want := []string{"escalated", "escalated", "escalation_exhausted"}; !equal(steps, want) {
		t.Errorf("escalation events %v, want %v", steps, want)
	}
	if jobs := escalateJobs(t, w, id); len(jobs) != 3 {
		t.Errorf("escalation jobs after exhaustion = %v, want steps 1–3 only", jobs)
	}
}

// Acknowledging cancels the pending steps: the job finds the alert
// acknowledged and does nothing.
func TestAckStopsEscalation(t *testing.T) {
	t.Parallel()
	w := newWorld(t, false)
	ctx := context.Background()
	clk := &clock{t: time.Now().Truncate(time.Second)}
	eng := w.newEngineWith(t, engine.Config{Now: clk.Now})
	lead, _ := escalationWorld(t, w, eng)
	id := raiseCritical(t, w, eng, clk.Now().Add(-time.Minute))
	clk.Advance(3 * time.Minute)
	if _, err := eng.AckAlert(ctx, w.clinician, id, "on it"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	if ok, err := eng.Escalate(ctx, id, 1); err != nil || ok {
		t.Fatalf("step 1 after ack = %v, %v", ok, err)
	}
	if n := notifiedCount(t, w, id, lead.UserID); n != 0 {
		t.Errorf("lead notified %d times after an ack", n)
	}
	if n := w.count(t, `SELECT count(*) FROM alert_events WHERE alert_id = $1 AND action = 'escalated'`, id); n != 0 {
		t.Errorf("%d escalation events after an ack", n)
	}
}

// Two workers (two engines, as two processes) racing the same step
// escalate once.
func TestRacingWorkersEscalateOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t, false)
	ctx := context.Background()
	clk := &clock{t: time.Now().Truncate(time.Second)}
	eng1 := w.newEngineWith(t, engine.Config{Now: clk.Now})
	eng2 := w.newEngineWith(t, engine.Config{Now: clk.Now})
	lead, _ := escalationWorld(t, w, eng1)
	id := raiseCritical(t, w, eng1, clk.Now().Add(-time.Minute))
	clk.Advance(5 * time.Minute)
	var wg sync.WaitGroup
	var mu sync.Mutex
	took := 0
	for i := range 8 {
		eng := eng1
		if i%2 == 1 {
			eng = eng2
		}
		wg.Go(func() {
			ok, err := eng.Escalate(ctx, id, 1)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				took++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if took != 1 {
		t.Errorf("%d workers took step 1, want 1", took)
	}
	if n := notifiedCount(t, w, id, lead.UserID); n != 1 {
		t.Errorf("lead notified %d times, want 1", n)
	}
	if n := w.count(t, `SELECT count(*) FROM alert_events WHERE alert_id = $1 AND action = 'escalated'`, id); n != 1 {
		t.Errorf("%d escalation events, want 1", n)
	}
	if jobs := escalateJobs(t, w, id); len(jobs) != 2 {
		t.Errorf("escalation jobs = %v, want one per step", jobs)
	}
}

// A critical alert that reaches no device escalates at once.
func TestUndeliveredCriticalEscalatesAtOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t, false)
	clk := &clock{t: time.Now().Truncate(time.Second)}
	eng := w.newEngineWith(t, engine.Config{Now: clk.Now})
	escalationWorld(t, w, eng)
	if _, err := w.pool.Exec(context.Background(), `UPDATE devices SET enabled = false`); err != nil {
		t.Fatal(err)
	}
	// The clock runs a day ahead: a job at the clock's deadline would wait.
	clk.Advance(24 * time.Hour)
	id := raiseCritical(t, w, eng, clk.Now().Add(-time.Minute))
	jobs := escalateJobs(t, w, id)
	if len(jobs) != 1 || jobs[1].After(time.Now()) {
		t.Fatalf("escalation jobs = %v, want step 1 due now", jobs)
	}
	if n := w.count(t, `SELECT count(*) FROM river_job WHERE kind = 'alerting.escalate' AND state = 'available'`); n != 1 {
		t.Errorf("%d available escalation jobs, want 1 (not waiting for the scheduler)", n)
	}
}

// With workers running, the River jobs walk an unacknowledged alert through
// every level (the clock is set back so that each step is already due).
func TestEscalationJobsRun(t *testing.T) {
	t.Parallel()
	w := newWorld(t, false)
	ctx := context.Background()
	clk := &clock{t: time.Now().Add(-time.Hour).Truncate(time.Second)}
	eng := w.newEngineWith(t, engine.Config{Now: clk.Now, RunWorkers: true})
	lead, _ := escalationWorld(t, w, eng)
	id := raiseCritical(t, w, eng, clk.Now().Add(-time.Minute))
	waitFor(t, func() bool {
		d, err := eng.GetAlert(ctx, w.clinician, id)
		return err == nil && d.EscalationExhausted
	})
	if n := notifiedCount(t, w, id, lead.UserID) + notifiedCount(t, w, id, w.clinician.UserID); n != 2 {
		t.Errorf("lead and clinician off call notified %d times in all, want once each", n)
	}
}
