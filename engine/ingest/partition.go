package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/tendhealth/tend/rpm"
)

// ensurePartitions makes sure a readings partition exists for the month of
// every measurement. Months already seen by this engine cost nothing; a new
// month (a backfill, or the first reading of a month) costs one idempotent
// DDL statement outside the ingest transaction, run only after allowed
// returns nil (the caller's scope check).
func (ig *Service) ensurePartitions(ctx context.Context, ms []rpm.Measurement, allowed func() error) error {
	var missing []time.Time
	ig.partitionsMu.Lock()
	for _, m := range ms {
		month := m.ObservedAt.UTC().Format("2006-01")
		if !ig.partitions[month] {
			missing = append(missing, m.ObservedAt)
		}
	}
	ig.partitionsMu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	if err := allowed(); err != nil {
		return err
	}
	for _, t := range missing {
		if err := ig.ensurePartition(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

func (ig *Service) ensurePartition(ctx context.Context, t time.Time) error {
	month := t.UTC().Format("2006-01")
	ig.partitionsMu.Lock()
	known := ig.partitions[month]
	ig.partitionsMu.Unlock()
	if known {
		return nil
	}
	if _, err := ig.pool.Exec(ctx, ensurePartitionSQL, t); err != nil {
		return fmt.Errorf("readings partition %s: %w", month, err)
	}
	ig.partitionsMu.Lock()
	ig.partitions[month] = true
	ig.partitionsMu.Unlock()
	return nil
}

// partitionArgs is the periodic job that creates next months' partitions.
type partitionArgs struct{}

func (partitionArgs) Kind() string { return "maintenance.partitions" }

type partitionWorker struct {
	river.WorkerDefaults[partitionArgs]
	ig *Service
}

// Work creates the readings partitions for this month and the next three.
func (w *partitionWorker) Work(ctx context.Context, _ *river.Job[partitionArgs]) error {
	now := w.ig.now().UTC()
	first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	for i := range 4 {
		if err := w.ig.ensurePartition(ctx, first.AddDate(0, i, 0)); err != nil {
			return err
		}
	}
	return nil
}
