package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// connBreaker is a pgx tracer that breaks the connection of the next
// statement it is armed for, the way a Postgres restart, a failover or
// pg_terminate_backend breaks it: closed by pgx (the next use answers "conn
// closed") or terminated by the server.
type connBreaker struct {
	mu     sync.Mutex
	prefix string // "select" (the ingest's first statement), "commit" or "batch"; empty: disarmed
	brk    func(ctx context.Context, conn *pgx.Conn)
}

func (b *connBreaker) arm(prefix string, brk func(context.Context, *pgx.Conn)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.prefix, b.brk = prefix, brk
}

func (b *connBreaker) fire(ctx context.Context, conn *pgx.Conn, what string) {
	b.mu.Lock()
	brk := b.brk
	if b.prefix == "" || !strings.HasPrefix(strings.ToLower(what), b.prefix) {
		brk = nil
	} else {
		b.prefix, b.brk = "", nil
	}
	b.mu.Unlock()
	if brk != nil {
		brk(ctx, conn)
	}
}

func (b *connBreaker) TraceQueryStart(ctx context.Context, conn *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	b.fire(ctx, conn, d.SQL)
	return ctx
}

func (b *connBreaker) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (b *connBreaker) TraceBatchStart(ctx context.Context, conn *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	b.fire(ctx, conn, "batch")
	return ctx
}

func (b *connBreaker) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (b *connBreaker) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// TestLostConnectionAnswers503 breaks the database connection of a reading's
// transaction at each stage — before BEGIN, mid-transaction, before COMMIT —
// by closing it or by terminating its server process. Every answer is a 503
// with Retry-After (never a 500); one broken at COMMIT says the outcome is
// unknown; the server recovers without a restart and the client's retry
// stores the reading exactly once.
func TestLostConnectionAnswers503(t *testing.T) {
	t.Parallel()
	breaker := &connBreaker{}
	url := enginetest.NewDatabase(t)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	engine.ConfigurePool(cfg)
	cfg.ConnConfig.Tracer = breaker
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	// 503 is not declared on every route of the OpenAPI document yet: no
	// contract check here.
	s := newSetupOn(t, engine.Config{Pool: pool}, func(h http.Handler) http.Handler { return h })

	closeConn := func(ctx context.Context, conn *pgx.Conn) { _ = conn.PgConn().Close(ctx) }
	terminate := func(ctx context.Context, conn *pgx.Conn) { enginetest.TerminateBackend(t, url, conn.PgConn().PID()) }
	at := time.Now().UTC().Add(-time.Minute)
	for i, tc := range []struct {
		name, stage string
		brk         func(context.Context, *pgx.Conn)
		unknown     bool
	}{
		{"closed at the first statement", "select", closeConn, false},
		{"terminated at the first statement", "select", terminate, false},
		{"closed mid-transaction", "batch", closeConn, false},
		{"terminated mid-transaction", "batch", terminate, false},
		{"closed at COMMIT", "commit", closeConn, true},
		{"terminated at COMMIT", "commit", terminate, true},
	} {
		// 70 % is past the hard limit: the reading raises its alert at once,
		// in a transaction with a COMMIT of its own.
		body := fmt.Sprintf(`{"kind": "spo2", "value": 70, "unit": "%%", "observed_at": %q, "source_id": "ox:%d"}`,
			at.Add(time.Duration(i)*time.Second).Format(time.RFC3339), i)
		path := "/v1/patients/" + s.patientID + "/readings"
		s.device.do("GET", "/v1/patients/"+s.patientID, nil) // the token's lookup is cached: only the ingest meets the break
		breaker.arm(tc.stage, tc.brk)
		r := s.device.do("POST", path, body)
		breaker.arm("", nil)
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
			t.Errorf("%s: %d (Retry-After %q) %s, want 503 with Retry-After", tc.name, r.status, r.header.Get("Retry-After"), r.body)
			continue
		}
		var p problem
		r.decode(t, &p)
		if got := strings.Contains(p.Detail, "may or may not"); got != tc.unknown {
			t.Errorf("%s: detail %q: says the outcome is unknown = %v, want %v", tc.name, p.Detail, got, tc.unknown)
		}
		// The client retries with the same source_id: stored once.
		r = s.device.do("POST", path, body)
		if r.status != http.StatusCreated && r.status != http.StatusOK {
			t.Errorf("%s: retry answered %d %s", tc.name, r.status, r.body)
		}
	}
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM readings`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 6 {
		t.Errorf("readings stored = %d, want 6 (one per retried post, none lost or doubled)", n)
	}
}
