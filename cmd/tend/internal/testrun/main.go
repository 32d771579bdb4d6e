// Command testrun runs `go test -json` with the arguments after its own flags
// and prints one line per package as each finishes (the output of failed
// tests in full, the skipped tests at the end, and every -tick the packages
// still running), so a long `make test` shows its progress.
//
// It also drops the template databases (tend_tmpl_<hash>, made by
// engine/enginetest) that appeared on the test server during the run: those
// it created. Templates that existed before are kept, and so is one that
// another session is using at the end (PostgreSQL refuses to drop it).
//
//	go run ./cmd/tend/internal/testrun [-tick 30s] -- -race -count=1 ./...
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// templatePrefix and templateLock are engine/enginetest's: the names of
	// its template databases and the advisory lock it creates them under.
	templatePrefix = "tend_tmpl_"
	templateLock   = 727274
)

func main() {
	fs := flag.NewFlagSet("testrun", flag.ExitOnError)
	tick := fs.Duration("tick", 30*time.Second, "how often to list the packages still running")
	keep := fs.Bool("keep-templates", false, "keep the template databases this run created")
	_ = fs.Parse(os.Args[1:])
	os.Exit(run(fs.Args(), *tick, *keep, os.Stdout, os.Stderr))
}

func run(testArgs []string, tick time.Duration, keep bool, stdout, stderr io.Writer) int {
	// Ctrl-C reaches `go test` too (same process group); wait for it to end
	// so the templates are still cleaned up.
	signal.Ignore(os.Interrupt, syscall.SIGTERM)
	ctx := context.Background()
	server := serverURL()
	before, err := templates(ctx, server, templatePrefix)
	if err != nil {
		fmt.Fprintf(stderr, "testrun: cannot list template databases (%v); none will be dropped\n", err)
	}

	cmd := exec.Command("go", append([]string{"test", "-json"}, testArgs...)...)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(stderr, "testrun:", err)
		return 1
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(stderr, "testrun:", err)
		return 1
	}
	module := "github.com/tendhealth/tend"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Path != "" {
		module = bi.Main.Path
	}
	f := newFormatter(stdout, module, time.Now)
	t := time.NewTicker(tick)
	f.run(out, t.C)
	t.Stop()
	waitErr := cmd.Wait()
	ok := f.summary()

	if before != nil && !keep {
		if err := dropNewTemplates(ctx, server, templatePrefix, before, stdout); err != nil {
			fmt.Fprintf(stderr, "testrun: template databases: %v\n", err)
		}
	}
	var ee *exec.ExitError
	switch {
	case errors.As(waitErr, &ee):
		return ee.ExitCode()
	case waitErr != nil:
		fmt.Fprintln(stderr, "testrun:", waitErr)
		return 1
	case !ok:
		return 1
	}
	return 0
}

// serverURL is the server the tests use (as engine/enginetest chooses it).
func serverURL() string {
	for _, k := range []string{"TEST_DATABASE_URL", "TEND_DATABASE_URL"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// templates lists the databases on the server whose names start with prefix.
func templates(ctx context.Context, url, prefix string) (map[string]bool, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(cctx, `SELECT datname FROM pg_database WHERE starts_with(datname, $1)`, prefix)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, n := range names {
		out[n] = true
	}
	return out, nil
}

// dropNewTemplates drops the templates that are not in before, holding
// enginetest's lock so no test is creating one meanwhile. A template another
// session is connected to (a concurrent run cloning it) is kept.
func dropNewTemplates(ctx context.Context, url, prefix string, before map[string]bool, w io.Writer) error {
	now, err := templates(ctx, url, prefix)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := pgx.Connect(cctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(cctx, `SELECT pg_advisory_lock($1)`, templateLock); err != nil {
		return err
	}
	defer func() { _, _ = conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, templateLock) }()
	for name := range now {
		if before[name] {
			continue
		}
		id := pgx.Identifier{name}.Sanitize()
		// PostgreSQL refuses to drop a database marked as a template.
		if _, err := conn.Exec(cctx, "ALTER DATABASE "+id+" IS_TEMPLATE false"); err != nil {
			fmt.Fprintf(w, "kept template database %s: %v\n", name, err)
			continue
		}
		if _, err := conn.Exec(cctx, "DROP DATABASE "+id); err != nil {
			_, _ = conn.Exec(cctx, "ALTER DATABASE "+id+" IS_TEMPLATE true")
			fmt.Fprintf(w, "kept template database %s (in use): %v\n", name, err)
			continue
		}
		fmt.Fprintf(w, "dropped template database %s (created by this run)\n", name)
	}
	return nil
}
