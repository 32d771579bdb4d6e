package alerting_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// escalationWorld is w's team with a lead, a second clinician on call
// around the clock, and a policy: critical alerts wait 5 minutes per level,
// levels on_call, leads, all. It returns the lead and the on-call
// clinician.
func escalationWorld(t *testing.T, w *enginetest.World, eng *engine.Engine) (lead, onCall engine.Actor) {
	t.Helper()
	lead = enginetest.AddClinician(t, w, "Dr Lead")
	onCall = enginetest.AddClinician(t, w, "Dr On Call")
	var slots []engine.OnCallSlot
	for _, d := range []string{"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"} {
		slots = append(slots, engine.OnCallSlot{UserID: onCall.UserID, Weekday: d, Start: "00:00", End: "24:00"})
	}
	if _, err := eng.UpdateCareTeam(context.Background(), w.Admin, w.Patient.CareTeamID, engine.CareTeamUpdate{
		Members: []engine.TeamMember{{UserID: w.Clinician.UserID, Role: "clinician"}, {UserID: lead.UserID, Role: "lead"},
			{UserID: onCall.UserID, Role: "clinician"}},
		OnCall: slots,
		Escalation: &engine.EscalationInput{AckDeadlines: map[string]string{"critical": "5m", "high": "30m"},
			Levels: []string{"on_call", "leads", "all"}},
	}); err != nil {
		t.Fatal(err)
	}
	return lead, onCall
}

// escWorld is a World with an engine on a settable clock and
// escalationWorld's team.
type escWorld struct {
	*enginetest.World
	eng          *engine.Engine
	clk          *enginetest.Clock
	lead, onCall engine.Actor
}

// newEscalation builds an escWorld; the engine has cfg's settings.
func newEscalation(t *testing.T, cfg engine.Config) *escWorld {
	t.Helper()
	w := enginetest.NewWorld(t, false)
	eng, clk := w.NewClockedEngine(t, time.Time{}, cfg)
	lead, onCall := escalationWorld(t, w, eng)
	return &escWorld{World: w, eng: eng, clk: clk, lead: lead, onCall: onCall}
}

// escalationDue returns when alert id's next escalation step is due (nil:
// none is pending).
func escalationDue(t *testing.T, w *enginetest.World, id uuid.UUID) *time.Time {
	t.Helper()
	var due *time.Time
	if err := w.Pool.QueryRow(context.Background(), `SELECT escalation_due_at FROM alerts WHERE id = $1`, id).Scan(&due); err != nil {
		t.Fatal(err)
	}
	return due
}

// wantDue fails unless alert id's next step is due at want (zero: none).
func wantDue(t *testing.T, w *enginetest.World, id uuid.UUID, want time.Time) {
	t.Helper()
	due := escalationDue(t, w, id)
	switch {
	case want.IsZero() && due != nil:
		t.Errorf("next step due at %s, want none", due)
	case !want.IsZero() && (due == nil || !due.Equal(want)):
		t.Errorf("next step due at %v, want %s", due, want)
	}
}

// sweep runs the escalation sweep and fails unless it took want steps.
func sweep(t *testing.T, eng *engine.Engine, want int) {
	t.Helper()
	n, err := eng.Shared().Alerting.Sweep(context.Background())
	if err != nil || n != want {
		t.Fatalf("sweep took %d steps (%v), want %d", n, err, want)
	}
}

func notifiedCount(t *testing.T, w *enginetest.World, id, user uuid.UUID) int {
	t.Helper()
	return w.Count(t, `SELECT count(*) FROM notifications WHERE alert_id = $1 AND user_id = $2 AND type = 'alert'`, id, user)
}

// Unacknowledged, a critical alert first paged to who is on call escalates
// at each deadline to the next level (leads, then everyone not yet told),
// then is flagged escalation_exhausted; every step is an event of the
// alert; a step is taken once.
func TestEscalationWalksTheLevels(t *testing.T) {
	t.Parallel()
	e := newEscalation(t, engine.Config{})
	w, eng, clk, lead, onCall := e.World, e.eng, e.clk, e.lead, e.onCall
	ctx := context.Background()
	t0 := clk.Now()
	id := enginetest.RaiseCritical(t, w, eng, t0.Add(-time.Minute))
	if n := notifiedCount(t, w, id, lead.UserID) + notifiedCount(t, w, id, w.Clinician.UserID); n != 0 {
		t.Fatalf("the lead or the clinician off call was paged first (%d)", n)
	}
	if n := notifiedCount(t, w, id, onCall.UserID); n != 1 {
		t.Fatalf("the on-call clinician was paged %d times first, want 1", n)
	}
	wantDue(t, w, id, t0.Add(5*time.Minute))

	// A second before the deadline the sweep finds nothing; at it, step 1.
	clk.Advance(5*time.Minute - time.Second)
	sweep(t, eng, 0)
	if n := notifiedCount(t, w, id, lead.UserID); n != 0 {
		t.Fatalf("lead notified %d times before the deadline", n)
	}
	clk.Advance(time.Second)
	sweep(t, eng, 1)
	sweep(t, eng, 0)
	if ok, err := eng.Shared().Alerting.Escalate(ctx, id, 1); err != nil || ok {
		t.Fatalf("step 1 again = %v, %v", ok, err)
	}
	if n := notifiedCount(t, w, id, lead.UserID); n != 1 {
		t.Errorf("lead notified %d times at step 1, want 1", n)
	}
	wantDue(t, w, id, t0.Add(10*time.Minute))
	clk.Advance(5 * time.Minute)
	sweep(t, eng, 1)
	if n := notifiedCount(t, w, id, w.Clinician.UserID); n != 1 {
		t.Errorf("clinician off call notified %d times after step 2 (all), want 1", n)
	}
	if a, b := notifiedCount(t, w, id, onCall.UserID), notifiedCount(t, w, id, lead.UserID); a != 1 || b != 1 {
		t.Errorf("step 2 paged again those already told: on call %d, lead %d", a, b)
	}
	wantDue(t, w, id, t0.Add(15*time.Minute))
	clk.Advance(5 * time.Minute)
	sweep(t, eng, 1)
	d, err := eng.GetAlert(ctx, w.Clinician, id)
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
	if want := []string{"escalated", "escalated", "escalation_exhausted"}; !slices.Equal(steps, want) {
		t.Errorf("escalation events %v, want %v", steps, want)
	}
	wantDue(t, w, id, time.Time{})
	clk.Advance(time.Hour)
	sweep(t, eng, 0)
	// A due time left on an exhausted alert is cleared, not swept forever.
	if err := eng.Shared().Alerting.ScheduleEscalations(ctx, []uuid.UUID{id}, clk.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	sweep(t, eng, 0)
	wantDue(t, w, id, time.Time{})
	if n := w.Count(t, `SELECT count(*) FROM river_job WHERE kind = 'alerting.escalate'`); n != 0 {
		t.Errorf("%d escalation jobs: steps at a deadline need none", n)
	}
}

// Acknowledging cancels the pending steps: the job finds the alert
// acknowledged and does nothing.
func TestAckStopsEscalation(t *testing.T) {
	t.Parallel()
	e := newEscalation(t, engine.Config{})
	w, eng, clk, lead := e.World, e.eng, e.clk, e.lead
	ctx := context.Background()
	id := enginetest.RaiseCritical(t, w, eng, clk.Now().Add(-time.Minute))
	clk.Advance(3 * time.Minute)
	if _, err := eng.AckAlert(ctx, w.Clinician, id, "on it"); err != nil {
		t.Fatal(err)
	}
	wantDue(t, w, id, time.Time{})
	clk.Advance(2 * time.Minute)
	sweep(t, eng, 0)
	if ok, err := eng.Shared().Alerting.Escalate(ctx, id, 1); err != nil || ok {
		t.Fatalf("step 1 after ack = %v, %v", ok, err)
	}
	if n := notifiedCount(t, w, id, lead.UserID); n != 0 {
		t.Errorf("lead notified %d times after an ack", n)
	}
	if n := w.Count(t, `SELECT count(*) FROM alert_events WHERE alert_id = $1 AND action = 'escalated'`, id); n != 0 {
		t.Errorf("%d escalation events after an ack", n)
	}
}

// A snoozed alert is not escalated while snoozed; when its snooze ends the
// escalation resumes where it stopped, at once when its step came due
// meanwhile. Resolving cancels what is pending.
func TestSnoozePausesEscalation(t *testing.T) {
	t.Parallel()
	e := newEscalation(t, engine.Config{})
	w, eng, clk, lead := e.World, e.eng, e.clk, e.lead
	ctx := context.Background()
	t0 := clk.Now()
	id := enginetest.RaiseCritical(t, w, eng, t0.Add(-time.Minute))
	if _, err := eng.SnoozeAlert(ctx, w.Clinician, id, t0.Add(30*time.Minute), ""); err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Minute) // step 1 was due at 5 minutes
	sweep(t, eng, 0)
	if n := notifiedCount(t, w, id, lead.UserID); n != 0 {
		t.Fatalf("lead notified %d times while the alert was snoozed", n)
	}
	clk.Advance(20 * time.Minute)
	if ended, err := eng.EndSnooze(ctx, id); err != nil || !ended {
		t.Fatalf("EndSnooze = %v, %v", ended, err)
	}
	sweep(t, eng, 1)
	if n := notifiedCount(t, w, id, lead.UserID); n != 1 {
		t.Errorf("lead notified %d times after the snooze ended, want 1", n)
	}
	wantDue(t, w, id, clk.Now().Add(5*time.Minute))
	if _, err := eng.ResolveAlert(ctx, w.Clinician, id, "called_patient", ""); err != nil {
		t.Fatal(err)
	}
	wantDue(t, w, id, time.Time{})
	clk.Advance(time.Hour)
	sweep(t, eng, 0)
}

// Two workers (two engines, as two processes) racing the same step
// escalate once.
func TestRacingWorkersEscalateOnce(t *testing.T) {
	t.Parallel()
	e := newEscalation(t, engine.Config{})
	w, eng1, clk, lead := e.World, e.eng, e.clk, e.lead
	eng2 := w.NewEngineWith(t, engine.Config{Now: clk.Now})
	ctx := context.Background()
	id := enginetest.RaiseCritical(t, w, eng1, clk.Now().Add(-time.Minute))
	clk.Advance(5 * time.Minute)
	took := enginetest.Race(t, 8, [2]*engine.Engine{eng1, eng2}, func(eng *engine.Engine) (int, error) {
		ok, err := eng.Shared().Alerting.Escalate(ctx, id, 1)
		if ok {
			return 1, err
		}
		return 0, err
	})
	if took != 1 {
		t.Errorf("%d workers took step 1, want 1", took)
	}
	if n := notifiedCount(t, w, id, lead.UserID); n != 1 {
		t.Errorf("lead notified %d times, want 1", n)
	}
	if n := w.Count(t, `SELECT count(*) FROM alert_events WHERE alert_id = $1 AND action = 'escalated'`, id); n != 1 {
		t.Errorf("%d escalation events, want 1", n)
	}
	wantDue(t, w, id, clk.Now().Add(5*time.Minute))
}

// Two processes sweeping the same overdue alerts at once take each alert's
// step once: every alert is escalated, none twice.
func TestRacingSweepsEscalateOnce(t *testing.T) {
	t.Parallel()
	const n = 600 // more than two batches per sweep
	e := newEscalation(t, engine.Config{})
	w, eng1, clk, lead := e.World, e.eng, e.clk, e.lead
	eng2 := w.NewEngineWith(t, engine.Config{Now: clk.Now})
	ctx := context.Background()
	rows, err := w.Pool.Query(ctx, `INSERT INTO alerts (id, patient_id, care_team_id, rule_id, rule_version, urgency, urgency_rank,
			title, first_observed_at, last_observed_at, created_at, updated_at)
		SELECT gen_random_uuid(), $1, $2, 'race-' || g, 1, 'critical', 4, 'Race', $3, $3, $3, $3
		FROM generate_series(1, $4) g RETURNING id`, w.Patient.ID, w.Patient.CareTeamID, clk.Now(), n)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		t.Fatal(err)
	}
	if err := eng1.Shared().Alerting.ScheduleEscalations(ctx, ids, clk.Now().Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(5 * time.Minute)
	took := enginetest.Race(t, 4, [2]*engine.Engine{eng1, eng2}, func(eng *engine.Engine) (int, error) { return eng.Shared().Alerting.Sweep(ctx) })
	if took != n {
		t.Errorf("the sweeps took %d steps, want %d", took, n)
	}
	if k := w.Count(t, `SELECT count(*) FROM alerts WHERE id = ANY($1) AND escalation_level = 1`, ids); k != n {
		t.Errorf("%d of %d alerts escalated", k, n)
	}
	if k := w.Count(t, `SELECT count(*) FROM (SELECT alert_id FROM alert_events WHERE alert_id = ANY($1) AND action = 'escalated'
			GROUP BY alert_id HAVING count(*) = 1) x`, ids); k != n {
		t.Errorf("%d of %d alerts have exactly one escalation event", k, n)
	}
	if k := w.Count(t, `SELECT count(*) FROM (SELECT alert_id FROM notifications WHERE alert_id = ANY($1) AND user_id = $2
			GROUP BY alert_id HAVING count(*) = 1) x`, ids, lead.UserID); k != n {
		t.Errorf("the lead was notified once of %d of %d alerts", k, n)
	}
}

// A critical alert that reaches no device escalates at once.
func TestUndeliveredCriticalEscalatesAtOnce(t *testing.T) {
	t.Parallel()
	e := newEscalation(t, engine.Config{})
	w, eng, clk := e.World, e.eng, e.clk
	if _, err := w.Pool.Exec(context.Background(), `UPDATE devices SET enabled = false`); err != nil {
		t.Fatal(err)
	}
	// The clock runs a day ahead: a job at the clock's deadline would wait.
	clk.Advance(24 * time.Hour)
	id := enginetest.RaiseCritical(t, w, eng, clk.Now().Add(-time.Minute))
	wantDue(t, w, id, clk.Now())
	if n := w.Count(t, `SELECT count(*) FROM river_job WHERE kind = 'alerting.escalate' AND state = 'available'
			AND args->>'alert_id' = $1 AND (args->>'step')::int = 1 AND scheduled_at <= now()`, id.String()); n != 1 {
		t.Errorf("%d available jobs for step 1, want 1 (not waiting for a deadline or the scheduler)", n)
	}
	// The job and the sweep both try it: step 1 is taken once.
	if ok, err := eng.Shared().Alerting.Escalate(context.Background(), id, 1); err != nil || !ok {
		t.Fatalf("step 1 = %v, %v", ok, err)
	}
	sweep(t, eng, 0)
}

// With workers running, the periodic sweep walks an unacknowledged alert
// through every level as the clock passes each deadline.
func TestEscalationJobsRun(t *testing.T) {
	t.Parallel()
	e := newEscalation(t, engine.Config{RunWorkers: true, EscalationSweepInterval: 100 * time.Millisecond})
	w, eng, clk, lead := e.World, e.eng, e.clk, e.lead
	ctx := context.Background()
	id := enginetest.RaiseCritical(t, w, eng, clk.Now().Add(-time.Minute))
	enginetest.WaitFor(t, func() bool {
		clk.Advance(time.Minute)
		d, err := eng.GetAlert(ctx, w.Clinician, id)
		return err == nil && d.EscalationExhausted
	})
	if n := notifiedCount(t, w, id, lead.UserID) + notifiedCount(t, w, id, w.Clinician.UserID); n != 2 {
		t.Errorf("lead and clinician off call notified %d times in all, want once each", n)
	}
}

// skipWorld is a World on a settable clock whose team has a lead, the
// World's clinician (never online here) and a second clinician, and a
// policy (critical alerts wait 5 minutes per level; levels on_call, leads,
// all) with skip_offline_first_step as given. Nobody is on call, so a
// critical alert's first page is every clinician's.
type skipWorld struct {
	*enginetest.World
	eng                 *engine.Engine
	clk                 *enginetest.Clock
	lead, online, other engine.Actor
}

func newSkipWorld(t *testing.T, skip bool) *skipWorld {
	t.Helper()
	w := enginetest.NewWorld(t, false)
	eng, clk := w.NewClockedEngine(t, time.Time{}, engine.Config{})
	s := &skipWorld{World: w, eng: eng, clk: clk, lead: enginetest.AddClinician(t, w, "Dr Lead"),
		online: enginetest.AddClinician(t, w, "Dr Online"), other: w.Clinician}
	if _, err := eng.UpdateCareTeam(context.Background(), w.Admin, w.Patient.CareTeamID, engine.CareTeamUpdate{
		Members: []engine.TeamMember{{UserID: s.other.UserID, Role: "clinician"}, {UserID: s.lead.UserID, Role: "lead"},
			{UserID: s.online.UserID, Role: "clinician"}},
		Escalation: &engine.EscalationInput{AckDeadlines: map[string]string{"critical": "5m", "high": "30m"},
			Levels: []string{"on_call", "leads", "all"}, SkipOfflineFirstStep: skip},
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

// connect makes a online: their client holds the live stream (a presence
// heartbeat row of this process) until the test ends.
func (s *skipWorld) connect(t *testing.T, a engine.Actor) {
	t.Helper()
	sub, err := s.eng.Subscribe(context.Background(), a, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
}

// deliveries counts the River delivery jobs of alert id to user's devices.
func (s *skipWorld) deliveries(t *testing.T, id, user uuid.UUID) int {
	t.Helper()
	return s.Count(t, `SELECT count(*) FROM river_job j JOIN notifications n ON n.id = (j.args->>'notification_id')::uuid
		WHERE j.kind = 'notify.deliver' AND n.alert_id = $1 AND n.user_id = $2`, id, user)
}

// TestSkipOfflineFirstStep: the escalation setting "skip offline clinicians
// for the first step", with presence from real stream subscriptions, the
// page recorded in Postgres and its deliveries queued in River.
//   - off (the default): an offline clinician is paged with the online one;
//   - on: the online clinician is paged first and the offline one is not
//     (no notification, no delivery job); escalation step 1 pages the one
//     left out, with the leads;
//   - on, with nobody online: the first page goes to every clinician, as
//     without the setting — a page is never dropped.
func TestSkipOfflineFirstStep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		s := newSkipWorld(t, false)
		s.connect(t, s.online)
		id := enginetest.RaiseCritical(t, s.World, s.eng, s.clk.Now().Add(-time.Minute))
		for _, a := range []engine.Actor{s.online, s.other} {
			if n, d := notifiedCount(t, s.World, id, a.UserID), s.deliveries(t, id, a.UserID); n != 1 || d != 1 {
				t.Errorf("clinician %s: %d notifications, %d delivery jobs; want 1 and 1", a.UserID, n, d)
			}
		}
	})
	t.Run("on", func(t *testing.T) {
		t.Parallel()
		s := newSkipWorld(t, true)
		s.connect(t, s.online)
		t0 := s.clk.Now()
		id := enginetest.RaiseCritical(t, s.World, s.eng, t0.Add(-time.Minute))
		if n, d := notifiedCount(t, s.World, id, s.online.UserID), s.deliveries(t, id, s.online.UserID); n != 1 || d != 1 {
			t.Errorf("the online clinician: %d notifications, %d delivery jobs; want 1 and 1", n, d)
		}
		if n, d := notifiedCount(t, s.World, id, s.other.UserID), s.deliveries(t, id, s.other.UserID); n != 0 || d != 0 {
			t.Errorf("the offline clinician was paged first: %d notifications, %d delivery jobs", n, d)
		}
		if n := notifiedCount(t, s.World, id, s.lead.UserID); n != 0 {
			t.Errorf("the lead was paged first (%d)", n)
		}
		wantDue(t, s.World, id, t0.Add(5*time.Minute))
		// Step 1 (leads) also pages the clinician the first page left out;
		// the online one is not paged again.
		s.clk.Advance(5 * time.Minute)
		sweep(t, s.eng, 1)
		for _, a := range []engine.Actor{s.other, s.lead, s.online} {
			if n := notifiedCount(t, s.World, id, a.UserID); n != 1 {
				t.Errorf("after step 1, %s was paged %d times, want 1", a.UserID, n)
			}
		}
		if d := s.deliveries(t, id, s.other.UserID); d != 1 {
			t.Errorf("step 1 queued %d deliveries to the clinician left out, want 1", d)
		}
		if n := s.Count(t, `SELECT count(*) FROM alert_events WHERE alert_id = $1 AND action = 'escalated'
			AND detail->>'notified' = '2' AND detail->>'level' = 'leads'`, id); n != 1 {
			t.Errorf("step 1's event does not record 2 notified at level leads (%d)", n)
		}
	})
	t.Run("on, nobody online", func(t *testing.T) {
		t.Parallel()
		s := newSkipWorld(t, true)
		// Online once, long ago: a stale heartbeat does not count.
		s.connect(t, s.online)
		s.clk.Advance(time.Minute)
		id := enginetest.RaiseCritical(t, s.World, s.eng, s.clk.Now().Add(-time.Minute))
		for _, a := range []engine.Actor{s.online, s.other} {
			if n, d := notifiedCount(t, s.World, id, a.UserID), s.deliveries(t, id, a.UserID); n != 1 || d != 1 {
				t.Errorf("clinician %s: %d notifications, %d delivery jobs; want 1 and 1", a.UserID, n, d)
			}
		}
		var skip bool
		if err := s.Pool.QueryRow(ctx, `SELECT (escalation->>'skip_offline_first_step')::bool FROM care_teams WHERE id = $1`,
			s.Patient.CareTeamID).Scan(&skip); err != nil || !skip {
			t.Errorf("the team's stored policy: skip_offline_first_step %v (%v)", skip, err)
		}
	})
}
