// Package ingest takes readings and symptom reports in: validation, group
// commit, the rules and alerts they raise (through alerting) in the same
// transaction, reading history, table partitions, FHIR's all-or-nothing
// ingest, and the periodic missing-data check.
package ingest

import (
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/tendhealth/tend/engine/alerting"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/metrics"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/rules"
	"github.com/tendhealth/tend/sealed"
)

// Config wires a Service.
type Config struct {
	Pool     *pgxpool.Pool
	Logger   *slog.Logger
	Now      func() time.Time
	Metrics  *metrics.Set
	Audit    audit.Writer
	Alerting *alerting.Service
	// Rules returns the active rule pack of an organisation's patients.
	Rules func(org uuid.UUID) *rules.Pack
	// Transactions bounds the ingest transactions in flight (group commit).
	Transactions int
	// ObservedHorizon is the earliest observed_at accepted without backfill.
	ObservedHorizon time.Time
	// Keys seal symptom notes and the reports' thread messages. Nil: symptom
	// reports fail with thread.ErrNoKeys.
	Keys *sealed.Keyring
}

// Service ingests readings and symptom reports.
type Service struct {
	pool            *pgxpool.Pool
	log             *slog.Logger
	now             func() time.Time
	metrics         *metrics.Set
	audit           audit.Writer
	alerting        *alerting.Service
	rules           func(org uuid.UUID) *rules.Pack
	observedHorizon time.Time
	keys            *sealed.Keyring

	partitionsMu sync.Mutex
	partitions   map[string]bool // months known to have a readings partition

	ingester *pg.Batcher[ingestJob] // group commit (groupcommit.go)
}

// New builds a Service.
func New(c Config) *Service {
	ig := &Service{pool: c.Pool, log: c.Logger, now: c.Now, metrics: c.Metrics, audit: c.Audit, alerting: c.Alerting,
		rules: c.Rules, observedHorizon: c.ObservedHorizon, keys: c.Keys, partitions: map[string]bool{}}
	ig.ingester = ig.newIngester(c.Transactions)
	return ig
}

// pack is the active rule pack of organisation org's patients.
func (ig *Service) pack(org uuid.UUID) *rules.Pack { return ig.rules(org) }

// DefaultObservedHorizon is the default earliest observed_at (2000-01-01).
var DefaultObservedHorizon = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// BackfillHorizon is the earliest observed_at any reading may have, even in
// an explicit backfill.
var BackfillHorizon = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

// AddWorkers registers ingest's maintenance workers — readings partitions
// ahead of time, and the missing-data check every missingEvery (negative:
// never) — and returns their periodic jobs.
func (ig *Service) AddWorkers(workers *river.Workers, missingEvery time.Duration) []*river.PeriodicJob {
	river.AddWorker(workers, &partitionWorker{ig: ig})
	river.AddWorker(workers, &missingWorker{ig: ig})
	jobs := []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(6*time.Hour),
			func() (river.JobArgs, *river.InsertOpts) { return partitionArgs{}, nil },
			&river.PeriodicJobOpts{RunOnStart: true}),
	}
	if missingEvery > 0 {
		jobs = append(jobs, river.NewPeriodicJob(river.PeriodicInterval(missingEvery),
			func() (river.JobArgs, *river.InsertOpts) { return missingArgs{}, nil }, nil))
	}
	return jobs
}
