package stream

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/internal/events"
	"github.com/tendhealth/tend/engine/internal/pgtest"
)

// admin is an admin of the default organisation, whose events name team.
var (
	admin = access.Actor{UserID: uuid.MustParse("0a000000-0000-0000-0000-00000000000a"), Role: access.RoleAdmin, OrgID: access.DefaultOrgID()}
	team  = uuid.MustParse("0a000000-0000-0000-0000-0000000000aa")
)

// seedAdmin stores admin and team in pool's database.
func seedAdmin(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO users (id, name, role, org_id) VALUES ($1, 'Admin', 'admin', $2)`, admin.UserID, admin.OrgID); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO care_teams (id, name, org_id) VALUES ($1, 'Team', $2)`, team, admin.OrgID); err != nil {
		t.Fatal(err)
	}
}

// TestSlowClientDropped: a subscription whose buffer is full is dropped with
// ErrSlow when the next event comes; the others still get every event.
func TestSlowClientDropped(t *testing.T) {
	s := New(Config{Buffer: 1})
	add := func() *Subscription {
		sub := &Subscription{svc: s, actor: admin, ch: make(chan *Message, 1), done: make(chan struct{})}
		s.subs[sub] = struct{}{}
		return sub
	}
	slow, fast := add(), add()
	s.publish(loaded{id: 1, typ: events.AlertCreated, payload: []byte(`{}`), org: admin.OrgID})
	if m := <-fast.ch; m.ID != 1 {
		t.Fatalf("fast got %d", m.ID)
	}
	s.publish(loaded{id: 2, typ: events.AlertUpdated, payload: []byte(`{}`), org: admin.OrgID})
	if m := <-fast.ch; m.ID != 2 {
		t.Fatalf("fast got %d", m.ID)
	}
	select {
	case <-slow.Done():
	default:
		t.Fatal("the slow subscription was not dropped")
	}
	if slow.Err() != ErrSlow || fast.Err() != nil {
		t.Errorf("errors: slow %v, fast %v", slow.Err(), fast.Err())
	}
	if n := s.Subscribers(); n != 1 {
		t.Errorf("%d subscribers left, want 1", n)
	}
	if m := <-slow.ch; m.ID != 1 {
		t.Errorf("the slow one kept %d, want 1 (what it had room for)", m.ID)
	}
}

// TestListenerCatchesUpAfterReconnect: an event committed while the
// listener's connection is down (its NOTIFY reaches nobody) is still
// delivered, by the backlog read after the reconnect.
func TestListenerCatchesUpAfterReconnect(t *testing.T) {
	pool := pgtest.NewPool(t)
	seedAdmin(t, pool)
	s := New(Config{Pool: pool, Now: time.Now, ReconnectDelay: 3 * time.Second})
	t.Cleanup(s.Close)
	ctx := context.Background()
	sub, err := s.Subscribe(ctx, admin, nil)
	if err != nil {
		t.Fatal(err)
	}
	publish := func(alert uuid.UUID) {
		t.Helper()
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			return events.Publish(ctx, tx, time.Now(), events.Event{Type: events.AlertCreated, CareTeamID: team,
				Payload: map[string]any{"alert_id": alert}})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	listeners := func() (n int) {
		t.Helper()
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()`,
			ApplicationName).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	receive := func(want int64) { t.Helper(); expect(t, sub, want) }
	publish(uuid.New())
	receive(1)
	if _, err := pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1
		AND datname = current_database()`, ApplicationName); err != nil {
		t.Fatal(err)
	}
	for listeners() > 0 {
		time.Sleep(10 * time.Millisecond)
	}
	publish(uuid.New()) // nobody is listening now
	if listeners() != 0 {
		t.Skip("the listener reconnected before the event committed; the catch-up was not exercised")
	}
	receive(2)
	publish(uuid.New()) // and live again
	receive(3)
}

// TestPrune deletes only events older than the retention.
func TestPrune(t *testing.T) {
	pool := pgtest.NewPool(t)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	s := New(Config{Pool: pool, Now: func() time.Time { return now }, Retention: time.Hour})
	ctx := context.Background()
	for _, at := range []time.Time{now.Add(-3 * time.Hour), now.Add(-61 * time.Minute), now.Add(-59 * time.Minute), now} {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			return events.Publish(ctx, tx, at, events.Event{Type: events.AlertUpdated})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.Prune(ctx)
	if err != nil || n != 2 {
		t.Fatalf("pruned %d (%v), want 2", n, err)
	}
	var left []int64
	rows, _ := pool.Query(ctx, `SELECT id FROM events ORDER BY id`)
	left, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil || len(left) != 2 || left[0] != 3 {
		t.Errorf("left %v (%v), want [3 4]", left, err)
	}
}

// TestLateCommitIsNotSkipped is the replay gap: event 2's transaction takes
// its id first and commits after event 3's. Nothing past 1 may reach a
// client while 2 is in flight — neither live nor in a replay — or the
// client, reconnecting with Last-Event-ID 3, would never get 2. Once 2
// commits, 2 and 3 arrive live in id order, and a replay from 2 holds 3.
func TestLateCommitIsNotSkipped(t *testing.T) {
	pool := pgtest.NewPool(t)
	seedAdmin(t, pool)
	s := New(Config{Pool: pool, Now: time.Now})
	t.Cleanup(s.Close)
	ctx := context.Background()
	live, err := s.Subscribe(ctx, admin, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := events.Event{Type: events.AlertCreated, CareTeamID: team}
	commit := func() {
		t.Helper()
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return events.Publish(ctx, tx, time.Now(), ev) }); err != nil {
			t.Fatal(err)
		}
	}
	commit()
	expect(t, live, 1)
	late, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = late.Rollback(ctx) }()
	if err := events.Publish(ctx, late, time.Now(), ev); err != nil {
		t.Fatal(err)
	}
	commit()
	var ids []int64
	if err := pool.QueryRow(ctx, `SELECT array_agg(id ORDER BY id) FROM events`).Scan(&ids); err != nil || len(ids) != 2 || ids[1] != 3 {
		t.Fatalf("committed events %v (%v), want [1 3] with 2 in flight", ids, err)
	}
	// Event 3's notification is being handled: give it time to arrive,
	// wrongly, before event 2.
	select {
	case m := <-live.Events():
		t.Fatalf("event %d published while event 2 is in flight", m.ID)
	case <-time.After(500 * time.Millisecond):
	}
	// The listener's own goroutine does not wait for the append in flight:
	// events that are never stored (typing) go through it meanwhile.
	f := &follower{svc: s, started: true, kick: make(chan struct{}, 1)}
	start := time.Now()
	if err := f.HandleNotification(ctx, &pgconn.Notification{Payload: "3"}, nil); err != nil || time.Since(start) > 100*time.Millisecond {
		t.Errorf("a notification held the listener %v (%v) while an append is in flight", time.Since(start), err)
	}
	one := int64(1)
	again, err := s.Subscribe(ctx, admin, &one)
	if err != nil {
		t.Fatal(err)
	}
	if b := again.Backlog(); len(b) != 0 {
		t.Fatalf("a replay from 1 while event 2 is in flight sent %d events, first %d %s", len(b), b[0].ID, b[0].Type)
	}
	if err := late.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	expect(t, live, 2, 3)
	expect(t, again, 2, 3)
	two := int64(2)
	replay, err := s.Subscribe(ctx, admin, &two)
	if err != nil {
		t.Fatal(err)
	}
	if b := replay.Backlog(); len(b) != 1 || b[0].ID != 3 {
		t.Errorf("replay from 2: %d events, want event 3", len(b))
	}
}

// expect receives the events of ids want from sub, in order, each within a
// minute.
func expect(t *testing.T, sub *Subscription, want ...int64) {
	t.Helper()
	for _, id := range want {
		select {
		case m := <-sub.Events():
			if m.ID != id {
				t.Fatalf("got event %d, want %d", m.ID, id)
			}
		case <-time.After(time.Minute):
			t.Fatalf("event %d not delivered within a minute", id)
		}
	}
}

// TestEphemeralNeverReplayed: a subscription that resumed after an id still
// gets the events that are never stored (typing, id 0), and skips only the
// stored ones up to that id.
func TestEphemeralNeverReplayed(t *testing.T) {
	sub := &Subscription{after: 57, replayed: map[int64]struct{}{58: {}}}
	for id, want := range map[int64]bool{0: false, 12: true, 57: true, 58: true, 59: false} {
		if got := sub.Replayed(id); got != want {
			t.Errorf("Replayed(%d) after 57 = %v, want %v", id, got, want)
		}
	}
}
