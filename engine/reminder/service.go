// Package reminder is medication and measurement reminders: schedules
// (written by schedulers and clinicians, read by their patient), their
// occurrences materialised ahead as doses, the push at each dose's time,
// the patient's confirmation, the missed-dose check that feeds the rules,
// and adherence. The expansion of a schedule into occurrences is pure
// (rpm.Occurrences); this package stores, schedules and judges them.
package reminder

import (
	"cmp"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/tendhealth/tend/engine/alerting"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/rules"
)

// DefaultHorizon is how far ahead doses are materialised.
const DefaultHorizon = 48 * time.Hour

// DefaultInterval is how often the periodic materialisation runs.
const DefaultInterval = time.Hour

// Config wires a Service.
type Config struct {
	Pool     *pgxpool.Pool
	Logger   *slog.Logger
	Now      func() time.Time
	Jobs     func() *river.Client[pgx.Tx]
	Audit    audit.Writer
	Alerting *alerting.Service
	// Rules returns the active rule pack of an organisation's patients
	// (event rules: missed doses).
	Rules func(org uuid.UUID) *rules.Pack
	// Horizon is how far ahead doses are materialised; DefaultHorizon when 0.
	Horizon time.Duration
}

// Service manages schedules and doses.
type Service struct {
	pool     *pgxpool.Pool
	log      *slog.Logger
	now      func() time.Time
	jobs     func() *river.Client[pgx.Tx]
	audit    audit.Writer
	alerting *alerting.Service
	rules    func(org uuid.UUID) *rules.Pack
	horizon  time.Duration
}

// New builds a Service.
func New(c Config) *Service {
	return &Service{pool: c.Pool, log: c.Logger, now: c.Now, jobs: c.Jobs, audit: c.Audit, alerting: c.Alerting,
		rules: c.Rules, horizon: cmp.Or(c.Horizon, DefaultHorizon)}
}
