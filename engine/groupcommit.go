package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/rpm"
)

// ingestJob is one Ingest call waiting for, or taking part in, a group
// transaction.
type ingestJob struct {
	ctx       context.Context
	actor     Actor
	patientID uuid.UUID
	ms        []rpm.Measurement

	// Set by the group transaction.
	ids     []uuid.UUID
	scope   patientScope
	params  map[string]map[string]float64 // personalised rule parameters
	inScope bool
	res     IngestResult
	err     error

	done  chan struct{} // closed when res/err are final
	wake  chan struct{} // receives one value when the job is handed the lead
	woken bool          // leads (or has been handed the lead); guarded by ingester.mu
}

// ingester commits concurrent ingests in shared transactions (group commit).
//
// A transaction's fixed costs — BEGIN, COMMIT and its WAL flush, one
// executor start-up per statement — dominate a one-reading ingest. So an
// Ingest call joins a queue; when fewer than maxRunning transactions are in
// flight it leads: it takes the queued jobs (at most one per patient, so a
// patient's readings are still evaluated strictly in turn, and about
// maxReadings readings), commits them together, and repeats until its own
// job is done, then hands the lead to the next queued job. Under light load a
// job is alone in its transaction and waits for nothing; under heavy load
// groups form by themselves. Each reading, its alerts and its notification
// jobs still commit in one transaction; a job that fails on its own (not in
// scope) fails alone, and a failed transaction fails every job in it.
type ingester struct {
	e           *Engine
	maxRunning  int
	maxReadings int

	mu      sync.Mutex
	queue   []*ingestJob
	running int
}

// groupTimeout bounds one group transaction. It runs detached from any one
// caller's context so that a client hanging up cannot abort other clients'
// readings.
const groupTimeout = 30 * time.Second

// do runs j in a group transaction and returns when its result is final, or
// when ctx ends while j is still queued (then nothing of j was written).
func (g *ingester) do(ctx context.Context, j *ingestJob) error {
	g.mu.Lock()
	g.queue = append(g.queue, j)
	lead := g.running < g.maxRunning
	if lead {
		g.running++
		j.woken = true
	}
	g.mu.Unlock()
	if !lead {
		select {
		case <-j.done:
		case <-j.wake:
		case <-ctx.Done():
			if g.withdraw(j) {
				return ctx.Err()
			}
			// Already taken into a group, or handed the lead: see it through.
			select {
			case <-j.done:
			case <-j.wake:
			}
		}
		// A job handed the lead holds a slot even if another leader has
		// already committed it: lead() passes the slot on.
		g.mu.Lock()
		lead = j.woken
		g.mu.Unlock()
		if !lead {
			return nil
		}
	}
	g.lead(j)
	return nil
}

// withdraw removes a job that is still queued and was not handed the lead.
func (g *ingester) withdraw(j *ingestJob) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if j.woken {
		return false
	}
	for i, q := range g.queue {
		if q == j {
			g.queue = append(g.queue[:i], g.queue[i+1:]...)
			return true
		}
	}
	return false
}

// lead commits groups until own is done, then hands its slot to the first
// queued job that does not lead yet (or gives the slot up when there is none).
func (g *ingester) lead(own *ingestJob) {
	for {
		g.mu.Lock()
		select {
		case <-own.done:
			for _, q := range g.queue {
				if !q.woken {
					q.woken = true
					g.mu.Unlock()
					q.wake <- struct{}{} // buffered: never blocks, sent once per job
					return
				}
			}
			g.running--
			g.mu.Unlock()
			return
		default:
		}
		group := g.take()
		g.mu.Unlock()
		if len(group) == 0 {
			// Another leader has own in its group: wait for it.
			<-own.done
			continue
		}
		g.commit(group)
	}
}

// take removes the next group from the queue: jobs in arrival order, one per
// patient, up to maxReadings readings (always at least one job). Callers
// hold g.mu.
func (g *ingester) take() []*ingestJob {
	var group []*ingestJob
	seen := map[uuid.UUID]bool{}
	readings := 0
	rest := g.queue[:0]
	for _, j := range g.queue {
		if seen[j.patientID] || (len(group) > 0 && readings+len(j.ms) > g.maxReadings) {
			rest = append(rest, j)
			continue
		}
		seen[j.patientID] = true
		readings += len(j.ms)
		group = append(group, j)
	}
	clear(g.queue[len(rest):])
	g.queue = rest
	return group
}

// commit runs one group transaction and publishes every job's outcome.
func (g *ingester) commit(group []*ingestJob) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(group[0].ctx), groupTimeout)
	defer cancel()
	err := g.e.inTx(ctx, func(tx pgx.Tx) error { return g.e.ingestGroupTx(ctx, tx, group) })
	for _, j := range group {
		if err != nil {
			j.err, j.res = fmt.Errorf("ingest: %w", err), IngestResult{}
		}
		close(j.done)
	}
	g.e.metrics.groupSize.Observe(float64(len(group)))
}
