package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/migrations"

	"github.com/tendhealth/tend/cmd/tend/internal/pgcluster"
)

// TestBackupRestore follows docs/deploy.md: pg_dump a live database, restore
// it into a new one with pg_restore, and serve the API from the copy — the
// restored database is fully migrated, its token authenticates and its
// patient is there.
func TestBackupRestore(t *testing.T) {
	bin, err := pgcluster.Bin()
	if err != nil {
		t.Skip("no PostgreSQL client binaries:", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	src := enginetest.NewDatabase(t)
	env := envMap(map[string]string{"TEND_DATABASE_URL": src})

	var tok, errOut bytes.Buffer
	if err := runEnv(ctx, env, []string{"token", "create", "--role", "admin", "--name", "Ops"}, &tok, &errOut); err != nil {
		t.Fatalf("token create: %v\n%s", err, errOut.String())
	}
	token := strings.TrimSpace(tok.String())
	eng, done, err := adminEngine(ctx, env, io.Discard, src)
	if err != nil {
		t.Fatal(err)
	}
	_, pat := teamWithPatient(t, ctx, eng, "Cardiology RPM", "", "Restored Patient")
	if _, err := eng.SealAudit(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	done()
	// The checkpoint taken before the backup must hold on the restored copy.
	var cp bytes.Buffer
	if err := runEnv(ctx, env, []string{"audit", "checkpoint"}, &cp, &errOut); err != nil {
		t.Fatalf("audit checkpoint: %v\n%s", err, errOut.String())
	}
	checkpoint := filepath.Join(t.TempDir(), "checkpoint.json")
	if err := os.WriteFile(checkpoint, cp.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	dump := filepath.Join(t.TempDir(), "tend.dump")
	if out, err := exec.CommandContext(ctx, filepath.Join(bin, "pg_dump"), "--format=custom", "--file="+dump, src).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	dst := newEmptyDatabase(ctx, t)
	if out, err := exec.CommandContext(ctx, filepath.Join(bin, "pg_restore"), "--no-owner", "--exit-on-error", "--dbname="+dst, dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}

	var verified bytes.Buffer
	if err := runEnv(ctx, envMap(map[string]string{"TEND_DATABASE_URL": dst}), []string{"audit", "verify", "--checkpoint", checkpoint}, &verified, &errOut); err != nil {
		t.Fatalf("audit verify on the restored database: %v\n%s%s", err, verified.String(), errOut.String())
	}
	if !strings.HasPrefix(verified.String(), "ok: ") || strings.HasPrefix(verified.String(), "ok: 0 entries") {
		t.Errorf("audit verify on the restored database: %q, want a verified chain of the source's entries", verified.String())
	}

	s, err := loadSettings(envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	pool, err := openPool(ctx, dst, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := migrations.Check(ctx, pool); err != nil {
		t.Fatalf("restored database: %v", err)
	}
	running, err := startSystem(ctx, s, pool, slog.New(slog.DiscardHandler), systemOpts{withAPI: true})
	if err != nil {
		t.Fatal(err)
	}
	defer running.stop()
	srv := httptest.NewServer(running.api)
	defer srv.Close()
	get := func(path string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz on the restored database: %d %s", code, body)
	}
	if code, body := get("/v1/patients/" + pat.ID.String()); code != http.StatusOK || !strings.Contains(body, "Restored Patient") {
		t.Errorf("patient on the restored database: %d %s", code, body)
	}
	if code, _ := get("/v1/patients/" + uuid.NewString()); code != http.StatusNotFound {
		t.Errorf("unknown patient: %d, want 404 (the check above must be able to fail)", code)
	}
}

// newEmptyDatabase creates an empty database on the test server, dropped when
// t ends, and returns its URL (with the server URL's credentials).
func newEmptyDatabase(ctx context.Context, t *testing.T) string {
	t.Helper()
	server := enginetest.ServerURL()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "tend_test_restore_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := dropDatabase(context.Background(), server, name); err != nil {
			t.Logf("drop %s: %v", name, err)
		}
	})
	u, err := url.Parse(server)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
