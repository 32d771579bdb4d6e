package engine

import (
	"context"
	"errors"
	"testing"

	"github.com/riverqueue/river"

	"github.com/tendhealth/tend/engine/internal/pgtest"
)

// kindArgs stands for any job of one kind: River refuses to insert a kind
// that no registered worker runs.
type kindArgs string

func (k kindArgs) Kind() string { return string(k) }

// jobKinds are every River job kind the engine inserts (they live in the
// database and never change once released).
var jobKinds = []string{
	"notify.deliver", "notify.catchup", "notify.catchup_sweep",
	"alerting.escalate", "alerting.escalation_sweep", "alerting.retake_deadline",
	"triage.snooze_end",
	"message.push", "message.broadcast",
	"maintenance.partitions", "rules.missing_data",
	"reminder.send", "reminder.missed", "reminder.materialise", "reminder.missed_sweep",
	"maintenance.events_prune", "maintenance.retention",
}

// TestWorkersRegistered: riverConfig registers a worker for every job kind,
// so a job inserted by any room is run by some worker.
func TestWorkersRegistered(t *testing.T) {
	t.Parallel()
	e, err := New(Config{Pool: pgtest.NewPool(t, ConfigurePool)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	for _, kind := range jobKinds {
		if _, err := e.river.InsertTx(ctx, tx, kindArgs(kind), nil); err != nil {
			t.Errorf("insert a %s job: %v", kind, err)
		}
	}
	var unknown *river.UnknownJobKindError
	if _, err := e.river.InsertTx(ctx, tx, kindArgs("no.such_kind"), nil); !errors.As(err, &unknown) {
		t.Errorf("insert an unknown kind: err = %v, want UnknownJobKindError (the check above could not fail)", err)
	}
}

// TestPeriodicJobs: with RunWorkers every periodic job is registered and
// the queues exist; a negative interval turns its job off; without
// RunWorkers nothing runs in this process.
func TestPeriodicJobs(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t, ConfigurePool)
	for _, c := range []struct {
		name      string
		cfg       Config
		periodic  int
		hasQueues bool
	}{
		// catch-up sweep, escalation sweep, partitions, missing data,
		// reminder materialise, missed-dose sweep, event pruning, retention
		{"workers", Config{RunWorkers: true}, 8, true},
		{"missing data, reminders and retention off", Config{RunWorkers: true, MissingDataInterval: -1, ReminderInterval: -1,
			MissedDoseInterval: -1, RetentionInterval: -1}, 4, true},
		{"insert only", Config{}, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Pool = pool
			e, err := New(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			rc := e.riverConfig("test")
			if len(rc.PeriodicJobs) != c.periodic {
				t.Errorf("%d periodic jobs, want %d", len(rc.PeriodicJobs), c.periodic)
			}
			if got := len(rc.Queues) > 0; got != c.hasQueues {
				t.Errorf("queues = %v, want queues: %v", rc.Queues, c.hasQueues)
			}
		})
	}
}
