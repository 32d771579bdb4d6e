package engine

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
func (e *Engine) ensurePartitions(ctx context.Context, ms []rpm.Measurement, allowed func() error) error {
	var missing []time.Time
	e.partitionsMu.Lock()
	for _, m := range ms {
		month := m.ObservedAt.UTC().Format("2006-01")
		if !e.partitions[month] {
			missing = append(missing, m.ObservedAt)
		}
	}
	e.partitionsMu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	if err := allowed(); err != nil {
		return err
	}
	for _, t := range missing {
		if err := e.ensurePartition(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) ensurePartition(ctx context.Context, t time.Time) error {
	month := t.UTC().Format("2006-01")
	e.partitionsMu.Lock()
	known := e.partitions[month]
	e.partitionsMu.Unlock()
	if known {
		return nil
	}
	if _, err := e.pool.Exec(ctx, `SELECT tend_ensure_reading_partition($1)`, t); err != nil {
		return fmt.Errorf("readings partition %s: %w", month, err)
	}
	e.partitionsMu.Lock()
	e.partitions[month] = true
	e.partitionsMu.Unlock()
	return nil
}

// partitionArgs is the periodic job that creates next months' partitions.
type partitionArgs struct{}

func (partitionArgs) Kind() string { return "maintenance.partitions" }

type partitionWorker struct {
	river.WorkerDefaults[partitionArgs]
	e *Engine
}

// Work creates the readings partitions for this month and the next three.
func (w *partitionWorker) Work(ctx context.Context, _ *river.Job[partitionArgs]) error {
	now := w.e.now().UTC()
	first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	for i := range 4 {
		if err := w.e.ensurePartition(ctx, first.AddDate(0, i, 0)); err != nil {
			return err
		}
	}
	return nil
}
