package messaging_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/e2ee"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/engine/internal/pgtest"
)

// The posting budget: what one group commit of posts may cost Postgres,
// however many posts it holds. A change that needs more raises a figure here
// in a commit of its own, with the measured figure in its message.
const (
	// BEGIN; the threads' locks with scope and client ids; the numbering;
	// the messages, receipts, events and audit entries; the push jobs (a
	// COPY); COMMIT.
	postRoundTrips = 6
	// Those as one statement each: BEGIN, lock, scope, number, messages,
	// receipts, events, audit, COPY, COMMIT.
	postStatements = 10
)

// TestMessagePostBudget counts the round trips and statements of each group
// commit for 1, 10 and 100 concurrent posts (each patient in their own
// thread), with a pgx tracer on the engine's pool.
func TestMessagePostBudget(t *testing.T) {
	t.Parallel()
	var counter pgtest.Counter
	pool := pgtest.NewPool(t, engine.ConfigurePool, counter.Trace, func(c *pgxpool.Config) { c.MaxConns = 20 })
	// AuthCacheTTL -1: no revocation watcher, whose poll would land in
	// the counted window.
	eng := enginetest.StartEngine(t, engine.Config{Pool: pool, RulesRefresh: -1, AuthCacheTTL: -1})
	ctx := context.Background()
	posters := budgetPosters(t, eng, 100)
	postAll := func(n int) {
		t.Helper()
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				p := posters[i]
				if _, err := eng.PostMessage(ctx, p.actor, p.thread.ID, engine.NewMessage{Body: "How should I take the new tablets?"}); err != nil {
					t.Errorf("post: %v", err)
				}
			})
		}
		wg.Wait()
	}
	for range 3 { // every connection prepares its statements once
		postAll(100)
	}
	for _, n := range []int{1, 10, 100} {
		counter.Reset()
		postAll(n)
		checkBudget(t, n, counter.Count(), postRoundTrips, postStatements)
	}
}

// poster is a patient who posts in their own thread.
type poster struct {
	actor  engine.Actor
	thread engine.Thread
}

// budgetPosters makes n patients of a care team with no members, each
// alone in their thread.
func budgetPosters(t *testing.T, eng *engine.Engine, n int) []poster {
	t.Helper()
	ctx := context.Background()
	admin := engine.System("test")
	team, err := eng.CreateCareTeam(ctx, admin, engine.NewCareTeam{Name: "Budget"})
	if err != nil {
		t.Fatal(err)
	}
	posters := make([]poster, n)
	for i := range posters {
		p, err := eng.CreatePatient(ctx, admin, engine.NewPatient{DisplayName: fmt.Sprintf("P%d", i), Timezone: "UTC", CareTeamID: team.ID})
		if err != nil {
			t.Fatal(err)
		}
		u, err := eng.CreateUser(ctx, admin, engine.NewUser{Name: "pat", Role: engine.RolePatient, PatientID: p.ID})
		if err != nil {
			t.Fatal(err)
		}
		a := engine.Actor{UserID: u.ID, Role: engine.RolePatient, PatientID: p.ID, RequestID: "budget"}
		threads, _, err := eng.ListThreads(ctx, a, engine.ThreadFilter{})
		if err != nil || len(threads) != 1 {
			t.Fatalf("threads = %v, %v", threads, err)
		}
		posters[i] = poster{a, threads[0]}
	}
	return posters
}

// checkBudget fails t when counted, the statements sent for n concurrent
// posts, exceed roundTrips and statements per group commit.
func checkBudget(t *testing.T, n int, got pgtest.Count, roundTrips, statements int) {
	t.Helper()
	groups := got.Contains("FOR UPDATE")
	if groups == 0 || groups > n {
		t.Fatalf("%d posts: %d group commits traced", n, groups)
	}
	rt := got.RoundTrips - got.Prepares
	if rt > roundTrips*groups || got.Statements > statements*groups {
		t.Errorf("%d concurrent posts: %d group commits took %d round trips and %d statements, budget %d and %d each:\n%s",
			n, groups, rt, got.Statements, roundTrips, statements, strings.Join(got.SQL, "\n"))
	}
	t.Logf("%d concurrent posts: %d group commits, %d round trips, %d statements", n, groups, rt, got.Statements)
}

// The envelope posting budget: what one group commit of envelope posts may
// cost Postgres, however many posts it holds (envelopegroup.go). A change
// that needs more raises a figure here in a commit of its own, with the
// measured figure in its message.
const (
	// BEGIN with the threads' locks, the posts' scopes and sender states
	// and the threads' devices; the numbering, messages, receipts, events
	// and audit entries; the push jobs (a COPY); COMMIT.
	envelopeRoundTrips = 4
	// Those as one statement each: BEGIN, lock, scope, devices, number,
	// messages, receipts, events, audit, COPY, COMMIT.
	envelopeStatements = 11
)

// TestEnvelopePostBudget counts the round trips and statements of each
// group commit for 1, 10 and 100 concurrent envelope posts (each patient's
// device in the patient's own encrypted thread), with a pgx tracer on the
// engine's pool. Before envelope posts shared their statements, a group
// cost BEGIN, COMMIT and six round trips per post.
func TestEnvelopePostBudget(t *testing.T) {
	t.Parallel()
	var counter pgtest.Counter
	pool := pgtest.NewPool(t, engine.ConfigurePool, counter.Trace, func(c *pgxpool.Config) { c.MaxConns = 20 })
	record, err := e2ee.GenerateDeviceKeys()
	if err != nil {
		t.Fatal(err)
	}
	// AuthCacheTTL -1: no revocation watcher, whose poll would land in
	// the counted window.
	eng := enginetest.StartEngine(t, engine.Config{Pool: pool, RulesRefresh: -1, AuthCacheTTL: -1,
		RecordPublicKey: record.HPKEPublic})
	ctx := context.Background()
	posters := budgetPosters(t, eng, 100)
	devices, keys := make([]*e2eeDevice, len(posters)), make([]engine.ThreadKeys, len(posters))
	for i, p := range posters {
		devices[i] = registerDevice(t, eng, p.actor)
		if _, err := eng.EncryptThread(ctx, p.actor, p.thread.ID); err != nil {
			t.Fatal(err)
		}
		if keys[i], err = eng.ThreadKeys(ctx, p.actor, p.thread.ID); err != nil {
			t.Fatal(err)
		}
	}
	postAll := func(n int) {
		t.Helper()
		envs := make([]*e2ee.Envelope, n)
		for i := range n {
			envs[i] = devices[i].sealFor(t, keys[i], fmt.Sprintf("message %d", devices[i].seq+1))
		}
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				p := posters[i]
				if _, err := eng.PostEnvelope(ctx, p.actor, p.thread.ID, engine.NewEnvelope{Envelope: envs[i]}); err != nil {
					t.Errorf("post: %v", err)
				}
			})
		}
		wg.Wait()
	}
	for range 3 { // every connection prepares its statements once; the patients' keys are made
		postAll(100)
	}
	for _, n := range []int{1, 10, 100} {
		counter.Reset()
		postAll(n)
		checkBudget(t, n, counter.Count(), envelopeRoundTrips, envelopeStatements)
	}
}
