package pgtest

import (
	"context"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Counter is a pgx tracer that counts what a pool sends to Postgres, so a
// test can hold a hot path to a budget of round trips and statements rather
// than to a timing. Install it with Trace before the pool is created.
//
// A round trip is one Query, QueryRow or Exec (BEGIN and COMMIT included),
// one SendBatch (however many statements it holds), one CopyFrom or one
// Prepare; a
// statement is one query, in a batch or not.
type Counter struct {
	mu sync.Mutex
	c  Count
}

// Count is what a pool sent.
type Count struct {
	RoundTrips int
	Statements int
	// Prepares counts explicit statement preparations; they are also round
	// trips.
	Prepares int
	// SQL lists the statements in order, each cut to its first line.
	SQL []string
}

// Contains counts the statements whose first line contains s.
func (c Count) Contains(s string) int {
	n := 0
	for _, q := range c.SQL {
		if strings.Contains(q, s) {
			n++
		}
	}
	return n
}

// Trace installs c as cfg's tracer.
func (c *Counter) Trace(cfg *pgxpool.Config) { cfg.ConnConfig.Tracer = c }

// Reset forgets everything counted so far.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.c = Count{}
}

// Count returns what was sent since the last Reset.
func (c *Counter) Count() Count {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.c
	out.SQL = append([]string(nil), c.c.SQL...)
	return out
}

func (c *Counter) add(sql string, roundTrips, statements, prepares int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.c.RoundTrips += roundTrips
	c.c.Statements += statements
	c.c.Prepares += prepares
	if statements > 0 {
		first, _, _ := strings.Cut(strings.TrimSpace(sql), "\n")
		c.c.SQL = append(c.c.SQL, first)
	}
}

// TraceQueryStart implements pgx.QueryTracer.
func (c *Counter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	c.add(data.SQL, 1, 1, 0)
	return ctx
}

// TraceQueryEnd implements pgx.QueryTracer.
func (c *Counter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TraceBatchStart implements pgx.BatchTracer.
func (c *Counter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.add("", 1, 0, 0)
	return ctx
}

// TraceBatchQuery implements pgx.BatchTracer.
func (c *Counter) TraceBatchQuery(_ context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	c.add(data.SQL, 0, 1, 0)
}

// TraceBatchEnd implements pgx.BatchTracer.
func (c *Counter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// TracePrepareStart implements pgx.PrepareTracer.
func (c *Counter) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	c.add("", 1, 0, 1)
	return ctx
}

// TracePrepareEnd implements pgx.PrepareTracer.
func (c *Counter) TracePrepareEnd(context.Context, *pgx.Conn, pgx.TracePrepareEndData) {}

// TraceCopyFromStart implements pgx.CopyFromTracer: a COPY is one round trip
// and one statement.
func (c *Counter) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceCopyFromStartData) context.Context {
	c.add("COPY "+data.TableName.Sanitize(), 1, 1, 0)
	return ctx
}

// TraceCopyFromEnd implements pgx.CopyFromTracer.
func (c *Counter) TraceCopyFromEnd(context.Context, *pgx.Conn, pgx.TraceCopyFromEndData) {}
