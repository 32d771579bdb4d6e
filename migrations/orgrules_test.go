package migrations_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
)

// TestOrgRulesMigration: migration 00027 moves the rule versions admins
// wrote before organisations (from a rule's first such version on) to the
// default organisation, leaving the default pack Tend's own; it refuses to
// go down while another organisation has overrides, and going down puts the
// default organisation's versions back into the one pack as the latest
// versions of their rules.
func TestOrgRulesMigration(t *testing.T) {
	ctx := context.Background()
	pool, p := migrated(t)
	if _, err := p.DownTo(ctx, 26); err != nil {
		t.Fatalf("down to 26: %v", err)
	}
	const def = "00000000-0000-0000-0000-000000000001"
	admin := uuid.New()
	if _, err := pool.Exec(ctx, `INSERT INTO users (id, name, role, org_id) VALUES ($1, 'Admin', 'admin', $2)`, admin, def); err != nil {
		t.Fatal(err)
	}
	for _, v := range []struct {
		rule    string
		version int
		by      *uuid.UUID
	}{
		{"bp-crisis", 1, nil}, {"bp-crisis", 2, &admin}, {"bp-crisis", 3, &admin},
		{"hr-high", 1, nil}, {"hr-high", 2, nil},
		{"own-rule", 1, &admin}, {"own-rule", 2, &admin},
	} {
		if _, err := pool.Exec(ctx, `INSERT INTO rule_versions (rule_id, version, definition, enabled, created_by) VALUES ($1, $2, '{}', true, $3)`,
			v.rule, v.version, v.by); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.UpTo(ctx, 27); err != nil {
		t.Fatalf("up to 27: %v", err)
	}
	where := func() map[string]int {
		t.Helper()
		rows, err := pool.Query(ctx, `SELECT rule_id || '@' || version || ':' || coalesce(org_id::text, 'default pack') FROM rule_versions`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]int{}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				t.Fatal(err)
			}
			out[k]++
		}
		return out
	}
	got := where()
	for _, k := range []string{"bp-crisis@1:default pack", "bp-crisis@2:" + def, "bp-crisis@3:" + def,
		"hr-high@1:default pack", "hr-high@2:default pack", "own-rule@1:" + def, "own-rule@2:" + def} {
		if got[k] != 1 {
			t.Errorf("after 00027: %s missing; have %v", k, got)
		}
	}

	// Tend upgrades the default pack's bp-crisis past the override's
	// numbers; another organisation overrides hr-high.
	if _, err := pool.Exec(ctx, `INSERT INTO rule_versions (rule_id, version, definition, enabled) VALUES ('bp-crisis', 2, '{}', true), ('bp-crisis', 3, '{}', true)`); err != nil {
		t.Fatalf("the default pack's own versions 2 and 3 beside the default organisation's: %v", err)
	}
	other := uuid.New()
	if _, err := pool.Exec(ctx, `INSERT INTO organisations (id, name, slug) VALUES ($1, 'Other', 'other')`, other); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO rule_versions (rule_id, version, definition, enabled, org_id) VALUES ('hr-high', 3, '{}', false, $1)`, other); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO rule_versions (rule_id, version, definition, enabled, org_id, created_by) VALUES ('hr-high', 4, '{}', false, $1, $2)`, other, admin); err == nil {
		t.Error("an override was written by an admin of another organisation")
	}
	if _, err := p.DownTo(ctx, 26); err == nil {
		t.Fatal("went down with another organisation's overrides")
	}
	if _, err := pool.Exec(ctx, `DELETE FROM rule_versions WHERE org_id = $1`, other); err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 26); err != nil {
		t.Fatalf("down to 26: %v", err)
	}
	var latestBy *uuid.UUID
	var latest, n int
	if err := pool.QueryRow(ctx, `SELECT version, created_by, (SELECT count(*) FROM rule_versions WHERE rule_id = 'bp-crisis')
		FROM rule_versions WHERE rule_id = 'bp-crisis' ORDER BY version DESC LIMIT 1`).Scan(&latest, &latestBy, &n); err != nil {
		t.Fatal(err)
	}
	if latest != 5 || latestBy == nil || *latestBy != admin || n != 5 {
		t.Errorf("bp-crisis after going down: latest version %d by %v of %d; want the admin's edit as version 5 of 5", latest, latestBy, n)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM rule_versions WHERE rule_id = 'own-rule' AND version IN (1, 2)`).Scan(&n); err != nil || n != 2 {
		t.Errorf("own-rule after going down: %d of versions 1 and 2, %v", n, err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO rule_versions (rule_id, version, definition, enabled) VALUES ('own-rule', 2, '{}', true)`); err == nil {
		t.Error("the primary key (rule_id, version) is not back")
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("up again: %v", err)
	}
}
