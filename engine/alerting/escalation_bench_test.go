package alerting_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// BenchmarkEscalationSweep measures how long 10,000 open critical alerts
// past their acknowledgement deadline take to escalate (step 1: the team's
// lead is notified — a notification per alert; the lead has no device, so
// that push encryption does not compete for the CPU) with one worker
// process. The figure is sweep_s (seconds per sweep) and alerts/s.
//
//	go test -run '^$' -bench BenchmarkEscalationSweep -benchtime 1x ./engine/alerting/
//
// "scheduled" is the production case: the alerts' next steps were due at
// their deadlines, which have passed, and the periodic sweep (every
// Config.EscalationSweepInterval, 2 s by default: the wait for its next run
// is part of the figure) takes them in batches. "available" inserts one
// immediate job per alert (as an undelivered critical alert's first step
// is), measuring that path.
func BenchmarkEscalationSweep(b *testing.B) {
	for _, c := range []struct {
		name     string
		schedule func(context.Context, *engine.Engine, []uuid.UUID) error
	}{
		{"scheduled", func(ctx context.Context, eng *engine.Engine, ids []uuid.UUID) error {
			return eng.Shared().Alerting.ScheduleEscalations(ctx, ids, time.Now().Add(-time.Second))
		}},
		{"available", func(ctx context.Context, eng *engine.Engine, ids []uuid.UUID) error {
			return eng.Shared().Alerting.EnqueueEscalations(ctx, ids, 1)
		}},
	} {
		b.Run(c.name, func(b *testing.B) { benchmarkEscalationSweep(b, c.schedule) })
	}
}

func benchmarkEscalationSweep(b *testing.B, schedule func(context.Context, *engine.Engine, []uuid.UUID) error) {
	const n = 10000
	w := enginetest.NewWorld(b, false)
	ctx := context.Background()
	lead, err := w.Eng.CreateUser(ctx, w.Admin, engine.NewUser{Name: "Dr Lead", Role: engine.RoleClinician})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := w.Eng.UpdateCareTeam(ctx, w.Admin, w.Patient.CareTeamID, engine.CareTeamUpdate{
		Members: []engine.TeamMember{{UserID: w.Clinician.UserID, Role: "clinician"}, {UserID: lead.ID, Role: "lead"}}}); err != nil {
		b.Fatal(err)
	}
	eng := w.NewEngineWith(b, engine.Config{RunWorkers: true})
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		if _, err := w.Pool.Exec(ctx, `UPDATE alerts SET status = 'resolved' WHERE status <> 'resolved'`); err != nil {
			b.Fatal(err)
		}
		rows, err := w.Pool.Query(ctx, `INSERT INTO alerts (id, patient_id, care_team_id, rule_id, rule_version, urgency, urgency_rank,
				title, first_observed_at, last_observed_at, created_at, updated_at)
			SELECT gen_random_uuid(), $1, $2, 'bench-' || $3::int || '-' || g, 1, 'critical', 4, 'Bench', now(), now(), now(), now()
			FROM generate_series(1, $4) g RETURNING id`, w.Patient.ID, w.Patient.CareTeamID, i, n)
		if err != nil {
			b.Fatal(err)
		}
		var ids []uuid.UUID
		for rows.Next() {
			var id uuid.UUID
			if err := rows.Scan(&id); err != nil {
				b.Fatal(err)
			}
			ids = append(ids, id)
		}
		if rows.Err() != nil {
			b.Fatal(rows.Err())
		}
		b.StartTimer()
		start := time.Now()
		if err := schedule(ctx, eng, ids); err != nil {
			b.Fatal(err)
		}
		for {
			var done int
			if err := w.Pool.QueryRow(ctx, `SELECT count(*) FROM alerts WHERE status = 'open' AND escalation_level >= 1`).Scan(&done); err != nil {
				b.Fatal(err)
			}
			if done == n {
				break
			}
			if time.Since(start) > 5*time.Minute {
				b.Fatalf("%d of %d escalated after 5 minutes", done, n)
			}
			time.Sleep(50 * time.Millisecond)
		}
		total += time.Since(start)
	}
	sweep := total.Seconds() / float64(b.N)
	b.ReportMetric(sweep, "sweep_s")
	b.ReportMetric(n/sweep, "alerts/s")
}
