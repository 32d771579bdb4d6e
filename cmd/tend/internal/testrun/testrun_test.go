package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const stream = `{"Action":"start","Package":"example.org/m/a"}
{"Action":"run","Package":"example.org/m/a","Test":"TestOK"}
{"Action":"output","Package":"example.org/m/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"pass","Package":"example.org/m/a","Test":"TestOK","Elapsed":0.1}
{"Action":"run","Package":"example.org/m/a","Test":"TestNode"}
{"Action":"output","Package":"example.org/m/a","Test":"TestNode","Output":"=== RUN   TestNode\n"}
{"Action":"output","Package":"example.org/m/a","Test":"TestNode","Output":"    a_test.go:9: npm not found: validation skipped\n"}
{"Action":"output","Package":"example.org/m/a","Test":"TestNode","Output":"--- SKIP: TestNode (0.00s)\n"}
{"Action":"skip","Package":"example.org/m/a","Test":"TestNode","Elapsed":0}
{"Action":"output","Package":"example.org/m/a","Output":"PASS\n"}
{"Action":"pass","Package":"example.org/m/a","Elapsed":1.25}
{"Action":"start","Package":"example.org/m/b"}
{"Action":"run","Package":"example.org/m/b","Test":"TestBad"}
{"Action":"output","Package":"example.org/m/b","Test":"TestBad","Output":"    b_test.go:12: got 3, want 4\n"}
{"Action":"fail","Package":"example.org/m/b","Test":"TestBad","Elapsed":0.2}
{"Action":"fail","Package":"example.org/m/b","Elapsed":2}
{"ImportPath":"example.org/m/c [example.org/m/c.test]","Action":"build-output","Output":"c/c.go:3:1: syntax error\n"}
{"ImportPath":"example.org/m/c [example.org/m/c.test]","Action":"build-fail"}
{"Action":"start","Package":"example.org/m/c"}
{"Action":"fail","Package":"example.org/m/c","Elapsed":0,"FailedBuild":"example.org/m/c [example.org/m/c.test]"}
{"Action":"start","Package":"example.org/m/d"}
{"Action":"output","Package":"example.org/m/d","Output":"?   \texample.org/m/d\t[no test files]\n"}
{"Action":"skip","Package":"example.org/m/d","Elapsed":0}
`

func TestFormatter(t *testing.T) {
	var out bytes.Buffer
	clock := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	f := newFormatter(&out, "example.org/m", func() time.Time { return clock })
	f.run(strings.NewReader(stream), nil)
	if f.summary() {
		t.Error("summary reports success with a failed package")
	}
	got := out.String()
	for _, want := range []string{
		"ok    a                               1.2s  1 passed, 1 skipped\n",
		"FAIL  b                               2.0s  0 passed, 1 failed\n    b_test.go:12: got 3, want 4\n",
		"FAIL  c                               0.0s  0 passed, 0 failed\n    build failed:\n    c/c.go:3:1: syntax error\n",
		"a TestNode: a_test.go:9: npm not found: validation skipped",
		"3 packages tested in 0s (1 without tests); FAILED: b, c",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "TestOK") || strings.Contains(got, "m/d") {
		t.Errorf("output shows passing tests or packages without tests:\n%s", got)
	}
}

func TestTickListsRunningPackages(t *testing.T) {
	var out bytes.Buffer
	clock := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	f := newFormatter(&out, "example.org/m", func() time.Time { return clock })
	f.tick()
	f.handle(event{Action: "start", Package: "example.org/m/slow"})
	clock = clock.Add(95 * time.Second)
	f.tick()
	if got := out.String(); got != "…     building (0s, 0 packages done)\n…     running slow (1m35s)\n" {
		t.Errorf("ticks: %q", got)
	}
}

// TestDropNewTemplates: templates that appeared during the run are dropped,
// those that existed before and those in use are kept. It works under a
// prefix of its own, never touching real templates.
func TestDropNewTemplates(t *testing.T) {
	ctx := context.Background()
	server := serverURL()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Skipf("no PostgreSQL at the test server: %v", err)
	}
	t.Cleanup(func() { conn.Close(ctx) }) // registered first, so it runs after the drops below
	var b [4]byte
	_, _ = rand.Read(b[:])
	prefix := templatePrefix + "testrun_" + hex.EncodeToString(b[:]) + "_"
	mk := func(name string) {
		t.Helper()
		id := pgx.Identifier{prefix + name}.Sanitize()
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+id); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "ALTER DATABASE "+id+" IS_TEMPLATE true"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if _, err := conn.Exec(ctx, "ALTER DATABASE "+id+" IS_TEMPLATE false"); err != nil {
				t.Logf("cleanup: %v", err)
			}
			if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)"); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
	}
	mk("old")
	before, err := templates(ctx, server, prefix)
	if err != nil || len(before) != 1 {
		t.Fatalf("before: %v, %v", before, err)
	}
	mk("new")
	mk("busy")
	busyURL := strings.Replace(server, "/postgres?", "/"+prefix+"busy?", 1)
	if busyURL == server {
		t.Skip("cannot derive a database URL from the server URL")
	}
	busy, err := pgx.Connect(ctx, busyURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close(ctx) }) // before the drops below

	var out bytes.Buffer
	if err := dropNewTemplates(ctx, server, prefix, before, &out); err != nil {
		t.Fatal(err)
	}
	after, err := templates(ctx, server, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if !after[prefix+"old"] || after[prefix+"new"] || !after[prefix+"busy"] {
		t.Errorf("after: %v; want old and busy kept, new dropped\n%s", after, out.String())
	}
	var isTemplate bool
	if err := conn.QueryRow(ctx, `SELECT datistemplate FROM pg_database WHERE datname = $1`, prefix+"busy").Scan(&isTemplate); err != nil || !isTemplate {
		t.Errorf("busy is no longer a template: %v, %v", isTemplate, err)
	}
}
