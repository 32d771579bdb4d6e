package stream

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"
)

// pruneArgs is the periodic job that deletes events older than the
// retention.
type pruneArgs struct{}

func (pruneArgs) Kind() string { return "maintenance.events_prune" }

type pruneWorker struct {
	river.WorkerDefaults[pruneArgs]
	svc *Service
}

// pruneBatch is how many events one DELETE removes.
const pruneBatch = 10_000

// Work deletes the events older than the retention, a batch at a time.
func (w *pruneWorker) Work(ctx context.Context, _ *river.Job[pruneArgs]) error {
	_, err := w.svc.Prune(ctx)
	return err
}

// Prune deletes the events older than the retention and returns how many.
func (s *Service) Prune(ctx context.Context) (int64, error) {
	cutoff := s.now().Add(-s.cfg.Retention)
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, pruneSQL, cutoff, pruneBatch)
		if err != nil {
			return total, fmt.Errorf("prune events: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < pruneBatch {
			return total, nil
		}
	}
}

// AddWorkers registers the pruning worker and returns its periodic job
// (every `every`, and once at start).
func (s *Service) AddWorkers(workers *river.Workers, every time.Duration) []*river.PeriodicJob {
	river.AddWorker(workers, &pruneWorker{svc: s})
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(every),
		func() (river.JobArgs, *river.InsertOpts) { return pruneArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})}
}
