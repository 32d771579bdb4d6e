package pg_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/engine/internal/pg"
)

// TestTransactionsWithoutTheirOwnRoundTrips checks InTxBatch (BEGIN in
// front of the first batch) and SendAtomic (a pipeline as one implicit
// transaction): each commits everything, or nothing when any statement or
// the caller's function fails.
func TestTransactionsWithoutTheirOwnRoundTrips(t *testing.T) {
	t.Parallel()
	pool := enginetest.NewPool(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE t (v int PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	insert := func(vs ...int) *pgx.Batch {
		b := &pgx.Batch{}
		for _, v := range vs {
			b.Queue(`INSERT INTO t VALUES ($1)`, v)
		}
		return b
	}
	count := func() (n int) {
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if err := pg.SendAtomic(ctx, pool, insert(1, 2)); err != nil || count() != 2 {
		t.Fatalf("SendAtomic: %v, %d rows", err, count())
	}
	if err := pg.SendAtomic(ctx, pool, insert(3, 1)); !pg.IsUniqueViolation(err) || count() != 2 {
		t.Fatalf("SendAtomic with a failing statement: %v, %d rows; want a unique violation and nothing of it", err, count())
	}
	err := pg.InTxBatch(ctx, pool, insert(3), func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO t VALUES (4)`)
		return err
	})
	if err != nil || count() != 4 {
		t.Fatalf("InTxBatch: %v, %d rows", err, count())
	}
	boom := errors.New("boom")
	err = pg.InTxBatch(ctx, pool, insert(5), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO t VALUES (6)`); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) || count() != 4 {
		t.Fatalf("InTxBatch failing in fn: %v, %d rows; want boom and nothing of it", err, count())
	}
	err = pg.InTxBatch(ctx, pool, insert(7, 1), func(pgx.Tx) error { t.Error("fn ran after a failed batch"); return nil })
	if !pg.IsUniqueViolation(err) || count() != 4 {
		t.Fatalf("InTxBatch with a failing batch: %v, %d rows", err, count())
	}
	err = pg.InTxBatch(ctx, pool, insert(8), func(tx pgx.Tx) error {
		_, _ = tx.Exec(ctx, `INSERT INTO t VALUES (1)`) // fails: the commit rolls back
		return nil
	})
	if err == nil || count() != 4 {
		t.Fatalf("InTxBatch committing a failed transaction: %v, %d rows; want an error and nothing of it", err, count())
	}
	// The pool's connections are all usable afterwards (none left in a
	// transaction).
	for range 5 {
		if err := pg.SendAtomic(ctx, pool, insert()); err != nil {
			t.Fatal(err)
		}
	}
}
