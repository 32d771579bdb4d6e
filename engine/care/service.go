// Package care is who looks after whom: care teams and their members,
// patients, and each patient's personalised rule parameters.
package care

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/presence"
	"github.com/tendhealth/tend/rules"
)

// Config wires a Service.
type Config struct {
	Pool  *pgxpool.Pool
	Now   func() time.Time
	Audit audit.Writer
	// Rules returns the active rule pack of an organisation's patients
	// (parameter defaults and bounds).
	Rules func(org uuid.UUID) *rules.Pack
	// EnsureRules makes sure the stored rules are seeded before parameters
	// are checked against them.
	EnsureRules func(ctx context.Context) error
	// Presence shows a team's members' presence in GetCareTeam to the
	// team's own members. Nil: never shown.
	Presence *presence.Tracker
}

// Service manages care teams, patients and their parameters.
type Service struct {
	pool        *pgxpool.Pool
	now         func() time.Time
	audit       audit.Writer
	rules       func(org uuid.UUID) *rules.Pack
	ensureRules func(ctx context.Context) error
	presence    *presence.Tracker
}

// New builds a Service.
func New(c Config) *Service {
	return &Service{pool: c.Pool, now: c.Now, audit: c.Audit, rules: c.Rules, ensureRules: c.EnsureRules, presence: c.Presence}
}

// pack is the active rule pack of organisation org's patients.
func (cr *Service) pack(org uuid.UUID) *rules.Pack { return cr.rules(org) }
