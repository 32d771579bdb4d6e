package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/pgtest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)

// seedChain writes n entries (varied: nulls, details, outcomes) and seals them.
func seedChain(t *testing.T, n int) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	w := Writer{Now: func() time.Time { return t0 }}
	for i := range n {
		a := access.Actor{UserID: uuid.New(), Role: access.RoleClinician, RequestID: fmt.Sprintf("req-%d", i)}
		e := Entry{Action: "patient.read", PatientID: uuid.New(), ObjectType: "patient", ObjectID: fmt.Sprint(i)}
		if i%2 == 1 {
			e.Detail = map[string]any{"count": i, "z": "last", "a": []int{1, 2}}
			e.Outcome = OutcomeRefused
			a = access.System("test")
		}
		if err := pg.InTx(ctx, pool, func(tx pgx.Tx) error { return w.Write(ctx, tx, a, e) }); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := Seal(ctx, pool, SealBatch); err != nil || got != n {
		t.Fatalf("Seal = %d, %v; want %d", got, err, n)
	}
	return pool
}

// tamper runs sql as the superuser with the triggers off, as an attacker
// with the database's keys would.
func tamper(t *testing.T, pool *pgxpool.Pool, sqls ...string) {
	t.Helper()
	ctx := context.Background()
	err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
		for _, s := range sqls {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// forge appends a correctly hashed entry after seq `after` as a forger who
// knows the algorithm would, shifting the later entries up by one.
func forge(t *testing.T, pool *pgxpool.Pool, after int64) {
	t.Helper()
	ctx := context.Background()
	var prev []byte
	if err := pool.QueryRow(ctx, `SELECT hash FROM audit_chain WHERE seq = $1`, after).Scan(&prev); err != nil {
		t.Fatal(err)
	}
	l := Link{ID: 999_999, AtMicros: t0.UnixMicro(), ActorRole: "admin", Action: "patient.read", ObjectType: "patient", Outcome: "ok"}
	h := l.Compute(prev)
	tamper(t, pool,
		fmt.Sprintf(`UPDATE audit_chain SET seq = seq + 1000000 WHERE seq > %d`, after),
		`UPDATE audit_chain SET seq = seq - 1000000 + 1 WHERE seq > 1000000`,
		fmt.Sprintf(`INSERT INTO audit_entries (id, at, actor_role, action, object_type, outcome)
			VALUES (999999, '%s', 'admin', 'patient.read', 'patient', 'ok')`, t0.Format(time.RFC3339Nano)),
		fmt.Sprintf(`INSERT INTO audit_chain (seq, entry_id, prev_hash, hash, sealed_at) VALUES (%d, 999999, '\x%x', '\x%x', now())`,
			after+1, prev, h))
}

// entryAt is a subquery for the id of the entry chained at seq.
func entryAt(seq int) string {
	return fmt.Sprintf(`(SELECT entry_id FROM audit_chain WHERE seq = %d)`, seq)
}

// rechain recomputes every hash from seq `from` on, as a forger hiding an
// edit would.
func rechain(t *testing.T, pool *pgxpool.Pool, from int64) {
	t.Helper()
	ctx := context.Background()
	links, err := readLinks(ctx, pool, 1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	prev := genesis
	var sqls []string
	for _, l := range links {
		if l.Seq >= from {
			h := l.Compute(prev)
			sqls = append(sqls, fmt.Sprintf(`UPDATE audit_chain SET prev_hash = '\x%x', hash = '\x%x' WHERE seq = %d`, prev, h, l.Seq))
			l.Hash = h
		}
		prev = l.Hash
	}
	tamper(t, pool, sqls...)
}

// TestVerifyDetectsTampering is the tamper table: each way of changing the
// stored trail, and the break Verify must report (seq and kind).
func TestVerifyDetectsTampering(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name       string
		checkpoint bool // verify against a checkpoint taken before the tampering
		do         func(t *testing.T, pool *pgxpool.Pool)
		seq        int64
		kind       string
	}{
		{"untouched", false, func(*testing.T, *pgxpool.Pool) {}, 0, ""},
		{"untouched against its checkpoint", true, func(*testing.T, *pgxpool.Pool) {}, 0, ""},
		{"edit action", false, func(t *testing.T, p *pgxpool.Pool) {
			tamper(t, p, `UPDATE audit_entries SET action = 'patient.list' WHERE id = `+entryAt(3))
		}, 3, Edited},
		{"edit actor", false, func(t *testing.T, p *pgxpool.Pool) {
			tamper(t, p, `UPDATE audit_entries SET actor_id = NULL WHERE id = `+entryAt(5))
		}, 5, Edited},
		{"edit outcome refused to ok", false, func(t *testing.T, p *pgxpool.Pool) {
			tamper(t, p, `UPDATE audit_entries SET outcome = 'ok' WHERE id = `+entryAt(4))
		}, 4, Edited},
		{"edit detail", false, func(t *testing.T, p *pgxpool.Pool) {
			tamper(t, p, `UPDATE audit_entries SET detail = '{"count": 0}' WHERE id = `+entryAt(2))
		}, 2, Edited},
		{"edit time by a microsecond", false, func(t *testing.T, p *pgxpool.Pool) {
			tamper(t, p, `UPDATE audit_entries SET at = at + interval '1 microsecond' WHERE id = `+entryAt(6))
		}, 6, Edited},
		{"delete one", false, func(t *testing.T, p *pgxpool.Pool) {
			tamper(t, p, `DELETE FROM audit_entries WHERE id = `+entryAt(3), `DELETE FROM audit_chain WHERE seq = 3`)
		}, 3, Deleted},
		{"delete one, its link left", false, func(t *testing.T, p *pgxpool.Pool) {
			tamper(t, p, `DELETE FROM audit_entries WHERE id = `+entryAt(3))
		}, 3, Deleted},
		{"delete the first", false, func(t *testing.T, p *pgxpool.Pool) {
			tamper(t, p, `DELETE FROM audit_entries WHERE id = `+entryAt(1), `DELETE FROM audit_chain WHERE seq = 1`)
		}, 1, Deleted},
		{"delete one and renumber", false, func(t *testing.T, p *pgxpool.Pool) {
			tamper(t, p, `DELETE FROM audit_entries WHERE id = `+entryAt(4), `DELETE FROM audit_chain WHERE seq = 4`,
				`UPDATE audit_chain SET seq = seq - 1 WHERE seq > 4`)
		}, 4, Deleted},
		{"swap two", false, func(t *testing.T, p *pgxpool.Pool) {
			tamper(t, p, `UPDATE audit_chain SET seq = -seq WHERE seq IN (3, 4)`,
				`UPDATE audit_chain SET seq = CASE seq WHEN -3 THEN 4 ELSE 3 END WHERE seq < 0`)
		}, 3, Reordered},
		{"swap the entries of two links", false, func(t *testing.T, p *pgxpool.Pool) {
			tamper(t, p, `UPDATE audit_chain SET entry_id = -entry_id WHERE seq IN (3, 4)`,
				`UPDATE audit_chain c SET entry_id = -o.entry_id FROM audit_chain o WHERE c.seq IN (3, 4) AND o.seq = 7 - c.seq`)
		}, 3, Edited},
		{"move one to the end", false, func(t *testing.T, p *pgxpool.Pool) {
			tamper(t, p, `UPDATE audit_chain SET seq = 100 WHERE seq = 2`, `UPDATE audit_chain SET seq = seq - 1 WHERE seq BETWEEN 3 AND 8`,
				`UPDATE audit_chain SET seq = 8 WHERE seq = 100`)
		}, 2, Reordered},
		{"insert a forged entry with a valid hash", false, func(t *testing.T, p *pgxpool.Pool) { forge(t, p, 5) }, 6, Inserted},
		{"insert an entry with a made-up hash", false, func(t *testing.T, p *pgxpool.Pool) {
			tamper(t, p, `INSERT INTO audit_entries (id, actor_role, action, object_type) VALUES (999999, 'admin', 'patient.read', 'patient')`,
				`INSERT INTO audit_chain (seq, entry_id, prev_hash, hash, sealed_at) VALUES (9, 999999, '\x00', '\x01', now())`)
		}, 9, Edited},
		{"truncate the tail", true, func(t *testing.T, p *pgxpool.Pool) {
			tamper(t, p, `DELETE FROM audit_entries WHERE id IN (SELECT entry_id FROM audit_chain WHERE seq > 5)`,
				`DELETE FROM audit_chain WHERE seq > 5`)
		}, 6, Truncated},
		{"truncate everything", true, func(t *testing.T, p *pgxpool.Pool) {
			tamper(t, p, `TRUNCATE audit_entries, audit_chain`)
		}, 1, Truncated},
		{"truncate the entries, links left", true, func(t *testing.T, p *pgxpool.Pool) {
			tamper(t, p, `TRUNCATE audit_entries`)
		}, 1, Deleted},
		{"edit and re-chain the rest", true, func(t *testing.T, p *pgxpool.Pool) {
			tamper(t, p, `UPDATE audit_entries SET patient_id = NULL WHERE id = `+entryAt(3))
			rechain(t, p, 3)
		}, 8, Edited},
		{"edit and re-chain, no checkpoint (undetectable without one)", false, func(t *testing.T, p *pgxpool.Pool) {
			tamper(t, p, `UPDATE audit_entries SET patient_id = NULL WHERE id = `+entryAt(3))
			rechain(t, p, 3)
		}, 0, ""},
	}
	detected, tampered := 0, 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pool := seedChain(t, 8)
			var cp *Checkpoint
			if c.checkpoint {
				h, err := Head(ctx, pool, t0)
				if err != nil || h.Seq != 8 || h.Count != 8 {
					t.Fatalf("Head = %+v, %v", h, err)
				}
				cp = &h
			}
			c.do(t, pool)
			r, err := Verify(ctx, pool, cp)
			if err != nil {
				t.Fatal(err)
			}
			if c.kind == "" {
				if r.Break != nil {
					t.Fatalf("break %v on an untampered chain", r.Break)
				}
				return
			}
			tampered++
			if r.Break == nil {
				t.Fatalf("not detected (report %+v)", r)
			}
			if r.Break.Seq != c.seq || r.Break.Kind != c.kind {
				t.Fatalf("break = %v; want entry %d %s", r.Break, c.seq, c.kind)
			}
			detected++
			t.Logf("detected: %v", r.Break)
		})
	}
	t.Logf("%d of %d tampering cases detected", detected, tampered)
}

// TestCanonicalMatchesDatabase: the Go verifier's canonical form and hash
// are the database sealer's, for awkward content (NULLs, empty strings,
// non-ASCII, nested JSON).
func TestCanonicalMatchesDatabase(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	w := Writer{Now: func() time.Time { return t0.Add(987 * time.Microsecond) }}
	entries := []Entry{
		{Action: "a", ObjectType: ""},
		{Action: "ünïcödé", ObjectType: "x", ObjectID: "日本", PatientID: uuid.New(), Detail: map[string]any{"b": map[string]any{"y": 1.5, "x": nil}, "a": "\"quoted\""}},
	}
	for _, e := range entries {
		if err := pg.InTx(ctx, pool, func(tx pgx.Tx) error { return w.Write(ctx, tx, access.Actor{}, e) }); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Seal(ctx, pool, 10); err != nil {
		t.Fatal(err)
	}
	links, err := readLinks(ctx, pool, 1, 10)
	if err != nil || len(links) != 2 {
		t.Fatalf("links = %d, %v", len(links), err)
	}
	for _, l := range links {
		var dbCanon []byte
		if err := pool.QueryRow(ctx, `SELECT canonical FROM audit_entry_canonical WHERE id = $1`, l.ID).Scan(&dbCanon); err != nil {
			t.Fatal(err)
		}
		if got := l.Canonical(); string(got) != string(dbCanon) {
			t.Fatalf("seq %d: canonical differs\n go: %x\n db: %x", l.Seq, got, dbCanon)
		}
		if got := l.Compute(l.PrevHash); hex.EncodeToString(got) != hex.EncodeToString(l.Hash) {
			t.Fatalf("seq %d: hash differs", l.Seq)
		}
	}
}

// TestAuditRowsCannotChange: the triggers refuse UPDATE, DELETE and TRUNCATE
// even for the owner (tests connect as a superuser), and the application
// role tend_app has no UPDATE, DELETE or TRUNCATE privilege, may not insert
// chain columns, but may insert, read and seal.
func TestAuditRowsCannotChange(t *testing.T) {
	ctx := context.Background()
	pool := seedChain(t, 3)
	// An unsealed entry too: even before sealing, its content cannot change.
	w := Writer{Now: func() time.Time { return t0 }}
	if err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
		return w.Write(ctx, tx, access.System("test"), Entry{Action: "x.read", ObjectType: "x"})
	}); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`UPDATE audit_entries SET action = 'x' WHERE id = ` + entryAt(1),
		`UPDATE audit_entries SET action = 'x' WHERE id NOT IN (SELECT entry_id FROM audit_chain)`,
		`DELETE FROM audit_entries WHERE id = ` + entryAt(3),
		`DELETE FROM audit_entries`,
		`TRUNCATE audit_entries`,
		`UPDATE audit_chain SET hash = '\x00' WHERE seq = 2`,
		`UPDATE audit_chain SET seq = 99 WHERE seq = 3`,
		`DELETE FROM audit_chain WHERE seq = 3`,
		`DELETE FROM audit_chain`,
		`TRUNCATE audit_chain`,
	} {
		_, err := pool.Exec(ctx, stmt)
		if err == nil || !strings.Contains(err.Error(), "audit entries") {
			t.Errorf("%s as the owner: err = %v, want the trigger's refusal", stmt, err)
		}
	}
	// As the application role.
	asApp := func(stmt string) error {
		return pg.InTx(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL ROLE tend_app`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, stmt)
			return err
		})
	}
	for _, stmt := range []string{
		`UPDATE audit_entries SET action = 'x' WHERE id = ` + entryAt(1),
		`DELETE FROM audit_entries WHERE id = ` + entryAt(1),
		`TRUNCATE audit_entries`,
		`INSERT INTO audit_entries (id, actor_role, action, object_type) VALUES (1000000, 'admin', 'a', 'b')`,
		`INSERT INTO audit_chain (seq, entry_id, prev_hash, hash, sealed_at) VALUES (4, 1, '\x00', '\x00', now())`,
		`UPDATE audit_chain SET hash = '\x00' WHERE seq = 1`,
		`DELETE FROM audit_chain WHERE seq = 3`,
		`TRUNCATE audit_chain`,
		`UPDATE audit_seal_state SET low = 1000000`,
	} {
		if err := asApp(stmt); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%s as tend_app: err = %v, want permission denied", stmt, err)
		}
	}
	for _, stmt := range []string{
		`INSERT INTO audit_entries (actor_role, action, object_type) VALUES ('admin', 'patient.read', 'patient')`,
		`SELECT count(*) FROM audit_entries`,
		`SELECT count(*) FROM audit_chain`,
		`SELECT tend_audit_seal(100)`,
		`SELECT count(*) FROM tend_audit_unchained(100)`,
	} {
		if err := asApp(stmt); err != nil {
			t.Errorf("%s as tend_app: %v", stmt, err)
		}
	}
	if r, err := Verify(ctx, pool, nil); err != nil || r.Break != nil || r.Sealed != 5 || r.Unsealed != 0 {
		t.Fatalf("Verify = %+v, %v; want 5 sealed entries, intact", r, err)
	}
}

// TestConcurrentWritersAndSealers: many transactions append while several
// sealers run at once; every committed entry is sealed exactly once, seq
// has no gaps, rolled-back entries never appear, and the chain verifies.
func TestConcurrentWritersAndSealers(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	w := Writer{Now: func() time.Time { return t0 }}
	const writers, each = 8, 40
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := Seal(ctx, pool, 7); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var writes sync.WaitGroup
	for i := range writers {
		writes.Go(func() {
			for j := range each {
				err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
					if err := w.Write(ctx, tx, access.System("test"), Entry{Action: "x.read", ObjectType: "x", ObjectID: fmt.Sprint(i, j)}); err != nil {
						return err
					}
					if j%5 == 0 { // rolled back: must leave no entry
						return fmt.Errorf("roll back")
					}
					return nil
				})
				if err != nil && err.Error() != "roll back" {
					t.Error(err)
				}
			}
		})
	}
	writes.Wait()
	close(stop)
	wg.Wait()
	for {
		n, err := Seal(ctx, pool, SealBatch)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	r, err := Verify(ctx, pool, nil)
	if err != nil || r.Break != nil {
		t.Fatalf("Verify = %+v, %v", r, err)
	}
	want := int64(writers * each * 4 / 5)
	if r.Sealed != want || r.HeadSeq != want || r.Unsealed != 0 {
		t.Fatalf("report %+v; want %d sealed, seq 1..%d", r, want, want)
	}
}

// TestCheckpointSignature: a signed checkpoint verifies with its key's public
// half only, and any change to it breaks the signature.
func TestCheckpointSignature(t *testing.T) {
	key, err := ParseSigningKey("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	if err != nil {
		t.Fatal(err)
	}
	c := Checkpoint{Seq: 8, Count: 8, Hash: strings.Repeat("ab", 32), At: t0}
	c.Sign(key)
	if err := c.CheckSignature(key.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	other, _, _ := ed25519.GenerateKey(nil)
	if err := c.CheckSignature(other); err == nil {
		t.Fatal("a different key verified the signature")
	}
	forged := c
	forged.Seq = 5
	if err := forged.CheckSignature(key.Public().(ed25519.PublicKey)); err == nil {
		t.Fatal("an edited checkpoint kept its signature")
	}
	if _, err := ParseSigningKey("not base64!"); err == nil || strings.Contains(err.Error(), "not base64!") {
		t.Fatalf("bad key: err = %v (must fail without echoing it)", err)
	}
}

// TestSealerWaitsForLateCommits: an entry whose transaction took its id
// before others but commits after they were sealed, over many passes, is
// still chained once it commits (the sealer's low-water mark never passes an
// id a running transaction holds).
func TestSealerWaitsForLateCommits(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	w := Writer{Now: func() time.Time { return t0 }}
	write := func(tx pgx.Tx, obj string) error {
		return w.Write(ctx, tx, access.System("test"), Entry{Action: "x.read", ObjectType: "x", ObjectID: obj})
	}
	late, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = late.Rollback(ctx) }()
	if err := write(late, "late"); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := pg.InTx(ctx, pool, func(tx pgx.Tx) error { return write(tx, fmt.Sprint(i)) }); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := Seal(ctx, pool, SealBatch); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := late.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := Seal(ctx, pool, SealBatch); err != nil || n != 1 {
		t.Fatalf("Seal after the late commit = %d, %v; want the late entry", n, err)
	}
	r, err := Verify(ctx, pool, nil)
	if err != nil || r.Break != nil || r.Sealed != 6 || r.Unsealed != 0 {
		t.Fatalf("Verify = %+v, %v; want 6 sealed entries, intact", r, err)
	}
	var obj string
	if err := pool.QueryRow(ctx, `SELECT e.object_id FROM audit_chain c JOIN audit_entries e ON e.id = c.entry_id
		WHERE c.seq = 6`).Scan(&obj); err != nil || obj != "late" {
		t.Fatalf("the last link chains %q, %v; want the late entry", obj, err)
	}
}
