package pg

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// InTx runs fn in a transaction, committing when it returns nil.
func InTx(ctx context.Context, pool *pgxpool.Pool, fn func(tx pgx.Tx) error) error {
	return InTxOpts(ctx, pool, pgx.TxOptions{}, fn)
}

// ReadTx runs fn in a read-only, repeatable-read transaction: one consistent
// snapshot that cannot write anything.
func ReadTx(ctx context.Context, pool *pgxpool.Pool, fn func(tx pgx.Tx) error) error {
	return InTxOpts(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// InTxOpts runs fn in a transaction with opts, committing when fn returns
// nil. A commit that fails because the connection broke or the server went
// away (Unavailable, a FATAL from the server included) is ErrCommitUnknown:
// it may or may not have committed.
func InTxOpts(ctx context.Context, pool *pgxpool.Pool, opts pgx.TxOptions, fn func(tx pgx.Tx) error) error {
	tx, err := pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := fn(tx); err != nil {
		return err
	}
	return commitError(tx.Commit(ctx))
}

// commitError is a failed commit's error (nil for nil): ErrCommitUnknown when
// the connection broke, so that it may or may not have committed.
func commitError(err error) error {
	if err == nil {
		return nil
	}
	if Unavailable(err) {
		return fmt.Errorf("commit: %w: %w", ErrCommitUnknown, err)
	}
	return fmt.Errorf("commit: %w", err)
}

// LockPatients takes the per-patient locks of ids in tx (LockPatientsSQL).
func LockPatients(ctx context.Context, tx pgx.Tx, ids ...uuid.UUID) error {
	if _, err := tx.Exec(ctx, LockPatientsSQL, ids); err != nil {
		return fmt.Errorf("lock patients: %w", err)
	}
	return nil
}

// NewID returns a new time-ordered id (UUIDv7).
func NewID() uuid.UUID { return uuid.Must(uuid.NewV7()) }

// NilIfZero is id, or nil for the zero id (a NULL column).
func NilIfZero(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}

// Deref is *p, or the zero value for nil.
func Deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// Querier reads: a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// SendAtomic sends b in one round trip as one implicit transaction: Postgres
// runs the statements of a pipeline up to its Sync as a single transaction,
// committed at the Sync if every statement succeeded and rolled back
// otherwise, so b needs neither BEGIN nor COMMIT (two round trips fewer than
// InTx). Its statements must not depend on each other's results in Go. A
// failure that leaves the outcome unknown (the connection broke) is
// ErrCommitUnknown, as with InTx.
func SendAtomic(ctx context.Context, pool *pgxpool.Pool, b *pgx.Batch) error {
	err := pool.SendBatch(ctx, b).Close()
	if err != nil && Unavailable(err) {
		return fmt.Errorf("%w: %w", ErrCommitUnknown, err)
	}
	return err
}
