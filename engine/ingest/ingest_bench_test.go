package ingest_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rpm"
)

// benchPatients enrols n patients with a device each in w's care team.
func benchPatients(b testing.TB, w *enginetest.World, n int) []engine.Actor {
	b.Helper()
	ctx := context.Background()
	out := make([]engine.Actor, n)
	for i := range out {
		p, err := w.Eng.CreatePatient(ctx, w.Clinician, engine.NewPatient{DisplayName: fmt.Sprintf("P%d", i), Timezone: "UTC",
			CareTeamID: w.Patient.CareTeamID, Programs: []string{"hypertension"}})
		if err != nil {
			b.Fatal(err)
		}
		u, err := w.Eng.CreateUser(ctx, w.Admin, engine.NewUser{Name: "dev", Role: engine.RoleDevice, PatientID: p.ID})
		if err != nil {
			b.Fatal(err)
		}
		out[i] = engine.Actor{UserID: u.ID, Role: engine.RoleDevice, PatientID: p.ID, RequestID: "bench"}
	}
	return out
}

// BenchmarkIngest measures the whole ingest transaction (validation, insert,
// history, rules, audit, commit) against the real database, normal readings,
// from parallel goroutines spread over 200 patients.
func BenchmarkIngest(b *testing.B) {
	for _, c := range []struct{ batch, txs int }{{1, 2}, {1, 4}, {1, 8}, {500, 4}} {
		batch := c.batch
		b.Run(fmt.Sprintf("batch=%d/txs=%d", batch, c.txs), func(b *testing.B) {
			w := enginetest.NewWorld(b, false)
			devs := benchPatients(b, w, 200)
			w.Eng = w.NewEngineWith(b, engine.Config{IngestTransactions: c.txs})
			b.ReportAllocs()
			b.SetParallelism(8)
			var next atomic.Int64
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					d := devs[int(next.Add(1))%len(devs)]
					rs := make([]rpm.Reading, batch)
					now := time.Now()
					for j := range rs {
						// A device's backlog: 10 ms apart, ending now, so one
						// patient's batches do not overlap in time.
						v := float64(60 + j%40)
						rs[j] = rpm.Reading{Kind: rpm.HeartRate, Value: &v, Unit: "/min", ObservedAt: now.Add(-time.Duration(batch-j) * 10 * time.Millisecond)}
					}
					if _, err := w.Eng.Ingest(ctx, d, engine.IngestRequest{PatientID: d.PatientID, Readings: rs, Batch: batch > 1}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "readings/s")
		})
	}
}
