package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"
)

// Fast rescue of a crashed worker's jobs.
//
// River rescues a job whose worker died only after RescueStuckJobsAfter, and
// its rescuer looks every 30 seconds: a critical push in flight at a crash
// would wait a minute or more. Instead, each process that runs workers gives
// its River client a unique id and records a heartbeat for it every
// heartbeatInterval. Every process also looks for running jobs whose client
// has not beaten for heartbeatDeadline and makes them available again at
// once. A push in flight at a crash is so re-sent within about
// heartbeatDeadline + heartbeatInterval (≈ 12 s) of the crash — sooner than
// the restart in most deployments. Senders are idempotent (collapse ids,
// delivery records), so the rare re-run of a job whose process was merely
// stalled costs a duplicate push at worst, never a lost one.
const (
	heartbeatInterval = 2 * time.Second
	heartbeatDeadline = 10 * time.Second
	// heartbeatForget is how long a dead client's heartbeat row is kept.
	heartbeatForget = time.Hour
)

// newClientID makes a River client id unique to this process.
func newClientID() string {
	host, _ := os.Hostname()
	if len(host) > 60 {
		host = host[:60]
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// beat records this process's heartbeat and rescues the running jobs of
// clients that stopped beating. It returns how many jobs it rescued.
func (e *Engine) beat(ctx context.Context) (int64, error) {
	now := e.now()
	if _, err := e.pool.Exec(ctx, `INSERT INTO worker_heartbeats (client_id, started_at, seen_at) VALUES ($1, $2, $2)
		ON CONFLICT (client_id) DO UPDATE SET seen_at = excluded.seen_at`, e.clientID, now); err != nil {
		return 0, fmt.Errorf("heartbeat: %w", err)
	}
	tag, err := e.pool.Exec(ctx, `UPDATE river_job j SET state = 'available', scheduled_at = $1
		WHERE j.state = 'running' AND cardinality(j.attempted_by) > 0
			AND j.attempted_by[cardinality(j.attempted_by)] IN (
				SELECT client_id FROM worker_heartbeats WHERE seen_at < $2 AND client_id <> $3)`,
		now, now.Add(-heartbeatDeadline), e.clientID)
	if err != nil {
		return 0, fmt.Errorf("rescue jobs of dead workers: %w", err)
	}
	if _, err := e.pool.Exec(ctx, `DELETE FROM worker_heartbeats WHERE seen_at < $1`, now.Add(-heartbeatForget)); err != nil {
		return 0, fmt.Errorf("forget dead workers: %w", err)
	}
	return tag.RowsAffected(), nil
}

// runHeartbeat beats until ctx is done, then removes this process's row (its
// jobs have finished by then: Stop waits for them).
func (e *Engine) runHeartbeat(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(heartbeatInterval)
	defer t.Stop()
	for {
		n, err := e.beat(ctx)
		if err != nil && ctx.Err() == nil {
			e.log.WarnContext(ctx, "worker heartbeat failed", "error", err)
		}
		if n > 0 {
			e.log.InfoContext(ctx, "rescued the running jobs of a worker that stopped", "jobs", n)
			e.metrics.rescued.Add(float64(n))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (e *Engine) forgetHeartbeat(ctx context.Context) {
	if _, err := e.pool.Exec(ctx, `DELETE FROM worker_heartbeats WHERE client_id = $1`, e.clientID); err != nil {
		e.log.WarnContext(ctx, "remove worker heartbeat", "error", err)
	}
}
