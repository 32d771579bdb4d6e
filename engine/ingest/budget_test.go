package ingest_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/engine/internal/pgtest"
	"github.com/tendhealth/tend/rpm"
)

// The ingest budget: what one group commit may cost Postgres, whatever the
// number of readings in it. A change that needs more raises a figure here in
// a commit of its own, with the measured figure in its message.
const (
	// Normal readings: the scopes, parameters and retakes; then the locks,
	// readings and audit entries as one pipeline (an implicit transaction).
	ingestRoundTrips = 2
	// The scope query, the lock, the readings' insert, the audit entries.
	ingestStatements = 4
	// A reading that raises an alert (no one to page): the scopes; BEGIN
	// with the store batch and the history; the alert's upsert; its
	// findings, events and audit entries; COMMIT.
	alertRoundTrips = 5
	alertStatements = 12
)

// TestIngestBudget counts the round trips and statements of each group
// commit for 1, 10 and 100 concurrent single readings and for a batch of
// 500, with a pgx tracer on the engine's pool, and fails when one exceeds
// the budget above.
func TestIngestBudget(t *testing.T) {
	t.Parallel()
	var counter pgtest.Counter
	pool := pgtest.NewPool(t, engine.ConfigurePool, counter.Trace, func(c *pgxpool.Config) { c.MaxConns = 20 })
	// AuthCacheTTL -1: no revocation watcher, whose poll would land in
	// the counted window.
	eng := enginetest.StartEngine(t, engine.Config{Pool: pool, RulesRefresh: -1, AuthCacheTTL: -1})
	devs := budgetPatients(t, eng, 100)
	ctx := context.Background()
	at := time.Now().Add(-time.Hour).Truncate(time.Second)

	ingestAll := func(n, perRequest int, sys float64) {
		t.Helper()
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				rs := make([]rpm.Reading, perRequest)
				for k := range rs {
					at := at.Add(time.Duration(k) * time.Millisecond)
					rs[k] = rpm.Reading{Kind: rpm.BloodPressure, Systolic: ptr(sys), Diastolic: ptr(76), Unit: "mm[Hg]", ObservedAt: at}
					// Normal readings are a device's usual mix, as in tend
					// load: an SpO2 costs a hypertension patient no
					// baseline, and so no transaction, either.
					switch (i + k) % 3 {
					case 1:
						if sys < 140 {
							rs[k] = rpm.Reading{Kind: rpm.SpO2, Value: ptr(96), Unit: "%", ObservedAt: at}
						}
					case 2:
						if sys < 140 {
							rs[k] = rpm.Reading{Kind: rpm.HeartRate, Value: ptr(72), Unit: "/min", ObservedAt: at}
						}
					}
				}
				d := devs[i%len(devs)]
				if _, err := eng.Ingest(ctx, d, engine.IngestRequest{PatientID: d.PatientID, Readings: rs, Batch: perRequest > 1}); err != nil {
					t.Errorf("ingest: %v", err)
				}
			})
		}
		wg.Wait()
		at = at.Add(time.Second)
	}
	// Every connection prepares its statements once: not part of the budget.
	for range 3 {
		ingestAll(100, 1, 118)
	}
	ingestAll(1, 500, 118)
	ingestAll(10, 1, 245)

	for _, c := range []struct{ concurrent, perRequest int }{{1, 1}, {10, 1}, {100, 1}, {1, 500}} {
		counter.Reset()
		ingestAll(c.concurrent, c.perRequest, 118)
		got := counter.Count()
		groups := got.Contains("pg_advisory_xact_lock")
		if groups == 0 || groups > c.concurrent {
			t.Fatalf("%d×%d: %d group commits traced", c.concurrent, c.perRequest, groups)
		}
		rt := got.RoundTrips - got.Prepares
		if rt > ingestRoundTrips*groups || got.Statements > ingestStatements*groups {
			t.Errorf("%d concurrent ingests of %d readings: %d group commits took %d round trips and %d statements, budget %d and %d each:\n%s",
				c.concurrent, c.perRequest, groups, rt, got.Statements, ingestRoundTrips, ingestStatements, strings.Join(got.SQL, "\n"))
		}
		t.Logf("%d concurrent × %d readings: %d group commits, %d round trips, %d statements",
			c.concurrent, c.perRequest, groups, rt, got.Statements)
	}

	// A critical reading raises an alert and routes it: a transaction.
	counter.Reset()
	ingestAll(1, 1, 245)
	got := counter.Count()
	if rt := got.RoundTrips - got.Prepares; rt > alertRoundTrips || got.Statements > alertStatements {
		t.Errorf("an ingest raising an alert took %d round trips and %d statements, budget %d and %d:\n%s",
			rt, got.Statements, alertRoundTrips, alertStatements, strings.Join(got.SQL, "\n"))
	}
	t.Logf("1 critical reading: %d round trips, %d statements:\n%s", got.RoundTrips-got.Prepares, got.Statements, strings.Join(got.SQL, "\n"))
}

func ptr(v float64) *float64 { return &v }

// budgetPatients enrols n patients of one care team, each with a device.
func budgetPatients(t *testing.T, eng *engine.Engine, n int) []engine.Actor {
	t.Helper()
	ctx := context.Background()
	admin := engine.System("test")
	team, err := eng.CreateCareTeam(ctx, admin, engine.NewCareTeam{Name: "Budget"})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]engine.Actor, n)
	for i := range out {
		p, err := eng.CreatePatient(ctx, admin, engine.NewPatient{DisplayName: fmt.Sprintf("P%d", i), Timezone: "UTC",
			CareTeamID: team.ID, Programs: []string{"hypertension"}})
		if err != nil {
			t.Fatal(err)
		}
		u, err := eng.CreateUser(ctx, admin, engine.NewUser{Name: "dev", Role: engine.RoleDevice, PatientID: p.ID})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = engine.Actor{UserID: u.ID, Role: engine.RoleDevice, PatientID: p.ID, RequestID: "budget"}
	}
	return out
}
