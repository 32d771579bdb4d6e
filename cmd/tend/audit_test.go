package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// tend audit checkpoint prints a signed head; tend audit verify accepts the
// intact chain, then names the first broken entry (exit 1) after an entry is
// edited, and a cut-off tail against the exported checkpoint.
func TestAuditCommands(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := enginetest.NewDatabase(t)
	seed := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	env := envMap(map[string]string{"TEND_DATABASE_URL": db, "TEND_AUDIT_SIGNING_KEY": seed})
	var out, errOut bytes.Buffer
	for range 3 { // each creates a user: three audit entries
		if err := runEnv(ctx, env, []string{"token", "create", "--role", "clinician"}, io.Discard, &errOut); err != nil {
			t.Fatalf("token create: %v\n%s", err, errOut.String())
		}
	}
	eng, done, err := adminEngine(ctx, env, io.Discard, db)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	if _, err := eng.SealAudit(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	if err := runEnv(ctx, env, []string{"audit", "checkpoint"}, &out, &errOut); err != nil {
		t.Fatalf("checkpoint: %v\n%s", err, errOut.String())
	}
	var cp engine.AuditCheckpoint
	if err := json.Unmarshal(out.Bytes(), &cp); err != nil || cp.Signature == "" || cp.Seq < 3 || cp.Count != cp.Seq {
		t.Fatalf("checkpoint %s: %+v, %v", out.String(), cp, err)
	}
	file := filepath.Join(t.TempDir(), "cp.json")
	if err := os.WriteFile(file, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := runEnv(ctx, env, []string{"audit", "verify", "--checkpoint", file}, &out, &errOut); err != nil {
		t.Fatalf("verify intact: %v\n%s%s", err, out.String(), errOut.String())
	}
	if !strings.HasPrefix(out.String(), "ok: ") {
		t.Fatalf("verify intact printed %q", out.String())
	}
	// A forged checkpoint fails its signature.
	forged := strings.Replace(string(mustRead(t, file)), `"seq": `, `"seq": 1`, 1)
	if err := os.WriteFile(file+".forged", []byte(forged), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := runEnv(ctx, env, []string{"audit", "verify", "--checkpoint", file + ".forged"}, io.Discard, io.Discard); exitCode(err) != 1 {
		t.Fatalf("verify with a forged checkpoint: %v, want exit 1", err)
	}
	// Cut off the tail as a superuser with the triggers off.
	tamperDB(t, ctx, db, `DELETE FROM audit_entries WHERE id = (SELECT entry_id FROM audit_chain ORDER BY seq DESC LIMIT 1)`)
	tamperDB(t, ctx, db, `DELETE FROM audit_chain WHERE seq = (SELECT max(seq) FROM audit_chain)`)
	out.Reset()
	err = runEnv(ctx, env, []string{"audit", "verify", "--checkpoint", file}, &out, io.Discard)
	if exitCode(err) != 1 || !strings.Contains(out.String(), "truncated") {
		t.Fatalf("verify after truncation: %v, %q", err, out.String())
	}
	tamperDB(t, ctx, db, `UPDATE audit_entries SET action = 'user.list' WHERE id = (SELECT entry_id FROM audit_chain WHERE seq = 2)`)
	out.Reset()
	err = runEnv(ctx, env, []string{"audit", "verify"}, &out, io.Discard)
	if exitCode(err) != 1 || !strings.Contains(out.String(), "BROKEN at entry 2: edited") {
		t.Fatalf("verify after an edit: %v, %q", err, out.String())
	}
}

func mustRead(t *testing.T, f string) []byte {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tamperDB(t *testing.T, ctx context.Context, db, stmt string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SET session_replication_role = replica`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, stmt); err != nil {
		t.Fatal(err)
	}
}
