package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TerminateBackend ends the server process pid (pg_terminate_backend, as a
// failover or an operator does) from a connection of its own to url, and
// waits until the process is gone. It reports failures with t.Error, so it
// may run on any goroutine.
func TerminateBackend(t testing.TB, url string, pid uint32) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend($1::int)`, int64(pid)); err != nil {
		t.Error(err)
		return
	}
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		var alive bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1::int)`, int64(pid)).Scan(&alive); err != nil {
			t.Error(err)
			return
		}
		if !alive {
			return
		}
		select {
		case <-wait.Done():
			t.Errorf("backend %d still alive 30 s after pg_terminate_backend", pid)
			return
		case <-tick.C:
		}
	}
}
