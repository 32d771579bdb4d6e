package reminder

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/riverqueue/river"
)

// The missed-dose sweep. Every dose stored since the sweep exists carries
// the time its grace period ends (missed_check_at, indexed while the dose
// is pending) instead of a River job of its own: materialising a dose then
// costs one job (its reminder) instead of two. A periodic job takes the
// doses whose check is due in batches, leasing them (a sweep that dies
// leaves them to the next one once the lease ends) with FOR UPDATE SKIP
// LOCKED so that two sweeps never take the same dose, and decides each
// with CheckMissed — which locks the dose and decides it once, whoever
// calls it. Doses stored before the sweep keep their reminder.missed jobs.

// DefaultMissedInterval is how often the missed-dose sweep runs by default.
const DefaultMissedInterval = 15 * time.Second

// Sweep sizes and the lease of a claimed dose.
const (
	missedBatch    = 200
	missedParallel = 4
	missedLease    = 5 * time.Minute
)

// missedSweepArgs is the periodic missed-dose sweep. The kind string is
// stored in the database and must never change.
type missedSweepArgs struct{}

func (missedSweepArgs) Kind() string { return "reminder.missed_sweep" }

type missedSweepWorker struct {
	river.WorkerDefaults[missedSweepArgs]
	rs *Service
}

func (w *missedSweepWorker) Work(ctx context.Context, _ *river.Job[missedSweepArgs]) error {
	_, err := w.rs.SweepMissed(ctx)
	return err
}

// SweepMissed decides every pending dose whose grace period has ended by
// the clock (the periodic job; exported for tests and tools), and returns
// how many it decided. A dose whose check is not due after all (its
// schedule's grace period grew) is put back for its new time; one with
// nothing left to decide leaves the sweep; one whose check failed waits for
// its lease to end and is tried again.
func (rs *Service) SweepMissed(ctx context.Context) (int, error) {
	decided := 0
	for {
		now := rs.now()
		rows, err := rs.pool.Query(ctx, claimMissedSQL, now, now.Add(missedLease), missedBatch)
		if err != nil {
			return decided, fmt.Errorf("missed-dose sweep: %w", err)
		}
		var keys []string
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				rows.Close()
				return decided, fmt.Errorf("missed-dose sweep: %w", err)
			}
			keys = append(keys, k)
		}
		if err := rows.Err(); err != nil {
			return decided, fmt.Errorf("missed-dose sweep: %w", err)
		}
		var (
			mu    sync.Mutex
			first error
			wg    sync.WaitGroup
			next  = make(chan string)
		)
		for range min(missedParallel, len(keys)) {
			wg.Go(func() {
				for key := range next {
					ok, err := rs.checkClaimed(ctx, key)
					mu.Lock()
					if ok {
						decided++
					}
					if err != nil && first == nil {
						first = err
					}
					mu.Unlock()
				}
			})
		}
		for _, k := range keys {
			next <- k
		}
		close(next)
		wg.Wait()
		if first != nil {
			return decided, first
		}
		if len(keys) < missedBatch || ctx.Err() != nil {
			return decided, ctx.Err()
		}
	}
}

// checkClaimed decides one claimed dose and reports whether it did.
func (rs *Service) checkClaimed(ctx context.Context, key string) (bool, error) {
	st, wait, err := rs.CheckMissed(ctx, key)
	if err != nil {
		return false, err // the lease brings it back
	}
	if st != "" {
		return true, nil
	}
	var at *time.Time
	if wait > 0 {
		t := rs.now().Add(wait)
		at = &t
	}
	if _, err := rs.pool.Exec(ctx, setMissedCheckSQL, key, at); err != nil {
		return false, fmt.Errorf("missed-dose sweep: %w", err)
	}
	return false, nil
}
