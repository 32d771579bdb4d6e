// Package rescue hands the running jobs of a crashed worker process to
// another worker within seconds (see Heartbeat).
package rescue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Heartbeat is the fast rescue of a crashed worker's jobs.
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
// Heartbeat records this process's River client as alive and rescues the
// jobs of clients that stopped beating.
type Heartbeat struct {
	Pool     *pgxpool.Pool
	Now      func() time.Time
	Log      *slog.Logger
	ClientID string
	// Rescued counts the jobs made available again.
	Rescued prometheus.Counter
}

const (
	heartbeatInterval = 2 * time.Second
	heartbeatDeadline = 10 * time.Second
	// heartbeatForget is how long a dead client's heartbeat row is kept.
	heartbeatForget = time.Hour
)

// NewClientID makes a River client id unique to this process.
func NewClientID() string {
	host, _ := os.Hostname()
	if len(host) > 60 {
		host = host[:60]
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Beat records this process's heartbeat and rescues the running jobs of
// clients that stopped beating. It returns how many jobs it rescued.
func (h *Heartbeat) Beat(ctx context.Context) (int64, error) {
	now := h.Now()
	if _, err := h.Pool.Exec(ctx, beatSQL, h.ClientID, now); err != nil {
		return 0, fmt.Errorf("heartbeat: %w", err)
	}
	tag, err := h.Pool.Exec(ctx, rescueJobsSQL, now, now.Add(-heartbeatDeadline), h.ClientID)
	if err != nil {
		return 0, fmt.Errorf("rescue jobs of dead workers: %w", err)
	}
	if _, err := h.Pool.Exec(ctx, forgetStaleSQL, now.Add(-heartbeatForget)); err != nil {
		return 0, fmt.Errorf("forget dead workers: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Run beats until ctx is done, then removes this process's row (its
// jobs have finished by then: Stop waits for them).
func (h *Heartbeat) Run(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(heartbeatInterval)
	defer t.Stop()
	for {
		n, err := h.Beat(ctx)
		if err != nil && ctx.Err() == nil {
			h.Log.WarnContext(ctx, "worker heartbeat failed", "error", err)
		}
		if n > 0 {
			h.Log.InfoContext(ctx, "rescued the running jobs of a worker that stopped", "jobs", n)
			h.Rescued.Add(float64(n))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Forget removes this process's heartbeat (on a clean stop).
func (h *Heartbeat) Forget(ctx context.Context) {
	if _, err := h.Pool.Exec(ctx, forgetClientSQL, h.ClientID); err != nil {
		h.Log.WarnContext(ctx, "remove worker heartbeat", "error", err)
	}
}
