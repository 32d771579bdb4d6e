package delivery_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/delivery"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/engine/enginetest/pushtest"
	"github.com/tendhealth/tend/engine/internal/pgtest"
	"github.com/tendhealth/tend/notify"
	"github.com/tendhealth/tend/notify/notifytest"
	"github.com/tendhealth/tend/rpm"
)

// The push budget. A change that needs more raises a figure here in a
// commit of its own, with the measured figure in its message.
const (
	// Tend's own statements per push: loading the delivery and recording its
	// outcome, each shared by concurrent workers (pg.Batcher). Unshared they
	// would be 2 per push; measured 0.27 to 0.3 (109 for 400 FCM pushes).
	// River's fetches and completions are batched by River.
	pushStatements = 1
)

// pushAllocs is the budget of allocations per push in the worker process,
// River's fetching and completing included, per platform; the fake
// providers run in a process of their own and are not counted (the budget
// was 700 for FCM with its fake in the process, measured 563). Measured
// over 400 pushes, the worker engine's start included, in three runs: FCM
// 421–433, APNs 337–359 (361–417 before its payload was encoded from a
// struct), Web Push 387–403. Under -race on the loaded machine, with more
// and smaller batches, three runs measured FCM 462–474, APNs 361–500 and
// Web Push 408–418, so the budgets keep that room.
var pushAllocs = map[notify.Platform]uint64{notify.FCM: 500, notify.APNs: 500, notify.WebPush: 480}

// TestPushBudget queues pushes to one device of each platform, starts a
// worker engine and counts, until every outcome is recorded, Tend's
// statements per push (with a pgx tracer) and the process's allocations per
// push.
func TestPushBudget(t *testing.T) {
	fakes, senders := pushtest.StartFakes(t)
	for _, p := range []notify.Platform{notify.FCM, notify.APNs, notify.WebPush} {
		t.Run(string(p), func(t *testing.T) { pushBudget(t, fakes, senders, p) })
	}
}

func pushBudget(t *testing.T, fakes *notifytest.Process, senders notify.Senders, platform notify.Platform) {
	const pushes = 400
	var counter pgtest.Counter
	pool := pgtest.NewPool(t, engine.ConfigurePool, counter.Trace, func(c *pgxpool.Config) { c.MaxConns = 30 })
	plain := untraced(t, pool)
	ctx := context.Background()
	// AuthCacheTTL -1: no revocation watcher, whose poll would land in the
	// counted window.
	cfg := engine.Config{Pool: pool, RulesRefresh: -1, AuthCacheTTL: -1, Senders: senders, FetchCooldown: 5 * time.Millisecond,
		APNsTopic: fakes.APNsTopic, WebPushAllowedHosts: []string{"127.0.0.1"}}
	eng := enginetest.StartEngine(t, cfg)
	admin := engine.System("test")
	doc, err := eng.CreateUser(ctx, admin, engine.NewUser{Name: "Dr Budget", Role: engine.RoleClinician})
	if err != nil {
		t.Fatal(err)
	}
	nd := engine.NewDevice{Platform: platform, Token: pushtest.RandomHex(t, 32)}
	switch platform {
	case notify.FCM:
		nd.Token = "fcm:" + pushtest.RandomHex(t, 40)
	case notify.WebPush:
		subs, err := fakes.NewSubscriptions(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		nd = engine.NewDevice{Platform: platform, Endpoint: subs[0].Endpoint, P256dh: subs[0].P256dh, Auth: subs[0].Auth}
	}
	dev, _, err := eng.RegisterDevice(ctx, engine.Actor{UserID: doc.ID, Role: engine.RoleClinician, RequestID: "budget"}, nd)
	if err != nil {
		t.Fatal(err)
	}
	// The pushes: notifications and their delivery jobs, queued without
	// the engine (an insert-only River client on the untraced pool).
	ids := make([]uuid.UUID, pushes)
	jobs := make([]river.InsertManyParams, pushes)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7())
		jobs[i] = delivery.Job(ids[i], dev.ID, uuid.Nil, rpm.High)
	}
	if _, err := plain.Exec(ctx, `INSERT INTO notifications (id, user_id, type, urgency)
		SELECT i, $2, 'alert', 'high' FROM unnest($1::uuid[]) AS i`, ids, doc.ID); err != nil {
		t.Fatal(err)
	}
	inserter, err := river.NewClient(riverpgxv5.New(plain), &river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inserter.InsertMany(ctx, jobs); err != nil {
		t.Fatal(err)
	}

	counter.Reset()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cfg.RunWorkers = true
	enginetest.StartEngine(t, cfg)
	deadline := time.Now().Add(time.Minute)
	for n := 0; n < pushes; {
		if err := plain.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE outcome = 'sent'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d pushes delivered after a minute", n, pushes)
		}
		time.Sleep(10 * time.Millisecond)
	}
	runtime.ReadMemStats(&after)
	got := counter.Count()
	loads, records := got.Contains("d.platform, d.address"), got.Contains("WITH ins AS (")
	if loads+records > pushStatements*pushes || loads == 0 || records == 0 {
		t.Errorf("%d pushes: %d loads and %d records, budget %d statements per push", pushes, loads, records, pushStatements)
	}
	allocs := (after.Mallocs - before.Mallocs) / pushes
	if allocs > pushAllocs[platform] {
		t.Errorf("%d allocations per push, budget %d", allocs, pushAllocs[platform])
	}
	t.Logf("%d pushes: %d loads, %d records; %d round trips and %d statements in all; %d allocations per push",
		pushes, loads, records, got.RoundTrips-got.Prepares, got.Statements, allocs)
	if testing.Verbose() {
		t.Log(strings.Join(got.SQL[:min(40, len(got.SQL))], "\n"))
	}
}

// untraced is a second pool on pool's database without its tracer.
func untraced(t *testing.T, pool *pgxpool.Pool) *pgxpool.Pool {
	t.Helper()
	cfg := pool.Config().Copy()
	cfg.ConnConfig.Tracer = nil
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}
