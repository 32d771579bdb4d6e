package main

import (
	"context"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeTour returns the shell block of README's five-minute tour.
func readmeTour(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "## A five-minute tour with curl")
	if !ok {
		t.Fatal("README.md has no tour section")
	}
	_, block, ok := strings.Cut(section, "```sh\n")
	if !ok {
		t.Fatal("the tour section has no sh block")
	}
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatal("the tour's sh block does not end")
	}
	return block
}

// TestReadmeTour runs README's tour block, as written, in bash against a
// fresh database and a free port: it must exit 0, the push must reach the
// local receiver, the alert must be acknowledged and the bad reading
// refused. Then it runs the block as pasted into an interactive shell (where
// a failing command does not stop the rest) against a database that does
// not exist: it must end, failing, within 30 s, after the server's error.
// The background server and receiver are stopped afterwards.
func TestReadmeTour(t *testing.T) {
	var missing []string
	for _, tool := range []string{"bash", "curl", "jq", "make", "tee", "mktemp"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the README tour needs %v", missing)
		}
		t.Skipf("the README tour needs %v", missing)
	}
	block := readmeTour(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	text, ok, _ := runTour(ctx, t, block, newEmptyDatabase(ctx, t), "-e")
	if !ok {
		t.Fatalf("the tour failed:\n%s", text)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`"platform":"webpush","enabled":true`),
		regexp.MustCompile(`"urgency":"critical"`),
		regexp.MustCompile(`(?m)^push received: critical alert "New critical alert" \(Urgency: high, TTL: \d+s\)$`),
		regexp.MustCompile(`"undelivered": false`),
		regexp.MustCompile(`(?m)^"acknowledged"$`),
		regexp.MustCompile(`"field":"value"`),
		regexp.MustCompile(`(?m)^tend_readings_ingested_total 1$`),
	} {
		if !want.MatchString(text) {
			t.Errorf("the tour's output lacks %s:\n%s", want, text)
		}
	}

	t.Run("missing database", func(t *testing.T) {
		u, err := url.Parse(newEmptyDatabase(ctx, t))
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(u.Path, "/") + "_missing"
		u.Path = "/" + name
		// The binary is built: the block's make build may not spend the
		// 30 s (a link under load takes a while).
		shims := t.TempDir()
		if err := os.WriteFile(filepath.Join(shims, "make"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		limit, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		text, ok, took := runTour(limit, t, block, u.String(), "+e", "PATH="+shims+":"+os.Getenv("PATH"))
		if ok || limit.Err() != nil {
			t.Fatalf("the tour against a missing database did not fail within 30 s (ok %v, %s):\n%s", ok, took, text)
		}
		served, _, found := strings.Cut(text, "tend serve stopped: its error is above")
		if !found || !strings.Contains(served, `database "`+name+`" does not exist`) {
			t.Errorf("the tour did not stop after the server's error:\n%s", text)
		}
		t.Logf("failed after %s", took)
	})
}

// runTour runs the block in bash with the shell option opt (-e: stop at the
// first failure; +e: carry on, as pasted), on database dbURL and a free port,
// with env added, until it ends or ctx does. It returns the output, whether
// the block succeeded, and how long it took.
func runTour(ctx context.Context, t *testing.T, block, dbURL, opt string, env ...string) (string, bool, time.Duration) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	cmd := exec.Command("bash", opt, "-c", block)
	cmd.Dir = repoRoot
	cmd.Env = append(append(os.Environ(), "TEND_DATABASE_URL="+dbURL, "TEND_ADDR="+addr, "TEND_LOG_LEVEL=warn"), env...)
	// Its own process group, so that the server and the receiver it leaves
	// running in the background are stopped with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A file, not a pipe: the background jobs would keep a pipe open.
	out, err := os.Create(filepath.Join(t.TempDir(), "tour.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	stop := func() { _ = syscall.Kill(-pgid, syscall.SIGTERM) }
	t.Cleanup(stop)
	ended := make(chan struct{})
	defer close(ended)
	go func() {
		select {
		case <-ctx.Done():
			stop()
		case <-ended:
		}
	}()
	state, err := cmd.Process.Wait()
	took := time.Since(start)
	stop()
	b, _ := os.ReadFile(out.Name())
	return string(b), err == nil && state.Success(), took
}

// TestMigrateUpPrintsEachStepOnce: at the default log level, tend migrate up
// names each migration it applies once (River's own log line per migration
// said it a second time in the tour).
func TestMigrateUpPrintsEachStepOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := newEmptyDatabase(ctx, t)
	var out strings.Builder
	if err := runEnv(ctx, envMap(map[string]string{"TEND_DATABASE_URL": db}), []string{"migrate", "up"}, &out, &out); err != nil {
		t.Fatalf("migrate up: %v\n%s", err, out.String())
	}
	text := out.String()
	if strings.Count(text, "applied river 1 ") != 1 || strings.Count(text, "applied tend 1 ") != 1 ||
		strings.Contains(text, "Applied migration") {
		t.Errorf("migrate up did not print each migration once:\n%s", text)
	}
}
