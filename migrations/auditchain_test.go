package migrations_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pressly/goose/v3"

	"github.com/tendhealth/tend/engine/audit"
)

// TestAuditChainTable: migration 00024 moves a chain sealed in the entries'
// own columns (migration 00015) into audit_chain with every hash unchanged,
// leaves an unsealed entry to the new sealer, and goes down (the links back
// into the entries, the old sealer working again) and up again cleanly.
func TestAuditChainTable(t *testing.T) {
	ctx := context.Background()
	pool, p := migrated(t)
	if _, err := p.DownTo(ctx, 23); err != nil {
		t.Fatalf("down to 23: %v", err)
	}
	insert := func(n int) {
		t.Helper()
		if _, err := pool.Exec(ctx, `INSERT INTO audit_entries (actor_role, action, object_type, object_id, detail)
			SELECT 'admin', 'patient.read', 'patient', g::text, jsonb_build_object('n', g) FROM generate_series(1, $1) g`, n); err != nil {
			t.Fatal(err)
		}
	}
	seal := func(want int) {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, `SELECT tend_audit_seal(100)`).Scan(&n); err != nil || n != want {
			t.Fatalf("tend_audit_seal = %d, %v; want %d", n, err, want)
		}
	}
	insert(5)
	seal(5)
	insert(1) // left unsealed
	if _, err := p.UpTo(ctx, 24); err != nil {
		t.Fatalf("up to 24: %v", err)
	}
	verifyAt(t, pool, p, 24, 5, 1)
	seal(1)
	verifyAt(t, pool, p, 24, 6, 0)
	insert(2)
	seal(2)

	if _, err := p.DownTo(ctx, 23); err != nil {
		t.Fatalf("down to 23: %v", err)
	}
	var sealed int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_entries WHERE seq IS NOT NULL AND hash IS NOT NULL`).Scan(&sealed); err != nil || sealed != 8 {
		t.Fatalf("after down: %d entries with their links, %v; want 8", sealed, err)
	}
	insert(1)
	seal(1)
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("up: %v", err)
	}
	verify(t, pool, 9, 0)
}

func verify(t *testing.T, pool *pgxpool.Pool, sealed, unsealed int64) {
	t.Helper()
	verifyAt(t, pool, nil, 0, sealed, unsealed)
}

// verifyAt verifies the chain with the latest schema (Verify reads its
// columns): when p is set, it migrates up first and back down to version
// after.
func verifyAt(t *testing.T, pool *pgxpool.Pool, p *goose.Provider, version, sealed, unsealed int64) {
	t.Helper()
	if p != nil {
		ctx := context.Background()
		if _, err := p.Up(ctx); err != nil {
			t.Fatalf("up: %v", err)
		}
		defer func() {
			if _, err := p.DownTo(ctx, version); err != nil {
				t.Fatalf("down to %d: %v", version, err)
			}
		}()
	}
	r, err := audit.Verify(context.Background(), pool, nil)
	if err != nil || r.Break != nil || r.Sealed != sealed || r.Unsealed != unsealed {
		t.Fatalf("Verify = %+v, %v; want %d sealed, %d unsealed, intact", r, err, sealed, unsealed)
	}
}
