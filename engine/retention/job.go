package retention

import (
	"context"
	"errors"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// runArgs is the periodic retention job. The kind string is stored in the
// database and must never change.
type runArgs struct{}

func (runArgs) Kind() string { return "maintenance.retention" }

// runBudget is how long one job deletes before it hands over to a new run
// of itself: shorter than the job timeout and the time after which River
// would run a job it believes stuck a second time.
const runBudget = 40 * time.Second

type runWorker struct {
	river.WorkerDefaults[runArgs]
	svc *Service
}

// Work runs retention for up to runBudget; when work is left, the job runs
// again a second later (a snooze) and carries on from what is left.
func (w *runWorker) Work(ctx context.Context, _ *river.Job[runArgs]) error {
	rctx, cancel := context.WithTimeout(ctx, runBudget)
	defer cancel()
	counts, err := w.svc.Run(rctx, Options{})
	var rows int64
	for _, c := range counts {
		rows += c.Rows
	}
	if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		w.svc.log.InfoContext(ctx, "retention continues", "rows", rows)
		return river.JobSnooze(time.Second)
	}
	if err == nil && rows > 0 {
		w.svc.log.InfoContext(ctx, "retention done", "rows", rows)
	}
	return err
}

// runOpts make a run unique while one waits or runs (a run that snoozed to
// carry on included), so runs never overlap.
var runOpts = &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByState: []rivertype.JobState{rivertype.JobStateAvailable,
	rivertype.JobStatePending, rivertype.JobStateRetryable, rivertype.JobStateRunning, rivertype.JobStateScheduled}}}

// AddWorkers registers the retention worker and returns its periodic job
// (every `every`, and once at start; none when every is negative).
func (s *Service) AddWorkers(workers *river.Workers, every time.Duration) []*river.PeriodicJob {
	river.AddWorker(workers, &runWorker{svc: s})
	if every < 0 {
		return nil
	}
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(every),
		func() (river.JobArgs, *river.InsertOpts) { return runArgs{}, runOpts },
		&river.PeriodicJobOpts{RunOnStart: true})}
}
