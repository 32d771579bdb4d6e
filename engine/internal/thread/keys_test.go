package thread

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/pgtest"
	"github.com/tendhealth/tend/sealed"
)

// TestEnsureKeysConcurrent: two transactions making the first data key of
// one patient at once end with the same key (the second waits for the
// first, then reads its key); an erased patient gets none; the key sealed
// by one opens under the other's, and opens nothing once deleted.
func TestEnsureKeysConcurrent(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	ctx := context.Background()
	ring, err := sealed.ParseKeyring(mustKey(t, "k1"))
	if err != nil {
		t.Fatal(err)
	}
	team, patient, erased := uuid.New(), uuid.New(), uuid.New()
	if _, err := pool.Exec(ctx, `INSERT INTO care_teams (id, name, org_id) VALUES ($1, 'T', '00000000-0000-0000-0000-000000000001')`, team); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO patients (id, display_name, timezone, care_team_id, org_id, erased_at) VALUES
		($2, 'P', 'UTC', $1, '00000000-0000-0000-0000-000000000001', NULL),
		($3, 'E', 'UTC', $1, '00000000-0000-0000-0000-000000000001', now())`, team, patient, erased); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tx1, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx1.Rollback(ctx)
	k1, err := EnsureKey(ctx, tx1, ring, now, patient)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		k   *PatientKey
		err error
	}
	second := make(chan result, 1)
	go func() {
		var r result
		r.err = pg.InTx(ctx, pool, func(tx pgx.Tx) error {
			r.k, r.err = EnsureKey(ctx, tx, ring, now, patient)
			return r.err
		})
		second <- r
	}()
	// Wait until the second blocks on the first's new row.
	for deadline := time.Now().Add(10 * time.Second); ; {
		var waiting int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second transaction never waited for the first")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := tx1.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-second
	if r.err != nil {
		t.Fatalf("second transaction: %v", r.err)
	}
	aad := NoteAAD(patient, uuid.New())
	keyID, ct := k1.Seal([]byte("same key"), aad)
	o := NewOpener(ring, pool)
	if pt, err := o.Open(ctx, keyID, ct, aad); err != nil || string(pt) != "same key" {
		t.Fatalf("open under the stored key: %q, %v", pt, err)
	}
	if _, ct2 := r.k.Seal([]byte("x"), aad); !bytes.Equal(mustOpen(t, k1, ct2, aad), []byte("x")) {
		t.Fatal("the two transactions hold different keys")
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM patient_keys`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d patient keys, want 1", n)
	}
	err = pg.InTx(ctx, pool, func(tx pgx.Tx) error {
		_, err := EnsureKey(ctx, tx, ring, now, erased)
		return err
	})
	if !errors.Is(err, ErrErased) {
		t.Fatalf("key for an erased patient: %v", err)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM patient_keys`); err != nil {
		t.Fatal(err)
	}
	if _, err := NewOpener(ring, pool).Open(ctx, keyID, ct, aad); !errors.Is(err, ErrErased) || !errors.Is(err, ErrUnreadable) {
		t.Fatalf("open after the key was destroyed: %v", err)
	}
}

func mustKey(t *testing.T, id string) string {
	t.Helper()
	k, err := sealed.Generate(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustOpen(t *testing.T, k *PatientKey, ct, aad []byte) []byte {
	t.Helper()
	pt, err := k.key.Open(ct, aad)
	if err != nil {
		t.Fatal(err)
	}
	return pt
}
