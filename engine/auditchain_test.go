package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rpm"
)

// TestSealerChainsIngestsInTheBackground: with workers running, the
// engine's sealer chains the audit entries of concurrent ingests shortly
// after they commit, without anyone calling it, and the chain verifies.
func TestSealerChainsIngestsInTheBackground(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	eng := enginetest.StartEngine(t, engine.Config{Pool: w.Pool, RunWorkers: true, Senders: w.Senders,
		WebPushAllowedHosts: []string{"127.0.0.1"}, AuditSealInterval: 20 * time.Millisecond})
	ctx := context.Background()
	errs := make(chan error, 20)
	for i := range 20 {
		go func() {
			_, err := eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID,
				Readings: []rpm.Reading{enginetest.BP(float64(120+i), 80, time.Now().Add(-time.Duration(i)*time.Minute), "")}})
			errs <- err
		}()
	}
	for range 20 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := eng.VerifyAudit(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.Break != nil {
			t.Fatalf("chain broken: %v", r.Break)
		}
		if r.Unsealed == 0 && r.Sealed >= 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %+v", r)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := w.Count(t, `SELECT count(*) FROM audit_entries e JOIN audit_chain c ON c.entry_id = e.id WHERE action = 'reading.create'`); n != 20 {
		t.Fatalf("%d sealed reading.create entries, want 20", n)
	}
}
