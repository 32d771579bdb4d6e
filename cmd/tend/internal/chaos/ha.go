package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The ha scenario's goals (the issue's).
const (
	haWritesGoal = 30 * time.Second // writes succeed again within this of the primary's loss
	haPatients   = 400
	haClients    = 12
)

// formation is a running pg_auto_failover formation: the monitor and two
// nodes, the first the primary.
type formation struct {
	monitor, primary, standby *member
	monitorURL, adminURL      string
}

// ha starts a pg_auto_failover formation from deploy/ha, two tend serve and
// one tend worker on its multi-host URL, drives load with critical readings
// and a clinician's live stream, and kills the primary (its pg_autoctl, its
// postmaster and every backend, with SIGKILL: the host is lost). It reports
// what the clients saw.
func (h *harness) ha(ctx context.Context) error {
	f, err := h.startFormation(ctx)
	if f != nil {
		defer func() {
			for _, m := range []*member{f.standby, f.primary, f.monitor} {
				if m != nil {
					m.stop(h.dir)
				}
			}
		}()
	}
	if err != nil {
		return err
	}
	dbURL := fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/tend?target_session_attrs=read-write&sslmode=disable&connect_timeout=3",
		f.primary.port, f.standby.port)
	h.printf("formation up: monitor :%d, primary :%d, standby :%d; synchronous_standby_names = %s", f.monitor.port, f.primary.port,
		f.standby.port, syncNames(ctx, f.primary.port))
	admin, err := h.migrate(ctx, dbURL)
	if err != nil {
		return err
	}
	procs, err := h.startTend(ctx, dbURL, "serve", "serve", "worker")
	for _, p := range procs {
		defer p.stop()
	}
	if err != nil {
		return err
	}
	a, b := procs[0], procs[1]
	w, err := h.enrol(ctx, a.base, admin, haPatients)
	if err != nil {
		return err
	}
	return h.failover(ctx, f, dbURL, w, a, b)
}

// failover runs the load, kills the primary and reports.
func (h *harness) failover(ctx context.Context, f *formation, dbURL string, w *world, a, b *proc) error {
	d := newDriver(func() []string { return []string{a.base, b.base} }, w.clinicianToken, w.patients)
	d.start(ctx, haClients)
	defer d.finish()
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watch := &streamWatch{}
	go watch.run(watchCtx, b.base, w.clinicianToken)

	sleep(ctx, 8*time.Second)
	killed := time.Now()
	pm := f.primary.kill(h.dir)
	h.printf("kill -9 of the primary's pg_autoctl, postmaster (pid %d) and backends", pm)
	back := d.firstSuccessAfter(ctx, killed, 3*time.Minute)
	if back.IsZero() {
		return fmt.Errorf("no write succeeded within 3 minutes of the primary's loss")
	}
	h.printf("writes succeed again %s after the primary's loss (goal ≤ %s)", round(back.Sub(killed)), haWritesGoal)
	if back.Sub(killed) > haWritesGoal {
		h.fail("writes came back after %s, over the goal of %s", round(back.Sub(killed)), haWritesGoal)
	}
	sleep(ctx, 10*time.Second)
	d.finish()

	criticals, err := h.checkStore(ctx, dbURL, d)
	if err != nil {
		return err
	}
	h.checkPushes(ctx, criticals, nil, 2*time.Minute, pushBound)
	h.checkAnswers(d)
	h.checkResumed(ctx, dbURL, killed, back, watch)
	for _, p := range []*proc{a, b} {
		if n := p.unplannedExits(); n > 0 {
			h.fail("tend %s exited %d times by itself", p.name, n)
		}
	}
	return nil
}

// checkResumed reports the River jobs finished on the new primary and the
// alert events the live stream carried after writes came back.
func (h *harness) checkResumed(ctx context.Context, dbURL string, killed, back time.Time, watch *streamWatch) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		h.fail("connect to the new primary: %v", err)
		return
	}
	defer conn.Close(ctx)
	var jobs, older int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE created_at < $1)
		FROM river_job WHERE finalized_at > $1 AND state = 'completed'`, killed).Scan(&jobs, &older); err != nil {
		h.fail("count River jobs: %v", err)
		return
	}
	h.printf("River jobs completed on the new primary: %d (of them enqueued before the failover: %d)", jobs, older)
	if jobs == 0 {
		h.fail("no River job completed after the failover")
	}
	events, reconnects := watch.after(back)
	h.printf("live stream: %d alert events after writes came back, %d reconnections (Last-Event-ID)", events, reconnects)
	if events == 0 {
		h.fail("the live stream carried no alert event after the failover")
	}
}

// startFormation starts the monitor and two nodes from deploy/ha and waits
// until the first is primary and the second its synchronous standby.
func (h *harness) startFormation(ctx context.Context) (*formation, error) {
	f := &formation{}
	var err error
	if f.monitor, err = h.startMember("monitor", "monitor", ""); err != nil {
		return nil, err
	}
	f.monitorURL = fmt.Sprintf("postgres://autoctl_node@127.0.0.1:%d/pg_auto_failover?sslmode=disable", f.monitor.port)
	f.adminURL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/pg_auto_failover?sslmode=disable", f.monitor.port)
	// The monitor restarts its Postgres while it sets itself up: retry.
	for deadline := time.Now().Add(2 * time.Minute); ; sleep(ctx, time.Second) {
		if err = h.tune(ctx, f.monitorURL, f.adminURL); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return f, fmt.Errorf("monitor: %w", err)
		}
	}
	if f.primary, err = h.startMember("node1", "node", f.monitorURL); err != nil {
		return f, err
	}
	if err := h.waitStates(ctx, f.adminURL, f.primary.port, map[int]string{f.primary.port: "single"}, 2*time.Minute); err != nil {
		return f, err
	}
	if f.standby, err = h.startMember("node2", "node", f.monitorURL); err != nil {
		return f, err
	}
	err = h.waitStates(ctx, f.adminURL, f.primary.port, map[int]string{f.primary.port: "primary", f.standby.port: "secondary"}, 3*time.Minute)
	return f, err
}

// startTend starts tend processes (serve or worker) on dbURL and waits for
// the servers to be ready.
func (h *harness) startTend(ctx context.Context, dbURL string, kinds ...string) ([]*proc, error) {
	var procs []*proc
	for i, kind := range kinds {
		p, err := h.newProc(fmt.Sprintf("%s%d", kind, i+1), dbURL, kind)
		if err != nil {
			return procs, err
		}
		if err := p.start(); err != nil {
			return procs, err
		}
		procs = append(procs, p)
	}
	for _, p := range procs {
		if p.base != "" {
			if err := p.waitReady(ctx, recoveryTimeout); err != nil {
				return procs, err
			}
		}
	}
	return procs, nil
}

// syncNames is synchronous_standby_names on the node at port.
func syncNames(ctx context.Context, port int) string {
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port))
	if err != nil {
		return "?"
	}
	defer conn.Close(ctx)
	var s string
	_ = conn.QueryRow(ctx, `SHOW synchronous_standby_names`).Scan(&s)
	return "'" + s + "'"
}
