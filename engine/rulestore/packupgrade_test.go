package rulestore_test

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rules"
)

// A database seeded from pack version 1 gets version 2 on start: rules still
// as Tend seeded them get a new version, new rules are added, a rule an admin
// changed is left alone, it is audited, and it happens once.
func TestDefaultPackUpgrade(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := enginetest.NewPool(t)
	src, err := os.ReadFile("../../rules/testdata/pack_v1.yaml")
	if err != nil {
		t.Fatal(err)
	}
	v1, err := rules.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	var admin string
	if err := pool.QueryRow(ctx, `INSERT INTO users (id, name, role) VALUES (gen_random_uuid(), 'Admin', 'admin') RETURNING id`).Scan(&admin); err != nil {
		t.Fatal(err)
	}
	for _, r := range v1 {
		r.Version, r.Enabled = 0, nil
		def, _ := json.Marshal(r)
		var by any
		if r.ID == "hr-high" {
			by = admin // an admin's own version: must be kept
		}
		if _, err := pool.Exec(ctx, `INSERT INTO rule_versions (rule_id, version, definition, enabled, created_by) VALUES ($1, 1, $2, true, $3)`,
			r.ID, def, by); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 { // the second start changes nothing
		eng, err := engine.New(engine.Config{Pool: pool, RulesRefresh: -1})
		if err != nil {
			t.Fatal(err)
		}
		if err := eng.Start(ctx); err != nil {
			t.Fatal(err)
		}
		_ = eng.Stop(ctx)
	}
	version := func(id string) int {
		var v int
		if err := pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM rule_versions WHERE rule_id = $1`, id).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := version("bp-crisis"); v != 2 {
		t.Errorf("bp-crisis is at version %d, want 2 (upgraded once)", v)
	}
	if v := version("hr-high"); v != 1 {
		t.Errorf("hr-high, edited by an admin, is at version %d, want 1", v)
	}
	if v := version("hf-weight-gain-3d"); v != 1 {
		t.Errorf("hf-weight-gain-3d, new in the pack, is at version %d, want 1", v)
	}
	var audits int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_entries WHERE action = 'rule.pack_upgrade'`).Scan(&audits); err != nil {
		t.Fatal(err)
	}
	if audits != 1 {
		t.Errorf("%d rule.pack_upgrade audit entries, want 1", audits)
	}
}
