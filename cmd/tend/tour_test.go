package main

import (
	"context"
	"net"
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
// refused. The background server and receiver are stopped afterwards.
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
	dbURL := newEmptyDatabase(ctx, t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	cmd := exec.Command("bash", "-e", "-c", block)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "TEND_DATABASE_URL="+dbURL, "TEND_ADDR="+addr, "TEND_LOG_LEVEL=warn")
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
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	stop := func() { _ = syscall.Kill(-pgid, syscall.SIGTERM) }
	t.Cleanup(stop)
	go func() { <-ctx.Done(); stop() }()
	state, err := cmd.Process.Wait()
	stop()
	b, _ := os.ReadFile(out.Name())
	text := string(b)
	if err != nil || !state.Success() {
		t.Fatalf("the tour failed (%v, %v):\n%s", err, state, text)
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
}
