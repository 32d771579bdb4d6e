package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// outage is one thing the harness broke: when, and when it was whole again
// (the killed process restarted, the database back).
type outage struct {
	what          string
	at, recovered time.Time
	// kill: a tend process was killed, so its pushes in flight must be
	// re-sent within the bound of checkPushes.
	kill bool
}

// checkStore compares what the clients were told with what the database
// holds: every acknowledged reading stored, none twice, every critical alert
// with its notification (and so its delivery jobs, committed with it).
func (h *harness) checkStore(ctx context.Context, dbURL string, d *driver) (criticals map[string]time.Time, err error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	stored := map[string]bool{}
	rows, err := conn.Query(ctx, `SELECT source_id FROM reading_sources WHERE source_id LIKE 'chaos:%'`)
	if err != nil {
		return nil, err
	}
	sources, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	for _, s := range sources {
		stored[s] = true
	}
	acked := d.ackedSources()
	lost := 0
	for _, s := range acked {
		if !stored[s] {
			lost++
		}
	}
	var readings, distinct, orphans int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT (patient_id, source_id)) FROM readings WHERE source_id LIKE 'chaos:%'`).Scan(&readings, &distinct); err != nil {
		return nil, err
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM alerts a WHERE NOT EXISTS (SELECT 1 FROM notifications n WHERE n.alert_id = a.id)`).Scan(&orphans); err != nil {
		return nil, err
	}
	h.printf("readings acknowledged: %d; stored: %d", len(acked), readings)
	h.printf("acknowledged readings lost: %d; stored twice: %d; alerts without delivery jobs: %d", lost, readings-distinct, orphans)
	if lost > 0 {
		h.fail("%d acknowledged readings lost", lost)
	}
	if readings != distinct {
		h.fail("%d readings stored twice", readings-distinct)
	}
	if orphans > 0 {
		h.fail("%d alerts without notifications (delivery jobs)", orphans)
	}
	rows, err = conn.Query(ctx, `SELECT id::text, created_at FROM alerts WHERE urgency = 'critical'`)
	if err != nil {
		return nil, err
	}
	criticals = map[string]time.Time{}
	var id string
	var at time.Time
	_, err = pgx.ForEachRow(rows, []any{&id, &at}, func() error { criticals[id] = at; return nil })
	return criticals, err
}

// checkPushes waits (up to wait) until every critical alert was pushed, then
// checks that each push pending at a kill arrived within bound of the
// restart, and that each re-sent push (in flight at a kill) did too.
func (h *harness) checkPushes(ctx context.Context, criticals map[string]time.Time, all []outage, wait, bound time.Duration) {
	var outages []outage
	for _, o := range all {
		if o.kill {
			outages = append(outages, o)
		}
	}
	deadline := time.Now().Add(wait)
	missing := 0
	for {
		missing = 0
		for a := range criticals {
			if _, ok := h.push.firstPush(a); !ok {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		sleep(ctx, 200*time.Millisecond)
	}
	var worst, worstResend time.Duration
	pending := 0
	for a, created := range criticals {
		first, ok := h.push.firstPush(a)
		if !ok {
			continue
		}
		for _, o := range outages {
			if created.Before(o.at) && first.After(o.at) {
				pending++
				worst = max(worst, first.Sub(o.recovered))
			}
		}
	}
	for _, t := range h.push.resends() {
		if o, ok := lastOutageBefore(outages, t); ok {
			worstResend = max(worstResend, t.Sub(o.recovered))
		}
	}
	receipts, notifications, dup := h.push.counts()
	h.printf("critical alerts: %d, pushed: %d; pushes received: %d for %d notifications (%d received more than once: at-least-once)",
		len(criticals), len(criticals)-missing, receipts, notifications, dup)
	if len(outages) > 0 {
		h.printf("pushes pending at a kill: %d, the last sent %s after the restart; re-sent pushes: the last %s after the restart (bound %s)",
			pending, round(worst), round(worstResend), bound)
	}
	if missing > 0 {
		h.fail("%d critical alerts never pushed (waited %s)", missing, wait)
	}
	if worst > bound || worstResend > bound {
		h.fail("a push in flight at a kill arrived more than %s after the restart", bound)
	}
}

func lastOutageBefore(outages []outage, t time.Time) (outage, bool) {
	var found outage
	ok := false
	for _, o := range outages {
		if o.at.Before(t) && (!ok || o.at.After(found.at)) {
			found, ok = o, true
		}
	}
	return found, ok
}

// checkAnswers prints the answers by class and fails on any that is neither
// 2xx nor 503 with Retry-After (nor no answer from a killed process).
func (h *harness) checkAnswers(d *driver) {
	classes, counts := d.answerCounts()
	line := ""
	for _, c := range classes {
		line += fmt.Sprintf("  %s: %d", c, counts[c])
	}
	h.printf("answers:%s", line)
	if n := d.bad(); n > 0 {
		h.fail("%d answers other than 2xx or 503 + Retry-After", n)
	}
}

func round(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) }
