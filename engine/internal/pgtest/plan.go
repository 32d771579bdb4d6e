package pgtest

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// GenericPlan returns the plan PostgreSQL uses for statement sql when it
// plans it once for all parameters, as the engine's pool does
// (plan_cache_mode=force_generic_plan), executed with args: the SQL text of
// each argument, cast as the statement needs ("NULL", "'…'::uuid").
// setup runs first on the same connection (data to plan against; it may be
// empty). The plan is EXPLAIN's text, one line per node.
func GenericPlan(t testing.TB, pool *pgxpool.Pool, setup, sql string, args ...string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, s := range []string{setup, "SET plan_cache_mode = force_generic_plan", "PREPARE generic_plan AS " + sql} {
		if s == "" {
			continue
		}
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	defer func() {
		_, _ = conn.Exec(ctx, "DEALLOCATE generic_plan")
		_, _ = conn.Exec(ctx, "RESET plan_cache_mode")
	}()
	rows, err := conn.Query(ctx, "EXPLAIN EXECUTE generic_plan("+strings.Join(args, ", ")+")")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}
