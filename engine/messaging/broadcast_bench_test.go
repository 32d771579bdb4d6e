package messaging_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// benchBroadcastPatients is how many patients BenchmarkBroadcast's team has
// (TEND_BENCH_BROADCAST_PATIENTS overrides it).
var benchBroadcastPatients = 10000

// BenchmarkBroadcast measures a broadcast to a care team of 10,000 patients
// through River, as in production: from the POST (Broadcast) until its
// progress reads completed, with the fan-out batches run by the broadcast
// queue's workers. After each broadcast it checks, outside the timer, that
// every patient thread holds exactly one copy. Reported: seconds per
// broadcast and copies per second.
func BenchmarkBroadcast(b *testing.B) {
	if n, err := strconv.Atoi(os.Getenv("TEND_BENCH_BROADCAST_PATIENTS")); err == nil && n > 0 {
		benchBroadcastPatients = n
	}
	w := enginetest.NewWorld(b, false)
	ctx := context.Background()
	eng := w.NewEngineWith(b, engine.Config{RunWorkers: true, FetchCooldown: time.Millisecond})
	makeLead(b, w)
	team := w.Patient.CareTeamID
	addPatients(b, w, team, benchBroadcastPatients-1)
	copies := 0
	b.ResetTimer()
	for b.Loop() {
		bc, err := eng.Broadcast(ctx, w.Clinician, team, engine.NewBroadcast{Body: "The clinic is closed on Monday"})
		if err != nil {
			b.Fatal(err)
		}
		for {
			p, err := eng.GetBroadcast(ctx, w.Clinician, bc.ID)
			if err != nil {
				b.Fatal(err)
			}
			if p.Status == "completed" {
				if p.Done != benchBroadcastPatients || p.Failed != 0 {
					b.Fatalf("completed with %+v", p)
				}
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.StopTimer()
		for th, n := range copiesPerThread(b, w, team, bc.ID) {
			if n != 1 {
				b.Fatalf("thread %s holds %d copies", th, n)
			}
		}
		copies += benchBroadcastPatients
		b.StartTimer()
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/broadcast")
	b.ReportMetric(float64(copies)/b.Elapsed().Seconds(), "copies/s")
}
