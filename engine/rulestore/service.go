// Package rulestore keeps the rules in the database: versioned rules and
// their administration, seeding and upgrading the default pack, reloading
// the active pack when any process changes a rule, backtests over stored
// data, and the rule evaluation errors recorded at ingest.
package rulestore

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
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

// Service keeps the stored rules and the active packs: the default pack and
// each organisation's effective pack.
type Service struct {
	pool         *pgxpool.Pool
	log          *slog.Logger
	now          func() time.Time
	audit        audit.Writer
	rulesRefresh time.Duration
	packs        atomic.Pointer[packSet] // swapped when rules change; read with Pack and PackFor
	ruleSync     ruleSync
	// simSlot holds the one simulation a process runs at a time.
	simSlot chan struct{}
}

// New builds a Service.
func New(c Config) *Service {
	rs := &Service{pool: c.Pool, log: c.Logger, now: c.Now, audit: c.Audit, rulesRefresh: c.RulesRefresh, simSlot: make(chan struct{}, 1)}
	rs.packs.Store(&packSet{def: c.Rules})
	return rs
}

// packSet is the compiled packs in force, never changed once stored: the
// default pack, and the effective pack of every organisation that has
// overrides. An organisation without overrides is judged by the default
// pack itself, so the set grows with the organisations that edit rules, not
// with the organisations.
type packSet struct {
	def  *rules.Pack
	orgs map[uuid.UUID]*rules.Pack
}

// Pack is the active default pack, shared by every organisation.
func (rs *Service) Pack() *rules.Pack { return rs.packs.Load().def }

// PackFor is the active pack of organisation org's patients: the default
// pack with the organisation's overrides applied (the default pack itself
// for an organisation without overrides, and for uuid.Nil). It is a map
// lookup: the ingest path calls it per patient.
func (rs *Service) PackFor(org uuid.UUID) *rules.Pack {
	ps := rs.packs.Load()
	if p, ok := ps.orgs[org]; ok {
		return p
	}
	return ps.def
}
