package engine

import (
	"time"

	"github.com/riverqueue/river"

	"github.com/tendhealth/tend/engine/alerting"
	"github.com/tendhealth/tend/engine/delivery"
	"github.com/tendhealth/tend/engine/messaging"
	"github.com/tendhealth/tend/engine/reminder"
	"github.com/tendhealth/tend/engine/stream"
)

// riverConfig is the one place that registers every River worker, queue and
// periodic job: deliveries and quiet hours (delivery), retake deadlines and
// the escalation sweep (alerting), snooze ends (triage), message pushes after
// their hold and broadcast fan-out batches (messaging), partitions and the
// missing-data check (ingest), reminders (reminder), pruning the event log
// (stream), the organisations' retention periods (retention). Queues and periodic jobs run only in processes with
// Config.RunWorkers; the others only insert jobs.
func (e *Engine) riverConfig(clientID string) *river.Config {
	workers := river.NewWorkers()
	periodic := e.delivery.AddWorkers(workers)
	periodic = append(periodic, e.alerting.AddWorkers(workers, e.cfg.EscalationSweepInterval)...)
	e.triageService.AddWorkers(workers)
	e.messageService.AddWorkers(workers)
	e.messageService.AddBroadcastWorkers(workers)
	periodic = append(periodic, e.ingestService.AddWorkers(workers, e.cfg.MissingDataInterval)...)
	periodic = append(periodic, e.reminderService.AddWorkers(workers, e.cfg.ReminderInterval, e.cfg.MissedDoseInterval)...)
	periodic = append(periodic, e.stream.AddWorkers(workers, stream.DefaultPruneEvery)...)
	periodic = append(periodic, e.retention.AddWorkers(workers, e.cfg.RetentionInterval)...)
	rc := &river.Config{
		ID:                   clientID,
		Logger:               e.cfg.Logger.With("component", "river"),
		Workers:              workers,
		RescueStuckJobsAfter: e.cfg.RescueStuckJobsAfter,
		FetchCooldown:        e.cfg.FetchCooldown,
		FetchPollInterval:    e.cfg.FetchPollInterval,
		JobTimeout:           time.Minute,
	}
	if e.cfg.RunWorkers {
		rc.Queues = map[string]river.QueueConfig{
			river.QueueDefault:       {MaxWorkers: 10},
			delivery.Queue:           {MaxWorkers: e.cfg.NotifyWorkers},
			reminder.Queue:           {MaxWorkers: 50},
			alerting.EscalationQueue: {MaxWorkers: 20},
			messaging.BroadcastQueue: {MaxWorkers: 4},
		}
		rc.PeriodicJobs = periodic
	}
	return rc
}
