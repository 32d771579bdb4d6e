package engine_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine"
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
	w := newWorld(b, false)
	ctx := context.Background()
	start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	eng := w.newEngineWith(b, engine.Config{Now: func() time.Time { return start }, ReminderInterval: -1})
	if _, err := w.pool.Exec(ctx, `
		WITH p AS (
			INSERT INTO patients (id, display_name, timezone, care_team_id, programs)
			SELECT gen_random_uuid(), 'P' || i, 'Europe/Berlin', $1, '{hypertension}' FROM generate_series(1, $2) i
			RETURNING id)
		INSERT INTO schedules (id, patient_id, type, spec, created_at, updated_at)
		SELECT gen_random_uuid(), p.id, 'medication',
			'{"type": "medication", "medication": "X", "times": ["08:00", "20:00"], "start_date": "2026-05-01"}', $3, $3
		FROM p`, w.patient.CareTeamID, patients, start); err != nil {
		b.Fatal(err)
	}
	var doses int
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		if _, err := w.pool.Exec(ctx, `DELETE FROM doses; DELETE FROM river_job WHERE kind LIKE 'reminder.%'`); err != nil {
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
