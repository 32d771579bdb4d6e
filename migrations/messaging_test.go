package migrations_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/migrations"
)

// TestMessagingBackfill: care teams and patients that exist before
// migration 00013 get their threads from it — a staff channel per team, a
// patient thread and a staff-only thread per patient — and the migration
// goes down and up again cleanly.
func TestMessagingBackfill(t *testing.T) {
	ctx := context.Background()
	pool, p := migrated(t)
	if _, err := p.DownTo(ctx, 12); err != nil {
		t.Fatalf("down to 12: %v", err)
	}
	team, patients := uuid.New(), []uuid.UUID{uuid.New(), uuid.New()}
	if _, err := pool.Exec(ctx, `INSERT INTO care_teams (id, name) VALUES ($1, 'Before messaging')`, team); err != nil {
		t.Fatal(err)
	}
	for _, id := range patients {
		if _, err := pool.Exec(ctx, `INSERT INTO patients (id, display_name, timezone, care_team_id, programs, enrolled_at)
			VALUES ($1, 'Old patient', 'UTC', $2, '{}', now())`, id, team); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.UpTo(ctx, 13); err != nil {
		t.Fatalf("up to 13: %v", err)
	}
	var teamThreads, patientThreads, staffThreads int
	if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE kind = 'team'), count(*) FILTER (WHERE kind = 'patient'),
		count(*) FILTER (WHERE kind = 'staff_patient') FROM threads WHERE care_team_id = $1`, team).
		Scan(&teamThreads, &patientThreads, &staffThreads); err != nil {
		t.Fatal(err)
	}
	if teamThreads != 1 || patientThreads != 2 || staffThreads != 2 {
		t.Errorf("backfilled threads: %d team, %d patient, %d staff-only; want 1, 2, 2", teamThreads, patientThreads, staffThreads)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("up: %v", err)
	}
}

// migrated returns a pool on a fresh migrated database and a goose provider
// of Tend's migrations on it.
func migrated(t *testing.T) (*pgxpool.Pool, *goose.Provider) {
	t.Helper()
	pool := enginetest.NewPool(t)
	db := stdlib.OpenDBFromPool(pool)
	t.Cleanup(func() { _ = db.Close() })
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS(), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	return pool, p
}
