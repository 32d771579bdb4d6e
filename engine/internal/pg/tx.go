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
	if err := tx.Commit(ctx); err != nil {
		if Unavailable(err) {
			return fmt.Errorf("commit: %w: %w", ErrCommitUnknown, err)
		}
		return fmt.Errorf("commit: %w", err)
	}
	return nil
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
