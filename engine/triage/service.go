// Package triage is the care team's side of alerts: the queue, an alert in
// detail, and its lifecycle.
package triage

import (
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/tendhealth/tend/engine/audit"
)

// Config wires a Service.
type Config struct {
	Pool  *pgxpool.Pool
	Now   func() time.Time
	Audit audit.Writer
	// Jobs is the River client that schedules the end of a snooze.
	Jobs func() *river.Client[pgx.Tx]
}

// Service serves the triage queue and the alert lifecycle.
type Service struct {
	pool  *pgxpool.Pool
	now   func() time.Time
	audit audit.Writer
	jobs  func() *river.Client[pgx.Tx]
}

// New builds a Service.
func New(c Config) *Service { return &Service{pool: c.Pool, now: c.Now, audit: c.Audit, jobs: c.Jobs} }
