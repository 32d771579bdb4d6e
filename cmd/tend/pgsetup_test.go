package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/cmd/tend/internal/pgcluster"
)

// TestPrivateClusterStarts exercises what `tend demo` does on a machine
// with no PostgreSQL server running: initdb and pg_ctl from the installed
// binaries (as the postgres user when run as root), a database of its own,
// and a clean stop.
func TestPrivateClusterStarts(t *testing.T) {
	if _, err := pgcluster.Bin(); err != nil {
		t.Skip("no PostgreSQL binaries installed:", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base, stop, err := startPrivateCluster(ctx, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := ensureDatabase(ctx, base, "tend_demo"); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, withDatabase(base, "tend_demo"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var db string
	if err := conn.QueryRow(ctx, `SELECT current_database()`).Scan(&db); err != nil || db != "tend_demo" {
		t.Errorf("connected to %q, %v", db, err)
	}
}
