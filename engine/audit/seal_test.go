package audit

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/pgtest"
)

// TestLinkRefusesLinksThatDoNotJoin: tend_audit_link, which the application
// role may call, inserts only links that continue the chain: the next seq
// after the head, the head's hash as the previous hash, each link after the
// one before, 32-byte hashes, existing entries chained once. Whatever it
// refuses leaves the chain as it was.
func TestLinkRefusesLinksThatDoNotJoin(t *testing.T) {
	ctx := context.Background()
	pool := seedChain(t, 3)
	w := Writer{Now: func() time.Time { return t0 }}
	var ids [2]int64
	for i := range ids {
		if err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
			if err := w.Write(ctx, tx, access.System("test"), Entry{Action: "x.read", ObjectType: "x", ObjectID: fmt.Sprint(i)}); err != nil {
				return err
			}
			return tx.QueryRow(ctx, `SELECT max(id) FROM audit_entries`).Scan(&ids[i])
		}); err != nil {
			t.Fatal(err)
		}
	}
	var head []byte
	if err := pool.QueryRow(ctx, `SELECT hash FROM audit_chain WHERE seq = 3`).Scan(&head); err != nil {
		t.Fatal(err)
	}
	h1, h2 := hashOf(1), hashOf(2)
	var chained int64
	if err := pool.QueryRow(ctx, `SELECT entry_id FROM audit_chain WHERE seq = 1`).Scan(&chained); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]any{
		"a seq after a gap":            {[]int64{5}, []int64{ids[0]}, [][]byte{head}, [][]byte{h1}},
		"a seq already taken":          {[]int64{3}, []int64{ids[0]}, [][]byte{head}, [][]byte{h1}},
		"a previous hash not the head": {[]int64{4}, []int64{ids[0]}, [][]byte{h2}, [][]byte{h1}},
		"a second link not after the first": {[]int64{4, 5}, []int64{ids[0], ids[1]}, [][]byte{head, h2},
			[][]byte{h1, h2}},
		"a short hash":             {[]int64{4}, []int64{ids[0]}, [][]byte{head}, [][]byte{h1[:31]}},
		"an entry that is missing": {[]int64{4}, []int64{ids[1] + 1000}, [][]byte{head}, [][]byte{h1}},
		"an entry chained before":  {[]int64{4}, []int64{chained}, [][]byte{head}, [][]byte{h1}},
		"arrays of different lengths": {[]int64{4, 5}, []int64{ids[0]}, [][]byte{head},
			[][]byte{h1}},
	} {
		err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL ROLE tend_app`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, linkSQL, args...)
			return err
		})
		if err == nil || !strings.Contains(err.Error(), "tend_audit_link") && !strings.Contains(err.Error(), "audit_chain") {
			t.Errorf("%s: err = %v, want a refusal", name, err)
		}
	}
	// Sealing still works, and the chain verifies.
	if n, err := Seal(ctx, pool, SealBatch); err != nil || n != 2 {
		t.Fatalf("Seal = %d, %v; want the 2 entries", n, err)
	}
	if r, err := Verify(ctx, pool, nil); err != nil || r.Break != nil || r.Sealed != 5 || r.Unsealed != 0 {
		t.Fatalf("Verify = %+v, %v; want 5 sealed entries, intact", r, err)
	}
}

// TestLinkedHashesAreVerified: a link whose hash was not computed from its
// entry joins the chain (the database does not recompute hashes), and
// tend audit verify names it.
func TestLinkedHashesAreVerified(t *testing.T) {
	ctx := context.Background()
	pool := seedChain(t, 2)
	w := Writer{Now: func() time.Time { return t0 }}
	if err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
		return w.Write(ctx, tx, access.System("test"), Entry{Action: "x.read", ObjectType: "x"})
	}); err != nil {
		t.Fatal(err)
	}
	if err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
		var head []byte
		var id int64
		if err := tx.QueryRow(ctx, `SELECT id::bigint FROM tend_audit_unchained(10)`).Scan(&id); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT hash FROM tend_audit_head()`).Scan(&head); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, linkSQL, []int64{3}, []int64{id}, [][]byte{head}, [][]byte{hashOf(9)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	r, err := Verify(ctx, pool, nil)
	if err != nil || r.Break == nil || r.Break.Seq != 3 || r.Break.Kind != Edited {
		t.Fatalf("Verify = %+v, %v; want entry 3 edited", r, err)
	}
}

// TestSealWithThePreviousVersion: during a rolling upgrade a process of the
// previous version seals with tend_audit_seal while this one uses
// tend_audit_unchained and tend_audit_link; passes of both, interleaved,
// build one chain that verifies.
func TestSealWithThePreviousVersion(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	w := Writer{Now: func() time.Time { return t0 }}
	for i := range 12 {
		a := access.Actor{UserID: uuid.New(), Role: access.RoleClinician, RequestID: fmt.Sprintf("req-%d", i)}
		e := Entry{Action: "patient.read", ObjectType: "patient", ObjectID: fmt.Sprint(i), Detail: map[string]any{"i": i}}
		if err := pg.InTx(ctx, pool, func(tx pgx.Tx) error { return w.Write(ctx, tx, a, e) }); err != nil {
			t.Fatal(err)
		}
		var err error
		if i%3 == 2 {
			_, err = pool.Exec(ctx, `SELECT tend_audit_seal(100)`)
		} else {
			_, err = Seal(ctx, pool, 1)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Seal(ctx, pool, SealBatch); err != nil {
		t.Fatal(err)
	}
	if r, err := Verify(ctx, pool, nil); err != nil || r.Break != nil || r.Sealed != 12 || r.Unsealed != 0 {
		t.Fatalf("Verify = %+v, %v; want 12 sealed entries, intact", r, err)
	}
}

// hashOf is a recognisable 32-byte hash.
func hashOf(b byte) []byte {
	h := make([]byte, 32)
	for i := range h {
		h[i] = b
	}
	return h
}

// BenchmarkSeal chains entries with the sealer in Tend (go) and with the
// previous version's PL/pgSQL sealer, which the database keeps for rolling
// upgrades (plpgsql), on the same database, as under steady load: passes of
// sealPass entries, each written with one COPY before its pass. ns/op is the
// sealing's time per entry, db-µs/entry the database backend's CPU time per
// entry during the passes (what sealing takes from ingest's cores), and
// tend-µs/entry this process's (the Go side of the sealer in Tend, and the
// benchmark's own calls).
func BenchmarkSeal(b *testing.B) {
	const sealPass = 500
	ctx := context.Background()
	for _, impl := range []string{"go", "plpgsql"} {
		b.Run(impl, func(b *testing.B) {
			// One connection, so that its backend's CPU time is the database's
			// share of the sealing (read from /proc: the server is local).
			pool := pgtest.NewPool(b, func(c *pgxpool.Config) { c.MaxConns = 1 })
			var pid int
			if err := pool.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			var cpu, own time.Duration
			for done := 0; done < b.N; done += sealPass {
				b.StopTimer()
				copyEntries(b, pool, min(sealPass, b.N-done))
				cpu0, own0 := backendCPU(b, pid), processCPU()
				b.StartTimer()
				var n int
				var err error
				if impl == "go" {
					n, err = Seal(ctx, pool, SealBatch)
				} else {
					err = pool.QueryRow(ctx, `SELECT tend_audit_seal($1)`, SealBatch).Scan(&n)
				}
				if err != nil || n != min(sealPass, b.N-done) {
					b.Fatalf("sealed %d, %v", n, err)
				}
				cpu, own = cpu+backendCPU(b, pid)-cpu0, own+processCPU()-own0
			}
			b.StopTimer()
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "db-µs/entry")
			b.ReportMetric(float64(own.Microseconds())/float64(b.N), "tend-µs/entry")
			if r, err := Verify(ctx, pool, nil); err != nil || r.Break != nil || r.Sealed != int64(b.N) {
				b.Fatalf("Verify = %+v, %v", r, err)
			}
		})
	}
}

// copyEntries writes n audit entries like those of single readings.
func copyEntries(b *testing.B, pool *pgxpool.Pool, n int) {
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = []any{t0, uuid.New(), "device", "reading.create", uuid.New(), "reading", uuid.NewString(),
			fmt.Sprintf("req-%d", i), map[string]any{"count": 1}, "ok", access.DefaultOrgID()}
	}
	if _, err := pool.CopyFrom(context.Background(), pgx.Identifier{"audit_entries"}, []string{"at", "actor_id",
		"actor_role", "action", "patient_id", "object_type", "object_id", "request_id", "detail", "outcome", "org_id"},
		pgx.CopyFromRows(rows)); err != nil {
		b.Fatal(err)
	}
}

// processCPU is this process's CPU time (user and system) so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// backendCPU is the CPU time (user and system) of the PostgreSQL backend
// pid so far (the benchmark needs the server on this machine).
func backendCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Skipf("the database's backend is not on this machine: %v", err)
	}
	// The fields after the command's closing parenthesis; utime and stime
	// are the 14th and 15th of the whole line, in clock ticks (100 a second).
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	if len(f) < 13 {
		b.Fatalf("/proc/%d/stat: %q", pid, raw)
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}
