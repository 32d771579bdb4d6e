package rulestore_test

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rules"
)

// A database seeded from an older pack (version 1 or 2) gets the current
// version on start: rules still as Tend seeded them get a new version, new
// rules are added, a rule an admin changed is left alone, it is audited, and
// it happens once. Every organisation's overrides stay in force over the
// upgraded default pack.
func TestDefaultPackUpgrade(t *testing.T) {
	t.Parallel()
	for _, from := range []struct {
		file  string
		added string // a rule new since that version
	}{{"pack_v1.yaml", "hf-weight-gain-3d"}, {"pack_v2.yaml", "spo2-ask-breathless"}} {
		t.Run(from.file, func(t *testing.T) {
			t.Parallel()
			testPackUpgrade(t, from.file, from.added)
		})
	}
}

func testPackUpgrade(t *testing.T, file, added string) {
	ctx := context.Background()
	pool := enginetest.NewPool(t)
	src, err := os.ReadFile("../../rules/testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	v1, err := rules.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	var admin string
	if err := pool.QueryRow(ctx, `INSERT INTO users (id, name, role, org_id) VALUES (gen_random_uuid(), 'Admin', 'admin', '00000000-0000-0000-0000-000000000001') RETURNING id`).Scan(&admin); err != nil {
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
	// Org B overrides bp-crisis (which the upgrade changes) and disables
	// the rule the upgrade adds, before it exists in the default pack.
	orgB := uuid.New()
	if _, err := pool.Exec(ctx, `INSERT INTO organisations (id, name, slug) VALUES ($1, 'Clinic B', 'clinic-b')`, orgB); err != nil {
		t.Fatal(err)
	}
	var adminB string
	if err := pool.QueryRow(ctx, `INSERT INTO users (id, name, role, org_id) VALUES (gen_random_uuid(), 'Admin B', 'admin', $1) RETURNING id`, orgB).Scan(&adminB); err != nil {
		t.Fatal(err)
	}
	overrides := map[string]string{
		"bp-crisis": `{"title": "BP crisis (clinic B)", "kind": "blood_pressure", "when": "systolic >= params.systolic_max",
			"params": {"systolic_max": 170}, "urgency": "critical"}`,
		added: `{"title": "Clinic B's own", "kind": "heart_rate", "when": "value > 200.0", "urgency": "low"}`,
	}
	for id, def := range overrides {
		if _, err := pool.Exec(ctx, `INSERT INTO rule_versions (rule_id, version, definition, enabled, created_by, org_id) VALUES ($1, 2, $2, false, $3, $4)`,
			id, def, adminB, orgB); err != nil {
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
		if err := pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM rule_versions WHERE rule_id = $1 AND org_id IS NULL`, id).Scan(&v); err != nil {
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
	if v := version(added); v != 1 {
		t.Errorf("%s, new in the pack, is at version %d, want 1", added, v)
	}
	var def []byte
	if err := pool.QueryRow(ctx, `SELECT definition FROM rule_versions WHERE rule_id = 'bp-crisis' AND org_id IS NULL ORDER BY version DESC LIMIT 1`).Scan(&def); err != nil {
		t.Fatal(err)
	}
	var got rules.Rule
	if err := json.Unmarshal(def, &got); err != nil {
		t.Fatal(err)
	}
	want, _ := mustDefaultRule(t, "bp-crisis")
	if got.Params["systolic_now"] != want.Params["systolic_now"] || got.Retake == nil || got.Retake.Confirm != want.Retake.Confirm {
		t.Errorf("bp-crisis after the upgrade: %s", def)
	}
	var pack int
	if err := pool.QueryRow(ctx, `SELECT max(version) FROM rule_pack_versions`).Scan(&pack); err != nil {
		t.Fatal(err)
	}
	if pack != rules.DefaultPackVersion {
		t.Errorf("rule_pack_versions at %d, want %d", pack, rules.DefaultPackVersion)
	}
	var audits int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_entries WHERE action = 'rule.pack_upgrade'`).Scan(&audits); err != nil {
		t.Fatal(err)
	}
	if audits != 1 {
		t.Errorf("%d rule.pack_upgrade audit entries, want 1", audits)
	}

	// Org B keeps its edits; an organisation without any gets the upgrade.
	eng, err := engine.New(engine.Config{Pool: pool, RulesRefresh: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = eng.Stop(ctx) }()
	if r, ok := eng.RulesFor(orgB).Rule("bp-crisis"); !ok || r.Title != "BP crisis (clinic B)" || r.IsEnabled() {
		t.Errorf("org B's bp-crisis after the upgrade = %+v, want its own disabled override", r)
	}
	if r, ok := eng.RulesFor(orgB).Rule(added); !ok || r.Title != "Clinic B's own" {
		t.Errorf("org B's %s after the upgrade = %+v, want its own", added, r)
	}
	if r, ok := eng.RulesFor(uuid.New()).Rule("bp-crisis"); !ok || r.Params["systolic_now"] != want.Params["systolic_now"] || r.Version != 2 {
		t.Errorf("bp-crisis of an organisation without overrides = %+v, want the upgraded default", r)
	}
	var kept int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM rule_versions WHERE org_id = $1`, orgB).Scan(&kept); err != nil || kept != 2 {
		t.Errorf("org B has %d rule versions after the upgrade, want its 2 untouched (%v)", kept, err)
	}
}

// mustDefaultRule returns a rule of the shipped default pack.
func mustDefaultRule(t *testing.T, id string) (rules.Rule, bool) {
	t.Helper()
	p, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	return p.Rule(id)
}
