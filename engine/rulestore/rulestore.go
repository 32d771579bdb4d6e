package rulestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
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
// new row. The default pack (org_id NULL) is compiled from the latest
// version of each of its rules, and is seeded from the embedded default pack
// when it is empty; an organisation's overrides (org_id set) are versions of
// its own, and its effective pack is the default pack with the latest
// version of each override in place of the default's rule, and its own new
// rules after them.
//
// Refresh: the process that makes a change reloads its packs right after the
// commit. Other processes poll (count(*), max(seq)) of rule_versions every
// Config.RulesRefresh (2 s by default): rows are only ever inserted, so the
// pair changes whenever a change commits, whatever the commit order; the
// reload then compares the pair per organisation and recompiles only the
// packs that changed (every organisation's when the default pack changed).
// Polling was chosen over LISTEN/NOTIFY because it needs no dedicated
// connection, works behind PgBouncer in transaction mode, and cannot miss a
// notification sent while a listener reconnects.

// rulesLockKey is the advisory lock that serialises rule changes and the seed
// across processes.
const rulesLockKey = 7_274_001

// reservedRuleIDs are path segments of the rules API that a rule id may not
// take.
var reservedRuleIDs = []string{"errors", "backtest"}

// ruleSync is the engine's bookkeeping of the stored rules. Its zero value is
// ready to use.
type ruleSync struct {
	mu  sync.Mutex // serialises reloads, so an older snapshot never replaces a newer one
	sig ruleSig    // what the active packs were compiled from; zero before the first load
	// orgSigs is sig per organisation (uuid.Nil: the default pack); nil
	// before the first load.
	orgSigs map[uuid.UUID]ruleSig
	seeded  bool // the table is known to be seeded (guarded by mu)
	cancel  context.CancelFunc
	stopped chan struct{}
}

// ruleSig identifies a state of rule_versions.
type ruleSig struct {
	count, maxSeq int64
}

// Rule is a stored rule as an organisation sees it (its effective pack's):
// the latest version in force, and on GetRule its history.
type Rule struct {
	ID      string         `json:"id"`
	Version int            `json:"version"`
	Enabled bool           `json:"enabled"`
	Type    rules.RuleType `json:"type"`
	Title   string         `json:"title"`
	Urgency rpm.Urgency    `json:"urgency"`
	// OrgID is the organisation whose own version is in force; null for a
	// rule of the default pack, which every organisation shares.
	OrgID *uuid.UUID `json:"org_id"`
	// Overridden says the organisation's version replaces a rule of the
	// default pack.
	Overridden bool `json:"overridden"`
	// DefaultVersion is the default pack's latest version of the rule, null
	// when the pack has no rule of this id. Tend's upgrades of the default
	// pack move it on; an organisation's override stays in force.
	DefaultVersion *int `json:"default_version"`
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
	// Default is the default pack's latest version of an overridden rule
	// (GetRule only): what the organisation would follow without its
	// override, to compare or adopt.
	Default *RuleVersion `json:"default,omitempty"`
}

// RuleVersion is one stored version of a rule.
type RuleVersion struct {
	Version   int        `json:"version"`
	Enabled   bool       `json:"enabled"`
	CreatedAt time.Time  `json:"created_at"`
	CreatedBy *uuid.UUID `json:"created_by"`
	// OrgID is the organisation the version belongs to; null for the
	// default pack's.
	OrgID      *uuid.UUID `json:"org_id"`
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
	org       *uuid.UUID // nil: the default pack's
	firstAt   time.Time  // when the rule's first version was stored (latestRules only)
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
	err := row.Scan(&r.seq, &r.id, &r.version, &r.def, &r.enabled, &r.createdAt, &r.createdBy, &r.org)
	return r, err
}

// latestRules reads the latest version of every rule of the default pack and
// of the overrides of organisations orgs, in the order the rules were first
// created.
func latestRules(ctx context.Context, q pgx.Tx, orgs []uuid.UUID) ([]ruleRow, error) {
	if orgs == nil {
		orgs = []uuid.UUID{}
	}
	rows, err := q.Query(ctx, latestRulesSQL, orgs)
	if err != nil {
		return nil, fmt.Errorf("load rules: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ruleRow, error) {
		var r ruleRow
		err := row.Scan(&r.seq, &r.id, &r.version, &r.def, &r.enabled, &r.createdAt, &r.createdBy, &r.org, &r.firstAt)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("load rules: %w", err)
	}
	return out, nil
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
// and rules an admin changed (their latest version has an author: a database
// from before organisations) are left as they are. Only the default pack
// changes: an organisation's overrides are versions of their own, which stay
// in force over the upgraded rules. One audit entry lists what changed. It
// runs inside seedLocked's transaction, under the rules lock.
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
		ID: r.id, Version: r.version, Enabled: r.enabled, Type: def.Type(), Title: def.Title, Urgency: def.Urgency, OrgID: r.org,
		CreatedAt: firstAt, UpdatedAt: r.createdAt, UpdatedBy: r.createdBy, Definition: def,
	}
}
