package main

import (
	"context"
	"fmt"
	"time"
)

// The chaos scenario's numbers (the bounds).
const (
	kills           = 5                // kill -9 of tend serve, and of tend worker, each
	terminations    = 5                // pg_terminate_backend of every Tend connection
	chaosPatients   = 600              // one critical alert each at most: one every 150 ms for 90 s
	chaosClients    = 16               // concurrent posting clients
	pushBound       = 20 * time.Second // a push in flight at a kill is re-sent within this of the restart
	recoveryTimeout = 90 * time.Second // generous: the machine may be loaded
)

// chaos runs one tend serve and one tend worker on a private cluster under
// load with critical readings, and breaks them: kill -9 of each process five
// times, pg_terminate_backend of every Tend connection five times, and one
// immediate restart of the cluster. Then it checks nothing was lost.
func (h *harness) chaos(ctx context.Context) error {
	c, dbURL, admin, err := h.privateTend(ctx)
	if c != nil {
		defer c.stop()
	}
	if err != nil {
		return err
	}
	serve, err := h.newProc("serve", dbURL, "serve")
	if err != nil {
		return err
	}
	worker, err := h.newProc("worker", dbURL, "worker")
	if err != nil {
		return err
	}
	for _, p := range []*proc{serve, worker} {
		if err := p.start(); err != nil {
			return err
		}
		defer p.stop()
	}
	if err := serve.waitReady(ctx, recoveryTimeout); err != nil {
		return err
	}
	w, err := h.enrol(ctx, serve.base, admin, chaosPatients)
	if err != nil {
		return err
	}
	h.printf("cluster on port %d, tend serve at %s and tend worker up; %d patients; load from %d clients", c.port, serve.base, chaosPatients, chaosClients)
	d := newDriver(func() []string { return []string{serve.base} }, w.clinicianToken, w.patients)
	outages, err := h.breakThings(ctx, c, serve, worker, d)
	if err != nil {
		return err
	}
	for _, p := range []*proc{serve, worker} {
		if n := p.unplannedExits(); n > 0 {
			h.fail("tend %s exited %d times by itself", p.name, n)
		}
	}
	criticals, err := h.checkStore(ctx, dbURL, d)
	if err != nil {
		return err
	}
	h.checkPushes(ctx, criticals, outages, 2*time.Minute, pushBound)
	h.checkAnswers(d)
	return nil
}

// breakThings runs the load and breaks the system while it runs; it returns
// what it broke, once the load has stopped and every reading in flight was
// acknowledged (or its retries gave up).
func (h *harness) breakThings(ctx context.Context, c *cluster, serve, worker *proc, d *driver) ([]outage, error) {
	d.start(ctx, chaosClients)
	defer d.finish()

	var outages []outage
	sleep(ctx, 3*time.Second)
	for i := range kills {
		for _, p := range []*proc{serve, worker} {
			o := outage{what: "kill -9 tend " + p.name, at: time.Now(), kill: true}
			p.kill()
			if err := p.start(); err != nil {
				return nil, err
			}
			if p.base != "" {
				if err := p.waitReady(ctx, recoveryTimeout); err != nil {
					return nil, err
				}
			}
			o.recovered = time.Now()
			outages = append(outages, o)
			h.printf("%s %d/%d: running again after %s", o.what, i+1, kills, round(o.recovered.Sub(o.at)))
			sleep(ctx, 3*time.Second)
		}
	}
	for i := range terminations {
		o := outage{what: "pg_terminate_backend", at: time.Now()}
		n, err := terminateTend(ctx, c.url("postgres"))
		if err != nil {
			return nil, err
		}
		if err := h.writesAgain(ctx, d, &o, time.Now()); err != nil {
			return nil, err
		}
		outages = append(outages, o)
		h.printf("pg_terminate_backend %d/%d: %d connections ended; writes succeed again after %s", i+1, terminations, n, round(o.recovered.Sub(o.at)))
		sleep(ctx, 2*time.Second)
	}
	o := outage{what: "pg_ctl restart -m immediate", at: time.Now()}
	if err := c.restartImmediate(ctx); err != nil {
		return nil, err
	}
	back := time.Now()
	if err := h.writesAgain(ctx, d, &o, back); err != nil {
		return nil, err
	}
	outages = append(outages, o)
	h.printf("pg_ctl restart -m immediate: the cluster was back after %s; writes succeed %s later, without restarting Tend",
		round(back.Sub(o.at)), round(o.recovered.Sub(back)))
	sleep(ctx, 3*time.Second)
	d.finish()
	return outages, nil
}

// privateTend starts a private cluster and migrates its database tend; it
// returns the cluster (to stop), the database's URL and an admin token.
func (h *harness) privateTend(ctx context.Context) (c *cluster, dbURL, admin string, err error) {
	if c, err = h.newCluster(ctx, "pg"); err != nil {
		return nil, "", "", err
	}
	dbURL = c.url("tend")
	admin, err = h.migrate(ctx, dbURL)
	return c, dbURL, admin, err
}

// writesAgain waits until a reading is acknowledged after since (the
// moment the outage was complete) and records it as o's recovery.
func (h *harness) writesAgain(ctx context.Context, d *driver, o *outage, since time.Time) error {
	t := d.firstSuccessAfter(ctx, since, recoveryTimeout)
	if t.IsZero() {
		return fmt.Errorf("%s: no write succeeded within %s", o.what, recoveryTimeout)
	}
	o.recovered = t
	return nil
}
