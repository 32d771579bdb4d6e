package reminder_test

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// benchSchedules is how many patients (one twice-daily schedule each)
// BenchmarkMaterialise expands; 2,000 keeps make test short, a larger
// number (TEND_BENCH_SCHEDULES) gives the figure for a large population.
var benchSchedules = 2000

// BenchmarkMaterialise measures the periodic materialisation: patients with
// a twice-daily medication schedule each, 48 hours ahead (4 doses and 8
// unique River jobs per patient per run). Each iteration starts
// from no doses and no jobs. Reported: doses stored per second.
func BenchmarkMaterialise(b *testing.B) {
	patients := benchSchedules
	w := enginetest.NewWorld(b, false)
	ctx := context.Background()
	start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	eng := w.NewEngineWith(b, engine.Config{Now: func() time.Time { return start }, ReminderInterval: -1})
	if _, err := w.Pool.Exec(ctx, `
		WITH p AS (
			INSERT INTO patients (id, display_name, timezone, care_team_id, programs, org_id)
			SELECT gen_random_uuid(), 'P' || i, 'Europe/Berlin', $1, '{hypertension}', '00000000-0000-0000-0000-000000000001' FROM generate_series(1, $2) i
			RETURNING id)
		INSERT INTO schedules (id, patient_id, type, spec, created_at, updated_at)
		SELECT gen_random_uuid(), p.id, 'medication',
			'{"type": "medication", "medication": "X", "times": ["08:00", "20:00"], "start_date": "2026-05-01"}', $3, $3
		FROM p`, w.Patient.CareTeamID, patients, start); err != nil {
		b.Fatal(err)
	}
	var doses int
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		if _, err := w.Pool.Exec(ctx, `DELETE FROM doses; DELETE FROM river_job WHERE kind LIKE 'reminder.%'`); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		n, err := eng.Materialise(ctx)
		if err != nil {
			b.Fatal(err)
		}
		doses += n
	}
	b.ReportMetric(float64(doses)/b.Elapsed().Seconds(), "doses/s")
}

func init() {
	if n, err := strconv.Atoi(os.Getenv("TEND_BENCH_SCHEDULES")); err == nil && n > 0 {
		benchSchedules = n
	}
}

// BenchmarkReminderLateness measures how late reminders are sent at their
// time: 1,000 patients (each with a patient user) take a medication at the
// same minute, so 1,000 reminders fall due at one instant — the whole
// minute's load as one burst, the hardest way to have 1,000 due per minute.
// One worker process runs the jobs with the real clock. Reported: the
// lateness (dose stamped reminded minus its due time) at the 50th and 99th
// percentiles and the worst, in seconds. An iteration waits for the next
// minute at least 20 seconds ahead.
//
//	go test -run '^$' -bench BenchmarkReminderLateness -benchtime 1x ./engine/reminder/
func BenchmarkReminderLateness(b *testing.B) {
	const n = 1000
	w := enginetest.NewWorld(b, false)
	ctx := context.Background()
	eng := w.NewEngineWith(b, engine.Config{RunWorkers: true, ReminderInterval: -1})
	var lateness []float64
	b.StopTimer()
	for i := range b.N {
		due := time.Now().UTC().Add(80 * time.Second).Truncate(time.Minute)
		if _, err := w.Pool.Exec(ctx, `
			WITH p AS (
				INSERT INTO patients (id, display_name, timezone, care_team_id, programs, org_id)
				SELECT gen_random_uuid(), 'L' || $4::int || '-' || g, 'UTC', $1, '{hypertension}', '00000000-0000-0000-0000-000000000001' FROM generate_series(1, $2) g
				RETURNING id),
			u AS (
				INSERT INTO users (id, name, role, patient_id, created_at, org_id) SELECT gen_random_uuid(), 'U', 'patient', p.id, $3, '00000000-0000-0000-0000-000000000001' FROM p)
			INSERT INTO schedules (id, patient_id, type, spec, created_at, updated_at)
			SELECT gen_random_uuid(), p.id, 'medication',
				jsonb_build_object('type', 'medication', 'medication', 'X', 'times', jsonb_build_array(to_char($5::timestamptz AT TIME ZONE 'UTC', 'HH24:MI')),
					'start_date', to_char($5::timestamptz AT TIME ZONE 'UTC' - interval '1 day', 'YYYY-MM-DD')), $3, $3
			FROM p`, w.Patient.CareTeamID, n, time.Now(), i, due); err != nil {
			b.Fatal(err)
		}
		if _, err := eng.Materialise(ctx); err != nil {
			b.Fatal(err)
		}
		count := func(sql string) int {
			var k int
			if err := w.Pool.QueryRow(ctx, sql, due).Scan(&k); err != nil {
				b.Fatal(err)
			}
			return k
		}
		if k := count(`SELECT count(*) FROM doses WHERE due_at = $1`); k != n {
			b.Fatalf("%d doses due at %s, want %d", k, due, n)
		}
		time.Sleep(time.Until(due) - time.Second)
		b.StartTimer()
		for count(`SELECT count(*) FROM doses WHERE due_at = $1 AND reminded_at IS NOT NULL`) < n {
			if time.Since(due) > 2*time.Minute {
				b.Fatalf("reminders not all sent 2 minutes after their time")
			}
			time.Sleep(50 * time.Millisecond)
		}
		b.StopTimer()
		rows, err := w.Pool.Query(ctx, `SELECT extract(epoch FROM reminded_at - due_at)::float8 FROM doses WHERE due_at = $1`, due)
		if err != nil {
			b.Fatal(err)
		}
		late, err := pgx.CollectRows(rows, pgx.RowTo[float64])
		if err != nil {
			b.Fatal(err)
		}
		lateness = append(lateness, late...)
	}
	slices.Sort(lateness)
	at := func(q float64) float64 { return lateness[min(len(lateness)-1, int(q*float64(len(lateness))))] }
	b.ReportMetric(at(0.50), "p50_s")
	b.ReportMetric(at(0.99), "p99_s")
	b.ReportMetric(lateness[len(lateness)-1], "max_s")
}
