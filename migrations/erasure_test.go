package migrations_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
)

// TestErasureMigration: migration 00026 adds patient data keys and the
// erased and restricted marks; it refuses to go down while a patient key or
// an erased patient exists (their sealed records would become unreadable
// for good), and goes down and up cleanly without.
func TestErasureMigration(t *testing.T) {
	ctx := context.Background()
	pool, p := migrated(t)
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("up: %v", err)
	}
	team, patient := uuid.New(), uuid.New()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO care_teams (id, name, org_id) VALUES ($1, 'HF', '00000000-0000-0000-0000-000000000001')`, []any{team}},
		{`INSERT INTO patients (id, display_name, timezone, care_team_id, org_id, restricted_at)
			VALUES ($1, 'P', 'UTC', $2, '00000000-0000-0000-0000-000000000001', now())`, []any{patient, team}},
		{`INSERT INTO patient_keys (patient_id, org_id, wrap_key_id, wrapped, created_at)
			VALUES ($1, '00000000-0000-0000-0000-000000000001', 'k1', '\x01', now())`, []any{patient}},
	} {
		if _, err := pool.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	if _, err := pool.Exec(ctx, `INSERT INTO patient_keys (patient_id, org_id, wrap_key_id, wrapped, created_at)
		VALUES ($1, '00000000-0000-0000-0000-000000000001', 'k1', '\x01', now())`, uuid.New()); err == nil {
		t.Fatal("a key for no patient was stored")
	}
	if _, err := p.DownTo(ctx, 25); err == nil {
		t.Fatal("went down with a patient key")
	}
	if _, err := pool.Exec(ctx, `DELETE FROM patient_keys; UPDATE patients SET erased_at = now()`); err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 25); err == nil {
		t.Fatal("went down with an erased patient")
	}
	if _, err := pool.Exec(ctx, `UPDATE patients SET erased_at = NULL`); err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 25); err != nil {
		t.Fatalf("down to 25: %v", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns WHERE table_name = 'patients'
		AND column_name IN ('erased_at', 'restricted_at')`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("after down: %d of the new columns remain, %v", n, err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("up again: %v", err)
	}
}
