package pg

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// InTxBatch is InTx whose BEGIN travels in front of first, in one round trip
// (first's statements run inside the transaction): a transaction that starts
// with a batch saves the round trip of its BEGIN. fn runs after first's
// results have been read, in the same transaction.
func InTxBatch(ctx context.Context, pool *pgxpool.Pool, first *pgx.Batch, fn func(tx pgx.Tx) error) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	tx := &pipeTx{conn: conn}
	defer tx.release(context.WithoutCancel(ctx))
	first.QueuedQueries = append([]*pgx.QueuedQuery{{SQL: "begin"}}, first.QueuedQueries...)
	if err := conn.SendBatch(ctx, first).Close(); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	return commitError(tx.Commit(ctx))
}

// pipeTx is the pgx.Tx of InTxBatch: the connection of a transaction whose
// BEGIN was sent in a batch.
type pipeTx struct {
	conn *pgxpool.Conn
	done bool
}

// release rolls back unless committed, and returns the connection.
func (tx *pipeTx) release(ctx context.Context) {
	if !tx.done {
		_ = tx.Rollback(ctx)
	}
	tx.conn.Release()
}

func (tx *pipeTx) Begin(context.Context) (pgx.Tx, error) {
	return nil, errors.New("pg: no nested transaction in a pipelined transaction")
}

func (tx *pipeTx) Commit(ctx context.Context) error {
	tx.done = true
	tag, err := tx.conn.Exec(ctx, "commit")
	if err != nil {
		return err
	}
	if tag.String() == "ROLLBACK" { // the transaction had failed
		return pgx.ErrTxCommitRollback
	}
	return nil
}

func (tx *pipeTx) Rollback(ctx context.Context) error {
	if tx.done {
		return pgx.ErrTxClosed
	}
	tx.done = true
	_, err := tx.conn.Exec(ctx, "rollback")
	return err
}

func (tx *pipeTx) CopyFrom(ctx context.Context, table pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	return tx.conn.CopyFrom(ctx, table, cols, src)
}

func (tx *pipeTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return tx.conn.SendBatch(ctx, b)
}

// LargeObjects is not supported: Tend stores none.
func (tx *pipeTx) LargeObjects() pgx.LargeObjects { return pgx.LargeObjects{} }

func (tx *pipeTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	return tx.conn.Conn().Prepare(ctx, name, sql)
}

func (tx *pipeTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return tx.conn.Exec(ctx, sql, args...)
}

func (tx *pipeTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return tx.conn.Query(ctx, sql, args...)
}

func (tx *pipeTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return tx.conn.QueryRow(ctx, sql, args...)
}

func (tx *pipeTx) Conn() *pgx.Conn { return tx.conn.Conn() }
