// Package rulestore keeps the rules in the database: versioned rules and
// their administration, seeding and upgrading the default pack, reloading
// the active pack when any process changes a rule, backtests over stored
// data, and the rule evaluation errors recorded at ingest.
package rulestore

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/rules"
)

// Config wires a Service.
type Config struct {
	Pool   *pgxpool.Pool
	Logger *slog.Logger
	Now    func() time.Time
	Audit  audit.Writer
	// Rules is the pack in force until the stored rules are loaded.
	Rules *rules.Pack
	// RulesRefresh is how often Start checks the database for rule changes
	// made by other processes; negative disables polling.
	RulesRefresh time.Duration
}

// Service keeps the stored rules and the active pack.
type Service struct {
	pool         *pgxpool.Pool
	log          *slog.Logger
	now          func() time.Time
	audit        audit.Writer
	rulesRefresh time.Duration
	rules        atomic.Pointer[rules.Pack] // swapped when rules change; read with Pack
	ruleSync     ruleSync
	// simSlot holds the one simulation a process runs at a time.
	simSlot chan struct{}
}

// New builds a Service.
func New(c Config) *Service {
	rs := &Service{pool: c.Pool, log: c.Logger, now: c.Now, audit: c.Audit, rulesRefresh: c.RulesRefresh, simSlot: make(chan struct{}, 1)}
	rs.rules.Store(c.Rules)
	return rs
}

// Pack is the active rule pack.
func (rs *Service) Pack() *rules.Pack { return rs.rules.Load() }
