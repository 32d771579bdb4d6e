package rulestore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/rules"
)

// Rules live in the database as versions (rule_versions): every change is a
// new row, and the pack the engine evaluates is compiled from the latest
// version of every rule. The table is seeded from the embedded default pack
// when it is empty.
//
// Refresh: the process that makes a change reloads its pack right after the
// commit. Other processes poll (count(*), max(seq)) of rule_versions every
// Config.RulesRefresh (2 s by default): rows are only ever inserted, so the
// pair changes whenever a change commits, whatever the commit order. Polling
// was chosen over LISTEN/NOTIFY because it needs no dedicated connection,
// works behind PgBouncer in transaction mode, and cannot miss a notification
// sent while a listener reconnects.

// rulesLockKey is the advisory lock that serialises rule changes and the seed
// across processes.
const rulesLockKey = 7_274_001

// reservedRuleIDs are path segments of the rules API that a rule id may not
// take.
var reservedRuleIDs = []string{"errors", "backtest"}

// ruleSync is the engine's bookkeeping of the stored rules. Its zero value is
// ready to use.
type ruleSync struct {
	mu      sync.Mutex // serialises reloads, so an older snapshot never replaces a newer one
	sig     ruleSig    // what the active pack was compiled from; zero before the first load
	seeded  bool       // the table is known to be seeded (guarded by mu)
	cancel  context.CancelFunc
	stopped chan struct{}
}

// ruleSig identifies a state of rule_versions.
type ruleSig struct {
	count, maxSeq int64
}

// Rule is a stored rule: its latest version, and on GetRule its history.
type Rule struct {
	ID      string         `json:"id"`
	Version int            `json:"version"`
	Enabled bool           `json:"enabled"`
	Type    rules.RuleType `json:"type"`
	Title   string         `json:"title"`
	Urgency rpm.Urgency    `json:"urgency"`
	// CreatedAt is when the rule's first version was stored.
	CreatedAt time.Time `json:"created_at"`
	// UpdatedAt and UpdatedBy are the latest version's; UpdatedBy is null for
	// Tend itself (the seeded default pack).
	UpdatedAt time.Time  `json:"updated_at"`
	UpdatedBy *uuid.UUID `json:"updated_by"`
	// Definition is the latest version in the rule language (with its version
	// and enabled): send it back, edited, to PUT /v1/rules/{id}.
	Definition rules.Rule `json:"definition"`
	// Versions lists every version, newest first (GetRule only).
	Versions []RuleVersion `json:"versions,omitempty"`
}

// RuleVersion is one stored version of a rule.
type RuleVersion struct {
	Version    int        `json:"version"`
	Enabled    bool       `json:"enabled"`
	CreatedAt  time.Time  `json:"created_at"`
	CreatedBy  *uuid.UUID `json:"created_by"`
	Definition rules.Rule `json:"definition"`
}

// ruleRow is one row of rule_versions.
type ruleRow struct {
	seq       int64
	id        string
	version   int
	def       rules.Rule
	enabled   bool
	createdAt time.Time
	createdBy *uuid.UUID
}

// rule returns the row as the rules package reads it.
func (r ruleRow) rule() rules.Rule {
	d := r.def
	d.ID = r.id
	d.Version = r.version
	enabled := r.enabled
	d.Enabled = &enabled
	return d
}

// forStorage strips what the columns hold from a definition before it is stored.
func forStorage(r rules.Rule) rules.Rule {
	r.Version = 0
	r.Enabled = nil
	return r
}

func scanRuleRow(row pgx.CollectableRow) (ruleRow, error) {
	var r ruleRow
	err := row.Scan(&r.seq, &r.id, &r.version, &r.def, &r.enabled, &r.createdAt, &r.createdBy)
	return r, err
}

func latestRules(ctx context.Context, q pgx.Tx) ([]ruleRow, []time.Time, error) {
	rows, err := q.Query(ctx, latestRulesSQL)
	if err != nil {
		return nil, nil, fmt.Errorf("load rules: %w", err)
	}
	defer rows.Close()
	var out []ruleRow
	var first []time.Time
	for rows.Next() {
		var r ruleRow
		var f time.Time
		if err := rows.Scan(&r.seq, &r.id, &r.version, &r.def, &r.enabled, &r.createdAt, &r.createdBy, &f); err != nil {
			return nil, nil, fmt.Errorf("load rules: %w", err)
		}
		out = append(out, r)
		first = append(first, f)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("load rules: %w", err)
	}
	return out, first, nil
}

// Start seeds the rule table when it is empty, loads the active pack
// from it, and starts polling for changes made by other processes.
func (rs *Service) Start(ctx context.Context) error {
	if err := rs.reloadRules(ctx); err != nil {
		return fmt.Errorf("engine: load rules: %w", err)
	}
	every := rs.rulesRefresh
	if every <= 0 {
		return nil
	}
	rs.ruleSync.mu.Lock()
	defer rs.ruleSync.mu.Unlock()
	if rs.ruleSync.cancel != nil {
		return nil // already watching
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	rs.ruleSync.cancel, rs.ruleSync.stopped = cancel, done
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
				if err := rs.pollRules(wctx); err != nil && wctx.Err() == nil {
					rs.log.WarnContext(wctx, "rules refresh failed", "error", err)
				}
			}
		}
	}()
	return nil
}

// Stop stops the refresh loop, if running.
func (rs *Service) Stop() {
	rs.ruleSync.mu.Lock()
	cancel, done := rs.ruleSync.cancel, rs.ruleSync.stopped
	rs.ruleSync.cancel, rs.ruleSync.stopped = nil, nil
	rs.ruleSync.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// pollRules reloads the pack when rule_versions changed since the last load.
func (rs *Service) pollRules(ctx context.Context) error {
	var sig ruleSig
	if err := rs.pool.QueryRow(ctx, rulesStateSQL).Scan(&sig.count, &sig.maxSeq); err != nil {
		return fmt.Errorf("poll rules: %w", err)
	}
	rs.ruleSync.mu.Lock()
	same := sig == rs.ruleSync.sig
	rs.ruleSync.mu.Unlock()
	if same {
		return nil
	}
	return rs.reloadRules(ctx)
}

// EnsureSeeded seeds the rule table once per engine; use cases that
// read or change stored rules call it, so that an engine that was never
// started (an API test, a CLI command) sees the default pack too.
func (rs *Service) EnsureSeeded(ctx context.Context) error {
	rs.ruleSync.mu.Lock()
	defer rs.ruleSync.mu.Unlock()
	return rs.seedLocked(ctx)
}

// seedLocked inserts the default pack as version 1 of each rule when the
// table is empty. Concurrent processes serialise on an advisory lock; the
// loser finds the table seeded. Callers hold ruleSync.mu.
func (rs *Service) seedLocked(ctx context.Context) error {
	if rs.ruleSync.seeded {
		return nil
	}
	defs, err := rules.DefaultRules()
	if err != nil {
		return err
	}
	err = pg.InTx(ctx, rs.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, advisoryLockSQL, int64(rulesLockKey)); err != nil {
			return fmt.Errorf("seed rules: %w", err)
		}
		var seededAlready bool
		if err := tx.QueryRow(ctx, anyRuleSQL).Scan(&seededAlready); err != nil {
			return fmt.Errorf("seed rules: %w", err)
		}
		if seededAlready {
			return rs.upgradePackLocked(ctx, tx, defs)
		}
		now := rs.now()
		b := &pgx.Batch{}
		for _, d := range defs {
			b.Queue(insertFirstVersionSQL, d.ID, forStorage(d), d.IsEnabled(), now)
		}
		rs.audit.Queue(b, access.System("rules-seed"), audit.Entry{Action: "rule.seed", ObjectType: "rule", Detail: map[string]any{"count": len(defs)}})
		b.Queue(recordSeedSQL, rules.DefaultPackVersion, now)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("seed rules: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	rs.ruleSync.seeded = true
	return nil
}

// upgradePackLocked applies a newer default pack to a database seeded from an
// older one, once per pack version: every rule still as Tend stored it gets
// the pack's definition as a new version, rules new in the pack are added,
// and rules an admin changed (their latest version has an author) are left as
// they are. One audit entry lists what changed. It runs inside seedLocked's
// transaction, under the rules lock.
func (rs *Service) upgradePackLocked(ctx context.Context, tx pgx.Tx, defs []rules.Rule) error {
	var applied bool
	if err := tx.QueryRow(ctx, packAppliedSQL, rules.DefaultPackVersion).Scan(&applied); err != nil {
		return fmt.Errorf("rule pack upgrade: %w", err)
	}
	if applied {
		return nil
	}
	type latest struct {
		version int
		def     []byte
		enabled bool
		edited  bool
	}
	rows, err := tx.Query(ctx, latestVersionsSQL)
	if err != nil {
		return fmt.Errorf("rule pack upgrade: %w", err)
	}
	stored := map[string]latest{}
	for rows.Next() {
		var id string
		var l latest
		if err := rows.Scan(&id, &l.version, &l.def, &l.enabled, &l.edited); err != nil {
			rows.Close()
			return fmt.Errorf("rule pack upgrade: %w", err)
		}
		stored[id] = l
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("rule pack upgrade: %w", err)
	}
	now := rs.now()
	var upgraded, added, kept []string
	b := &pgx.Batch{}
	for _, d := range defs {
		def, err := json.Marshal(forStorage(d))
		if err != nil {
			return fmt.Errorf("rule pack upgrade: %w", err)
		}
		l, ok := stored[d.ID]
		switch {
		case !ok:
			added = append(added, d.ID)
			b.Queue(insertFirstVersionSQL, d.ID, def, d.IsEnabled(), now)
		case l.edited:
			kept = append(kept, d.ID)
		case !sameJSON(l.def, def):
			upgraded = append(upgraded, d.ID)
			b.Queue(insertSystemVersionSQL, d.ID, l.version+1, def, l.enabled, now)
		}
	}
	detail := map[string]any{"pack_version": rules.DefaultPackVersion, "upgraded": upgraded, "added": added, "kept_edited": kept}
	rs.audit.Queue(b, access.System("rules-upgrade"), audit.Entry{Action: "rule.pack_upgrade", ObjectType: "rule", Detail: detail})
	b.Queue(recordPackSQL, rules.DefaultPackVersion, now, detail)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("rule pack upgrade: %w", err)
	}
	if len(upgraded)+len(added) > 0 {
		rs.log.InfoContext(ctx, "default rule pack upgraded", "pack_version", rules.DefaultPackVersion,
			"upgraded", len(upgraded), "added", len(added), "kept_edited", len(kept))
	}
	return nil
}

// sameJSON reports whether two JSON documents hold the same value.
func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// reloadRules compiles the latest stored version of every rule and makes it
// the active pack.
func (rs *Service) reloadRules(ctx context.Context) error {
	rs.ruleSync.mu.Lock()
	defer rs.ruleSync.mu.Unlock()
	if err := rs.seedLocked(ctx); err != nil {
		return err
	}
	var rows []ruleRow
	var sig ruleSig
	err := pg.ReadTx(ctx, rs.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, rulesStateSQL).Scan(&sig.count, &sig.maxSeq); err != nil {
			return fmt.Errorf("load rules: %w", err)
		}
		var err error
		rows, _, err = latestRules(ctx, tx)
		return err
	})
	if err != nil {
		return err
	}
	defs := make([]rules.Rule, len(rows))
	for i, r := range rows {
		defs[i] = r.rule()
	}
	pack, dropped, err := compileStored(defs)
	if err != nil {
		return err
	}
	for _, p := range dropped {
		// A stored rule that no longer compiles (a newer binary validating
		// more strictly) is left out rather than taking every other rule
		// down with it.
		rs.log.ErrorContext(ctx, "stored rule does not compile: left out of the active pack", "rule_id", p.Rule, "field", p.Field, "reason", p.Reason)
	}
	rs.rules.Store(pack)
	rs.ruleSync.sig = sig
	return nil
}

// compileStored compiles defs, leaving out the rules that have problems; it
// returns those problems.
func compileStored(defs []rules.Rule) (*rules.Pack, []rules.Problem, error) {
	var dropped []rules.Problem
	for range 3 {
		pack, err := rules.Compile(defs)
		if err == nil {
			return pack, dropped, nil
		}
		var le *rules.LoadError
		if !errors.As(err, &le) {
			return nil, nil, fmt.Errorf("compile rules: %w", err)
		}
		bad := map[int]bool{}
		for _, p := range le.Problems {
			i, ok := problemIndex(p.Field)
			if len(defs) == 1 {
				i, ok = 0, true
			}
			if !ok {
				return nil, nil, fmt.Errorf("compile rules: %w", err)
			}
			if p.Rule == "" && i < len(defs) {
				p.Rule = defs[i].ID
			}
			bad[i] = true
			dropped = append(dropped, p)
		}
		kept := defs[:0:0]
		for i, d := range defs {
			if !bad[i] {
				kept = append(kept, d)
			}
		}
		defs = kept
	}
	return nil, nil, errors.New("compile rules: stored rules keep failing to compile")
}

// problemIndex reads the rule index of a problem field such as "[3].when".
func problemIndex(field string) (int, bool) {
	rest, ok := strings.CutPrefix(field, "[")
	if !ok {
		return 0, false
	}
	end := strings.IndexByte(rest, ']')
	if end < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(rest[:end])
	return n, err == nil && n >= 0
}

func toRule(r ruleRow, firstAt time.Time) Rule {
	def := r.rule()
	return Rule{
		ID: r.id, Version: r.version, Enabled: r.enabled, Type: def.Type(), Title: def.Title, Urgency: def.Urgency,
		CreatedAt: firstAt, UpdatedAt: r.createdAt, UpdatedBy: r.createdBy, Definition: def,
	}
}

// ListRules returns the latest version of every stored rule, in the order
// they were created (admins and clinicians).
func (rs *Service) ListRules(ctx context.Context, a access.Actor) ([]Rule, error) {
	if err := access.Require(a, access.RoleAdmin, access.RoleClinician); err != nil {
		return nil, err
	}
	if err := rs.EnsureSeeded(ctx); err != nil {
		return nil, err
	}
	var out []Rule
	err := pg.ReadTx(ctx, rs.pool, func(tx pgx.Tx) error {
		rows, first, err := latestRules(ctx, tx)
		if err != nil {
			return err
		}
		out = make([]Rule, len(rows))
		for i, r := range rows {
			out[i] = toRule(r, first[i])
		}
		return nil
	})
	return out, err
}

// GetRule returns a stored rule with every version, newest first (admins and
// clinicians).
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
		out, err = getRule(ctx, tx, id)
		return err
	})
	return out, err
}

func getRule(ctx context.Context, tx pgx.Tx, id string) (Rule, error) {
	rows, err := tx.Query(ctx, ruleVersionsSQL, id)
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
	out.Versions = make([]RuleVersion, len(versions))
	for i, v := range versions {
		out.Versions[i] = RuleVersion{Version: v.version, Enabled: v.enabled, CreatedAt: v.createdAt, CreatedBy: v.createdBy, Definition: v.rule()}
	}
	return out, nil
}

// lockRules locks the rules for a change and returns the rule's latest
// stored version; ok is false when the rule does not exist.
func (rs *Service) lockRules(ctx context.Context, tx pgx.Tx, id string) (row ruleRow, ok bool, err error) {
	if _, err := tx.Exec(ctx, advisoryLockSQL, int64(rulesLockKey)); err != nil {
		return ruleRow{}, false, fmt.Errorf("lock rules: %w", err)
	}
	rows, err := tx.Query(ctx, latestRuleSQL, id)
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

// CreateRule stores a new rule as version 1 and makes it active (admins).
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
	var out Rule
	err = pg.InTx(ctx, rs.pool, func(tx pgx.Tx) error {
		_, exists, err := rs.lockRules(ctx, tx, def.ID)
		if err != nil {
			return err
		}
		if exists {
			return fmt.Errorf("rule %s already exists: %w", def.ID, access.ErrConflict)
		}
		if _, err := tx.Exec(ctx, createRuleSQL, def.ID, forStorage(def), def.IsEnabled(), rs.now(), pg.NilIfZero(a.UserID)); err != nil {
			return fmt.Errorf("insert rule: %w", err)
		}
		if err := rs.audit.Write(ctx, tx, a, audit.Entry{Action: "rule.create", ObjectType: "rule", ObjectID: def.ID,
			Detail: map[string]any{"version": 1, "enabled": def.IsEnabled()}}); err != nil {
			return err
		}
		out, err = getRule(ctx, tx, def.ID)
		return err
	})
	if err != nil {
		return Rule{}, err
	}
	rs.afterRuleChange(ctx)
	return out, nil
}

// UpdateRule stores a new version of a rule and makes it active (admins).
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
	err = pg.InTx(ctx, rs.pool, func(tx pgx.Tx) error {
		cur, exists, err := rs.lockRules(ctx, tx, id)
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
			out, err = getRule(ctx, tx, id)
			return err
		}
		version := cur.version + 1
		if _, err := tx.Exec(ctx, updateRuleSQL, id, version, forStorage(next), next.IsEnabled(), rs.now(), pg.NilIfZero(a.UserID)); err != nil {
			return fmt.Errorf("insert rule version: %w", err)
		}
		if err := rs.audit.Write(ctx, tx, a, audit.Entry{Action: action, ObjectType: "rule", ObjectID: id,
			Detail: map[string]any{"version": version, "previous_version": cur.version, "enabled": next.IsEnabled()}}); err != nil {
			return err
		}
		changed = true
		out, err = getRule(ctx, tx, id)
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
