package ingest_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rpm"
)

// TestConcurrentIngestsShareTransactionsCorrectly floods the engine with
// concurrent ingests — many patients, the same patient from several callers,
// and strangers out of scope — so that groups form, and checks each caller
// got exactly its own outcome.
func TestConcurrentIngestsShareTransactionsCorrectly(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	devs := benchPatients(t, w, 12)
	stranger := engine.Actor{UserID: uuid.New(), Role: engine.RoleDevice, PatientID: uuid.New()}
	base := time.Now().Add(-time.Hour)

	type outcome struct {
		dev   engine.Actor
		res   engine.IngestResult
		err   error
		crit  bool
		alien bool
	}
	var mu sync.Mutex
	var outcomes []outcome
	var wg sync.WaitGroup
	for round := range 10 {
		for i, d := range devs {
			wg.Go(func() {
				at := base.Add(time.Duration(round*100+i) * time.Second)
				sys := 120.0
				crit := round == 3 && i%4 == 0
				if crit {
					sys = 205
				}
				res, err := w.Eng.Ingest(ctx, d, engine.IngestRequest{PatientID: d.PatientID, Readings: []rpm.Reading{enginetest.BP(sys, 80, at, "")}})
				mu.Lock()
				outcomes = append(outcomes, outcome{dev: d, res: res, err: err, crit: crit})
				mu.Unlock()
			})
		}
		wg.Go(func() {
			_, err := w.Eng.Ingest(ctx, stranger, engine.IngestRequest{PatientID: devs[0].PatientID, Readings: []rpm.Reading{enginetest.BP(120, 80, base, "")}})
			mu.Lock()
			outcomes = append(outcomes, outcome{err: err, alien: true})
			mu.Unlock()
		})
	}
	wg.Wait()
	ids := map[uuid.UUID]bool{}
	for _, o := range outcomes {
		if o.alien {
			if !errors.Is(o.err, engine.ErrNotFound) {
				t.Errorf("out-of-scope ingest: err = %v, want ErrNotFound", o.err)
			}
			continue
		}
		if o.err != nil {
			t.Errorf("ingest for %s: %v", o.dev.PatientID, o.err)
			continue
		}
		if len(o.res.Readings) != 1 || o.res.Readings[0].Status != "created" || ids[o.res.Readings[0].ID] {
			t.Errorf("readings = %+v", o.res.Readings)
		}
		ids[o.res.Readings[0].ID] = true
		if o.crit != (len(o.res.Alerts) == 1) {
			t.Errorf("critical=%v but alerts = %+v", o.crit, o.res.Alerts)
		}
	}
	if n := w.Count(t, `SELECT count(*) FROM readings`); n != 120 {
		t.Errorf("%d readings stored, want 120", n)
	}
	if n := w.Count(t, `SELECT count(*) FROM readings WHERE patient_id <> ALL($1)`, patientIDs(devs)); n != 0 {
		t.Errorf("%d readings stored for the wrong patient", n)
	}
	if n := w.Count(t, `SELECT count(*) FROM audit_entries WHERE action = 'reading.create'`); n != 120 {
		t.Errorf("%d reading.create audit entries, want one per successful ingest (120)", n)
	}
	if n := w.Count(t, `SELECT count(*) FROM alerts WHERE rule_id = 'bp-crisis'`); n != 3 {
		t.Errorf("%d bp-crisis alerts, want 3", n)
	}
}

func TestCancelledIngestWritesNothingOrEverything(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := w.Eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID, Readings: []rpm.Reading{enginetest.BP(120, 80, time.Now(), "c:1")}})
	n := w.Count(t, `SELECT count(*) FROM readings`)
	if (err == nil) != (n == 1) {
		t.Errorf("err = %v with %d readings stored: a cancelled ingest must report what happened", err, n)
	}
}

func patientIDs(devs []engine.Actor) []uuid.UUID {
	out := make([]uuid.UUID, len(devs))
	for i, d := range devs {
		out[i] = d.PatientID
	}
	return out
}
