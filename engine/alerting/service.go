// Package alerting is the in-transaction component that turns rule findings
// into alerts: it evaluates a patient's new readings against the rule pack,
// raises or updates alerts with their findings, records rule evaluation
// errors, and routes each alert that should page — load the recipients, plan
// who gets what, store the notifications and enqueue their delivery jobs —
// all inside the caller's transaction.
package alerting

import (
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/metrics"
	"github.com/tendhealth/tend/engine/internal/pg"
)

// Config wires a Service.
type Config struct {
	Pool    *pgxpool.Pool
	Logger  *slog.Logger
	Now     func() time.Time
	Jobs    func() *river.Client[pgx.Tx]
	Metrics *metrics.Set
	Audit   audit.Writer
	// PresenceFresh returns the time after which a presence heartbeat
	// still counts (package presence): who is online, for a policy that
	// skips offline clinicians at the first step. Nil: nobody is.
	PresenceFresh func() time.Time
}

// Service raises and routes alerts.
type Service struct {
	pool    *pgxpool.Pool
	log     *slog.Logger
	now     func() time.Time
	jobs    func() *river.Client[pgx.Tx]
	metrics *metrics.Set
	audit   audit.Writer
	fresh   func() time.Time
	// escalations shares transactions between concurrent escalation steps.
	escalations *pg.Batcher[escalateReq]
}

// New builds a Service.
func New(c Config) *Service {
	al := &Service{pool: c.Pool, log: c.Logger, now: c.Now, jobs: c.Jobs, metrics: c.Metrics, audit: c.Audit,
		fresh: c.PresenceFresh}
	al.escalations = &pg.Batcher[escalateReq]{MaxRunning: 2, MaxBatch: 100, Run: al.runEscalations}
	return al
}
