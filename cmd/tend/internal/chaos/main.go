// Command chaos breaks a running Tend on purpose and checks that nothing was
// lost. `make chaos` (run by CI) kills tend serve and tend worker with
// SIGKILL, ends their database connections and restarts a private
// PostgreSQL cluster with -m immediate, all under load with critical
// readings; `make ha-test` fails a pg_auto_failover primary over to its
// standby; `-scenario scale` runs three tend serve and two tend worker
// processes on one database. Each prints its figures and exits 1 when a
// check fails.
//
// It needs PostgreSQL's server binaries (and, for ha, pg_autoctl); as root
// it runs the clusters as the postgres user.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	scenario := flag.String("scenario", "chaos", "what to run: chaos, ha or scale")
	bin := flag.String("tend", "bin/tend", "the tend binary to run")
	keep := flag.Bool("keep", false, "keep the working directory (clusters and process logs) after the run")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, *scenario, *bin, *keep))
}

func run(ctx context.Context, scenario, bin string, keep bool) int {
	started := time.Now()
	h, err := newHarness(bin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 1
	}
	defer h.push.close()
	defer func() {
		if keep || len(h.failures) > 0 {
			h.printf("logs and clusters kept in %s", h.dir)
			return
		}
		_ = os.RemoveAll(h.dir)
	}()
	scenarios := map[string]func(context.Context) error{"chaos": h.chaos, "ha": h.ha, "scale": h.scale}
	f, ok := scenarios[scenario]
	if !ok {
		fmt.Fprintf(os.Stderr, "chaos: unknown scenario %q (chaos, ha or scale)\n", scenario)
		return 2
	}
	if err := f(ctx); err != nil {
		h.fail("%v", err)
	}
	h.printf("%s took %s", scenario, time.Since(started).Round(time.Second))
	if len(h.failures) > 0 {
		h.printf("%d checks failed", len(h.failures))
		return 1
	}
	h.printf("every check passed")
	return 0
}
