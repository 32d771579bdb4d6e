package api_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// databaseCPU is the CPU time each server process connected to pool's
// database has used, by process id, read from /proc: only when Postgres
// runs on this machine (nil otherwise). Each test has a database of its
// own, so this is the benchmark's database work and nobody else's. (The
// same as engine/delivery's push benchmarks.)
func databaseCPU(ctx context.Context, b *testing.B, pool *pgxpool.Pool) map[int32]time.Duration {
	rows, err := pool.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	out := map[int32]time.Duration{}
	for rows.Next() {
		var pid int32
		if err := rows.Scan(&pid); err != nil {
			b.Fatal(err)
		}
		d, ok := processCPU(pid)
		if !ok {
			return nil
		}
		out[pid] = d
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return out
}

// processCPU reads the user and system time of process pid from
// /proc/<pid>/stat, in clock ticks of 10 ms (Linux's USER_HZ).
func processCPU(pid int32) (time.Duration, bool) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/stat")
	if err != nil {
		return 0, false
	}
	_, rest, ok := strings.Cut(string(stat), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, true
}

// databaseCPUSince is the CPU time the database's server processes used
// since before was read (a process that started since counts in full), and
// whether both readings were possible.
func databaseCPUSince(ctx context.Context, b *testing.B, pool *pgxpool.Pool, before map[int32]time.Duration) (time.Duration, bool) {
	after := databaseCPU(ctx, b, pool)
	if before == nil || after == nil {
		return 0, false
	}
	var d time.Duration
	for pid, t := range after {
		d += t - before[pid]
	}
	return d, true
}
