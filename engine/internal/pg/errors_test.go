package pg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tendhealth/tend/engine/internal/pgtest"
)

// TestUnavailableClassifies lists every kind of lost connection the API must
// answer with 503 + Retry-After, and errors that must stay what they are.
func TestUnavailableClassifies(t *testing.T) {
	t.Parallel()
	wrap := func(err error) error { return fmt.Errorf("ingest: begin: %w", err) }
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"io.EOF", wrap(io.EOF), true},
		{"unexpected EOF", wrap(io.ErrUnexpectedEOF), true},
		{"pgx closed connection", wrap(fmt.Errorf("%w", pgconn.ErrConnClosed)), true},
		{"closed socket", wrap(&net.OpError{Op: "write", Net: "tcp", Err: net.ErrClosed}), true},
		{"net.ErrClosed", wrap(net.ErrClosed), true},
		{"08006 connection failure", wrap(&pgconn.PgError{Code: "08006"}), true},
		{"08P01 protocol violation", wrap(&pgconn.PgError{Code: "08P01"}), true},
		{"57P01 admin shutdown", wrap(&pgconn.PgError{Code: "57P01"}), true},
		{"57P02 crash shutdown", wrap(&pgconn.PgError{Code: "57P02"}), true},
		{"57P03 cannot connect now", wrap(&pgconn.PgError{Code: "57P03"}), true},
		{"53300 too many connections", wrap(&pgconn.PgError{Code: "53300"}), true},
		{"23505 unique violation", wrap(&pgconn.PgError{Code: "23505"}), false},
		{"57014 query cancelled", wrap(&pgconn.PgError{Code: "57014"}), false},
		{"an ordinary error", wrap(errors.New("boom")), false},
		{"cancelled context", wrap(context.Canceled), false},
		{"nil", nil, false},
	} {
		if got := Unavailable(tc.err); got != tc.want {
			t.Errorf("%s: Unavailable = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestConnectionLostMidTransaction breaks a real transaction's connection in
// the ways a Postgres restart, failover or pg_terminate_backend does: closed
// by pgx, or terminated by the server, before a statement or before COMMIT.
// Every error must be Unavailable, and a failure at COMMIT must say its
// outcome is unknown.
func TestConnectionLostMidTransaction(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t, ConfigurePool)
	ctx := context.Background()
	closeConn := func(ctx context.Context, tx pgx.Tx) { _ = tx.Conn().Close(ctx) }
	terminate := func(ctx context.Context, tx pgx.Tx) {
		pgtest.TerminateBackend(t, pool.Config().ConnConfig.ConnString(), tx.Conn().PgConn().PID())
	}
	for _, tc := range []struct {
		name     string
		brk      func(context.Context, pgx.Tx)
		atCommit bool
	}{
		{"closed before a statement", closeConn, false},
		{"terminated before a statement", terminate, false},
		{"closed before COMMIT", closeConn, true},
		{"terminated before COMMIT", terminate, true},
	} {
		err := InTx(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT 1`); err != nil {
				return err
			}
			tc.brk(ctx, tx)
			if tc.atCommit {
				return nil
			}
			_, err := tx.Exec(ctx, `SELECT 2`)
			return err
		})
		unknown, ok := IsUnavailable(err)
		if !ok {
			t.Errorf("%s: IsUnavailable(%v) = false, want true (answered 503 + Retry-After)", tc.name, err)
		}
		if unknown != tc.atCommit {
			t.Errorf("%s: outcome unknown = %v, want %v (err %v)", tc.name, unknown, tc.atCommit, err)
		}
	}
	// The pool recovers by itself: the broken connections were discarded.
	if err := InTx(ctx, pool, func(tx pgx.Tx) error { _, err := tx.Exec(ctx, `SELECT 1`); return err }); err != nil {
		t.Fatalf("after the failures: %v", err)
	}
}
