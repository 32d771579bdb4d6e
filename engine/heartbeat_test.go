package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// A job that a crashed process was running is made available again by the
// next heartbeat of any live process once the dead one has missed its
// deadline — seconds, not River's stuck-job rescue a minute or more later.
// A job of a live process is left alone.
func TestHeartbeatRescuesCrashedWorkersJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := enginetest.NewPool(t)
	now := time.Now()
	eng, err := engine.New(engine.Config{Pool: pool, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	insert := func(client string) int64 {
		var id int64
		if err := pool.QueryRow(ctx, `INSERT INTO river_job (args, kind, max_attempts, queue, state, attempt, attempted_at, attempted_by, scheduled_at)
			VALUES ('{}', 'notify.deliver', 25, 'notify', 'running', 1, $2, ARRAY[$1], $2) RETURNING id`, client, now.Add(-20*time.Second)).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	dead, alive := insert("dead-host-1-aaaa"), insert("live-host-2-bbbb")
	if _, err := pool.Exec(ctx, `INSERT INTO worker_heartbeats (client_id, started_at, seen_at) VALUES
		('dead-host-1-aaaa', $1, $2), ('live-host-2-bbbb', $1, $3)`, now.Add(-time.Hour), now.Add(-11*time.Second), now.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := eng.Beat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("rescued %d jobs, want 1", n)
	}
	state := func(id int64) string {
		var s string
		if err := pool.QueryRow(ctx, `SELECT state FROM river_job WHERE id = $1`, id).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := state(dead); s != "available" {
		t.Errorf("the dead worker's job is %s, want available", s)
	}
	if s := state(alive); s != "running" {
		t.Errorf("the live worker's job is %s, want running", s)
	}
}
