package rulestore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/rules"
)

// Reading and changing rules: every change is a new version, checked in
// full (all problems at once), audited, and loaded by every process.

// ListRules returns the rules of the actor's organisation's effective pack
// (the default pack's for Tend itself): the default pack's rules in the
// order they were created, each replaced by the organisation's own version
// where it has one, then the organisation's own rules (admins and
// clinicians).
func (rs *Service) ListRules(ctx context.Context, a access.Actor) ([]Rule, error) {
	if err := access.Require(a, access.RoleAdmin, access.RoleClinician); err != nil {
		return nil, err
	}
	if err := rs.EnsureSeeded(ctx); err != nil {
		return nil, err
	}
	org := ruleOrg(a)
	var rows []ruleRow
	err := pg.ReadTx(ctx, rs.pool, func(tx pgx.Tx) error {
		var err error
		rows, err = latestRules(ctx, tx, orgList(org))
		return err
	})
	if err != nil {
		return nil, err
	}
	defaults, own := splitRows(rows)
	var mine []ruleRow
	if org != nil {
		mine = own[*org]
	}
	defaultVersion := make(map[string]int, len(defaults))
	for _, d := range defaults {
		defaultVersion[d.id] = d.version
	}
	eff := effective(defaults, mine)
	out := make([]Rule, len(eff))
	for i, r := range eff {
		out[i] = toRule(r, r.firstAt)
		if v, ok := defaultVersion[r.id]; ok {
			out[i].DefaultVersion = &v
			out[i].Overridden = r.org != nil
		}
	}
	return out, nil
}

// GetRule returns a rule of the actor's organisation's effective pack with
// every version, newest first: the organisation's own versions, then the
// default pack's before them (admins and clinicians). A rule only another
// organisation has is access.ErrNotFound.
func (rs *Service) GetRule(ctx context.Context, a access.Actor, id string) (Rule, error) {
	if err := access.Require(a, access.RoleAdmin, access.RoleClinician); err != nil {
		return Rule{}, err
	}
	if err := rs.EnsureSeeded(ctx); err != nil {
		return Rule{}, err
	}
	var out Rule
	err := pg.ReadTx(ctx, rs.pool, func(tx pgx.Tx) error {
		var err error
		out, err = getRule(ctx, tx, id, ruleOrg(a))
		return err
	})
	return out, err
}

func getRule(ctx context.Context, tx pgx.Tx, id string, org *uuid.UUID) (Rule, error) {
	rows, err := tx.Query(ctx, ruleVersionsSQL, id, org)
	if err != nil {
		return Rule{}, fmt.Errorf("get rule: %w", err)
	}
	versions, err := pgx.CollectRows(rows, scanRuleRow)
	if err != nil {
		return Rule{}, fmt.Errorf("get rule: %w", err)
	}
	if len(versions) == 0 {
		return Rule{}, fmt.Errorf("rule: %w", access.ErrNotFound)
	}
	out := toRule(versions[0], versions[len(versions)-1].createdAt)
	rows, err = tx.Query(ctx, defaultVersionSQL, id)
	if err != nil {
		return Rule{}, fmt.Errorf("get rule: %w", err)
	}
	def, err := pgx.CollectRows(rows, scanRuleRow)
	if err != nil {
		return Rule{}, fmt.Errorf("get rule: %w", err)
	}
	if len(def) > 0 {
		out.DefaultVersion = &def[0].version
		if out.Overridden = out.OrgID != nil; out.Overridden {
			d := toVersion(def[0])
			out.Default = &d
		}
	}
	out.Versions = make([]RuleVersion, len(versions))
	for i, v := range versions {
		out.Versions[i] = toVersion(v)
	}
	return out, nil
}

func toVersion(v ruleRow) RuleVersion {
	return RuleVersion{Version: v.version, Enabled: v.enabled, CreatedAt: v.createdAt, CreatedBy: v.createdBy, OrgID: v.org, Definition: v.rule()}
}

// lockRules locks the rules for a change and returns the version of the rule
// in force in organisation org (nil: the default pack); ok is false when the
// organisation has no rule of that id.
func (rs *Service) lockRules(ctx context.Context, tx pgx.Tx, id string, org *uuid.UUID) (row ruleRow, ok bool, err error) {
	if _, err := tx.Exec(ctx, advisoryLockSQL, int64(rulesLockKey)); err != nil {
		return ruleRow{}, false, fmt.Errorf("lock rules: %w", err)
	}
	rows, err := tx.Query(ctx, latestRuleSQL, id, org)
	if err != nil {
		return ruleRow{}, false, fmt.Errorf("load rule: %w", err)
	}
	got, err := pgx.CollectRows(rows, scanRuleRow)
	if err != nil {
		return ruleRow{}, false, fmt.Errorf("load rule: %w", err)
	}
	if len(got) == 0 {
		return ruleRow{}, false, nil
	}
	return got[0], true, nil
}

// checkRule validates one rule written in the rule language (JSON or YAML):
// every problem, with its line, field and reason, as a *rules.LoadError.
func checkRule(src []byte) (rules.Rule, error) {
	if ps := rules.Check(src); len(ps) > 0 {
		return rules.Rule{}, &rules.LoadError{Problems: ps}
	}
	rs, err := rules.Parse(src)
	if err != nil {
		return rules.Rule{}, err
	}
	if len(rs) != 1 {
		return rules.Rule{}, &rules.LoadError{Problems: []rules.Problem{{Line: 1, Reason: "send exactly one rule object"}}}
	}
	r := rs[0]
	if slices.Contains(reservedRuleIDs, r.ID) {
		return rules.Rule{}, &rules.LoadError{Problems: []rules.Problem{{Line: 1, Field: "id", Rule: r.ID,
			Reason: "is reserved (" + strings.Join(reservedRuleIDs, ", ") + " are API paths)"}}}
	}
	return r, nil
}

// CreateRule stores a new rule as version 1 and makes it active (admins):
// in the actor's organisation only, or in the default pack for Tend itself.
// src is one rule in the rule language (JSON, or YAML); an invalid rule is a
// *rules.LoadError listing every problem; an id already taken is
// access.ErrConflict. enabled defaults to true.
func (rs *Service) CreateRule(ctx context.Context, a access.Actor, src []byte) (Rule, error) {
	if err := access.Require(a, access.RoleAdmin); err != nil {
		return Rule{}, err
	}
	def, err := checkRule(src)
	if err != nil {
		return Rule{}, err
	}
	if err := rs.EnsureSeeded(ctx); err != nil {
		return Rule{}, err
	}
	org := ruleOrg(a)
	var out Rule
	err = pg.InTx(ctx, rs.pool, func(tx pgx.Tx) error {
		_, exists, err := rs.lockRules(ctx, tx, def.ID, org)
		if err != nil {
			return err
		}
		if exists {
			return fmt.Errorf("rule %s already exists: %w", def.ID, access.ErrConflict)
		}
		if _, err := tx.Exec(ctx, createRuleSQL, def.ID, forStorage(def), def.IsEnabled(), rs.now(), pg.NilIfZero(a.UserID), org); err != nil {
			return fmt.Errorf("insert rule: %w", err)
		}
		if err := rs.audit.Write(ctx, tx, a, audit.Entry{Action: "rule.create", ObjectType: "rule", ObjectID: def.ID,
			Detail: map[string]any{"version": 1, "enabled": def.IsEnabled()}}); err != nil {
			return err
		}
		out, err = getRule(ctx, tx, def.ID, org)
		return err
	})
	if err != nil {
		return Rule{}, err
	}
	rs.afterRuleChange(ctx)
	return out, nil
}

// UpdateRule stores a new version of a rule and makes it active (admins).
// An organisation's admin writes an override that only their organisation's
// patients are judged by (its first version follows the default pack's
// version it replaces); Tend itself writes to the default pack.
// src is either the complete rule in the rule language, or only
// {"enabled": true|false} to enable or disable the latest version. In a
// complete rule, id may be left out (it is the one in the path), an absent
// enabled keeps the current state, and a version, when given, must be the
// latest one (else access.ErrConflict: someone changed the rule since it was read).
// A change identical to the latest version stores nothing; changed reports
// whether a version was added.
func (rs *Service) UpdateRule(ctx context.Context, a access.Actor, id string, src []byte) (out Rule, changed bool, err error) {
	if err := access.Require(a, access.RoleAdmin); err != nil {
		return Rule{}, false, err
	}
	toggle, base, isToggle, err := parseToggle(src)
	if err != nil {
		return Rule{}, false, err
	}
	var def rules.Rule
	if !isToggle {
		if def, err = checkRule(withID(src, id)); err != nil {
			return Rule{}, false, err
		}
		if def.ID != id {
			return Rule{}, false, &rules.LoadError{Problems: []rules.Problem{{Line: 1, Field: "id", Rule: def.ID,
				Reason: "must be the rule id in the path (" + id + "); create a new rule with POST /v1/rules"}}}
		}
		base = def.Version
	}
	if err := rs.EnsureSeeded(ctx); err != nil {
		return Rule{}, false, err
	}
	org := ruleOrg(a)
	err = pg.InTx(ctx, rs.pool, func(tx pgx.Tx) error {
		cur, exists, err := rs.lockRules(ctx, tx, id, org)
		if err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("rule: %w", access.ErrNotFound)
		}
		if base != 0 && base != cur.version {
			return fmt.Errorf("rule %s is at version %d, not %d: re-read it and apply the change again: %w", id, cur.version, base, access.ErrConflict)
		}
		next := cur.rule()
		action := "rule.update"
		if isToggle {
			next.Enabled = &toggle
			action = map[bool]string{true: "rule.enable", false: "rule.disable"}[toggle]
		} else {
			if def.Enabled == nil {
				def.Enabled = next.Enabled
			}
			next = def
		}
		if sameRule(next, cur.rule()) {
			out, err = getRule(ctx, tx, id, org)
			return err
		}
		version := cur.version + 1
		if _, err := tx.Exec(ctx, updateRuleSQL, id, version, forStorage(next), next.IsEnabled(), rs.now(), pg.NilIfZero(a.UserID), org); err != nil {
			return fmt.Errorf("insert rule version: %w", err)
		}
		if err := rs.audit.Write(ctx, tx, a, audit.Entry{Action: action, ObjectType: "rule", ObjectID: id,
			Detail: map[string]any{"version": version, "previous_version": cur.version, "enabled": next.IsEnabled()}}); err != nil {
			return err
		}
		changed = true
		out, err = getRule(ctx, tx, id, org)
		return err
	})
	if err != nil {
		return Rule{}, false, err
	}
	if changed {
		rs.afterRuleChange(ctx)
	}
	return out, changed, nil
}

// afterRuleChange makes a committed change active in this process at once.
// The change is stored either way: a failed reload is logged, and the next
// poll retries it.
func (rs *Service) afterRuleChange(ctx context.Context) {
	if err := rs.reloadRules(context.WithoutCancel(ctx)); err != nil {
		rs.log.ErrorContext(ctx, "reload rules after a change", "error", err)
	}
}

// parseToggle recognises a body holding only "enabled" (and optionally
// "version"), which enables or disables the latest version.
func parseToggle(src []byte) (enabled bool, version int, ok bool, err error) {
	var m map[string]json.RawMessage
	if json.Unmarshal(src, &m) != nil {
		return false, 0, false, nil // not a JSON object: a complete rule (or YAML)
	}
	raw, has := m["enabled"]
	if !has {
		return false, 0, false, nil
	}
	for k := range m {
		if k != "enabled" && k != "version" {
			return false, 0, false, nil
		}
	}
	var ps []rules.Problem
	if json.Unmarshal(raw, &enabled) != nil {
		ps = append(ps, rules.Problem{Line: 1, Field: "enabled", Reason: "must be true or false"})
	}
	if v, has := m["version"]; has {
		if json.Unmarshal(v, &version) != nil || version < 1 {
			ps = append(ps, rules.Problem{Line: 1, Field: "version", Reason: "must be a version number (1 or more)"})
		}
	}
	if len(ps) > 0 {
		return false, 0, false, &rules.LoadError{Problems: ps}
	}
	return enabled, version, true, nil
}

// withID adds "id" to a JSON rule object that has none, on the line of its
// opening brace, so that problem lines stay right.
func withID(src []byte, id string) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(src, &m) != nil {
		return src
	}
	if _, has := m["id"]; has {
		return src
	}
	i := bytes.IndexByte(src, '{')
	rest := src[i+1:]
	sep := ","
	if len(bytes.TrimSpace(rest)) > 0 && bytes.TrimSpace(rest)[0] == '}' {
		sep = ""
	}
	idJSON, _ := json.Marshal(id)
	out := make([]byte, 0, len(src)+len(id)+10)
	out = append(out, src[:i+1]...)
	out = append(out, `"id":`...)
	out = append(out, idJSON...)
	out = append(out, sep...)
	return append(out, rest...)
}

// sameRule reports whether two versions say the same thing.
func sameRule(a, b rules.Rule) bool {
	if a.IsEnabled() != b.IsEnabled() {
		return false
	}
	ja, err1 := json.Marshal(forStorage(a))
	jb, err2 := json.Marshal(forStorage(b))
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}
