package rulestore

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/rules"
)

// The packs in force: the default pack, shared by every organisation, and
// one effective pack per organisation with overrides. A reload recompiles
// only what changed: an organisation's pack when its overrides did, every
// one when the default pack did.

// reloadRules compiles the packs whose stored rules changed since the last
// load and makes them active.
func (rs *Service) reloadRules(ctx context.Context) error {
	rs.ruleSync.mu.Lock()
	defer rs.ruleSync.mu.Unlock()
	if err := rs.seedLocked(ctx); err != nil {
		return err
	}
	var sig ruleSig
	var state map[uuid.UUID]ruleSig
	var stale []uuid.UUID
	var defaultStale bool
	var rows []ruleRow
	err := pg.ReadTx(ctx, rs.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, rulesStateSQL).Scan(&sig.count, &sig.maxSeq); err != nil {
			return fmt.Errorf("load rules: %w", err)
		}
		var err error
		if state, err = orgStates(ctx, tx); err != nil {
			return err
		}
		stale, defaultStale = staleOrgs(rs.ruleSync.orgSigs, state)
		rows, err = latestRules(ctx, tx, stale)
		return err
	})
	if err != nil {
		return err
	}
	defaults, own := splitRows(rows)
	old := rs.packs.Load()
	next := &packSet{def: old.def, orgs: make(map[uuid.UUID]*rules.Pack, len(state))}
	if defaultStale {
		if next.def, err = rs.compilePack(ctx, uuid.Nil, defaults); err != nil {
			return err
		}
	}
	for org, p := range old.orgs {
		if _, ok := state[org]; ok {
			next.orgs[org] = p // recompiled below when stale
		}
	}
	for _, org := range stale {
		if next.orgs[org], err = rs.compilePack(ctx, org, effective(defaults, own[org])); err != nil {
			return err
		}
	}
	rs.packs.Store(next)
	rs.ruleSync.sig, rs.ruleSync.orgSigs = sig, state
	return nil
}

// orgStates reads (count(*), max(seq)) of rule_versions per organisation
// (uuid.Nil: the default pack).
func orgStates(ctx context.Context, tx pgx.Tx) (map[uuid.UUID]ruleSig, error) {
	rows, err := tx.Query(ctx, rulesOrgStateSQL)
	if err != nil {
		return nil, fmt.Errorf("load rules: %w", err)
	}
	out := map[uuid.UUID]ruleSig{}
	for rows.Next() {
		var org *uuid.UUID
		var s ruleSig
		if err := rows.Scan(&org, &s.count, &s.maxSeq); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load rules: %w", err)
		}
		out[pg.Deref(org)] = s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load rules: %w", err)
	}
	return out, nil
}

// staleOrgs compares the state the packs were compiled from (nil before the
// first load) with the stored one: it returns the organisations whose
// effective pack must be compiled, and whether the default pack must be.
func staleOrgs(was, now map[uuid.UUID]ruleSig) ([]uuid.UUID, bool) {
	defaultStale := was == nil || was[uuid.Nil] != now[uuid.Nil]
	var out []uuid.UUID
	for org, s := range now {
		if org == uuid.Nil {
			continue
		}
		if prev, ok := was[org]; defaultStale || !ok || prev != s {
			out = append(out, org)
		}
	}
	return out, defaultStale
}

// splitRows separates the default pack's rows from each organisation's,
// keeping their order.
func splitRows(rows []ruleRow) (defaults []ruleRow, own map[uuid.UUID][]ruleRow) {
	own = map[uuid.UUID][]ruleRow{}
	for _, r := range rows {
		if r.org == nil {
			defaults = append(defaults, r)
		} else {
			own[*r.org] = append(own[*r.org], r)
		}
	}
	return defaults, own
}

// effective is an organisation's view of the rules: the default pack's, in
// its order, each replaced by the organisation's latest version of it where
// there is one, then the organisation's own new rules in the order they were
// created.
func effective(defaults, own []ruleRow) []ruleRow {
	if len(own) == 0 {
		return defaults
	}
	byID := make(map[string]ruleRow, len(own))
	for _, r := range own {
		byID[r.id] = r
	}
	out := make([]ruleRow, 0, len(defaults)+len(own))
	for _, d := range defaults {
		if r, ok := byID[d.id]; ok {
			out = append(out, r)
			delete(byID, d.id)
			continue
		}
		out = append(out, d)
	}
	for _, r := range own {
		if _, ok := byID[r.id]; ok {
			out = append(out, r)
		}
	}
	return out
}

// compilePack compiles rows into a pack (org is uuid.Nil for the default
// pack), leaving out, with an error in the log, any rule that no longer
// compiles.
func (rs *Service) compilePack(ctx context.Context, org uuid.UUID, rows []ruleRow) (*rules.Pack, error) {
	defs := make([]rules.Rule, len(rows))
	for i, r := range rows {
		defs[i] = r.rule()
	}
	pack, dropped, err := compileStored(defs)
	if err != nil {
		return nil, err
	}
	for _, p := range dropped {
		// A stored rule that no longer compiles (a newer binary validating
		// more strictly) is left out rather than taking every other rule
		// down with it.
		rs.log.ErrorContext(ctx, "stored rule does not compile: left out of the active pack", "rule_id", p.Rule,
			"org_id", org.String(), "field", p.Field, "reason", p.Reason)
	}
	return pack, nil
}

// ruleOrg is the organisation whose rules the actor reads and changes: nil,
// the default pack, for Tend itself (System) unless it names an
// organisation; otherwise the actor's organisation (the default one for a
// user from before organisations).
func ruleOrg(a access.Actor) *uuid.UUID {
	if a.OrgID != uuid.Nil {
		org := a.OrgID
		return &org
	}
	if a.IsSystem() {
		return nil
	}
	org := a.HomeOrg()
	return &org
}

// packOf is the active pack of organisation org (nil: the default pack).
func (rs *Service) packOf(org *uuid.UUID) *rules.Pack {
	if org == nil {
		return rs.Pack()
	}
	return rs.PackFor(*org)
}

// orgList is org as a query's array of organisations (empty for none).
func orgList(org *uuid.UUID) []uuid.UUID {
	if org == nil {
		return []uuid.UUID{}
	}
	return []uuid.UUID{*org}
}
