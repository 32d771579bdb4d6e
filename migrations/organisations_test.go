package migrations_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
)

// TestOrganisationsMigration: migration 00025 moves an existing database
// into the default organisation — teams, patients, users, memberships and
// audit entries — with every audit hash still valid; it refuses to go down
// while a second organisation exists, and goes down and up cleanly without
// one.
func TestOrganisationsMigration(t *testing.T) {
	ctx := context.Background()
	pool, p := migrated(t)
	if _, err := p.DownTo(ctx, 24); err != nil {
		t.Fatalf("down to 24: %v", err)
	}
	team, patient, nurse, pu := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO care_teams (id, name) VALUES ($1, 'Heart failure')`, []any{team}},
		{`INSERT INTO patients (id, display_name, timezone, care_team_id) VALUES ($1, 'P', 'UTC', $2)`, []any{patient, team}},
		{`INSERT INTO users (id, name, role) VALUES ($1, 'Nurse', 'clinician')`, []any{nurse}},
		{`INSERT INTO users (id, name, role, patient_id) VALUES ($1, 'P', 'patient', $2)`, []any{pu, patient}},
		{`INSERT INTO care_team_members (care_team_id, user_id, role) VALUES ($1, $2, 'clinician')`, []any{team, nurse}},
		{`INSERT INTO audit_entries (actor_role, action, object_type, object_id) SELECT 'admin', 'patient.read', 'patient', g::text FROM generate_series(1, 4) g`, nil},
	} {
		if _, err := pool.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	seal := func() {
		t.Helper()
		if _, err := pool.Exec(ctx, `SELECT tend_audit_seal(100)`); err != nil {
			t.Fatal(err)
		}
	}
	seal()
	if _, err := p.UpTo(ctx, 25); err != nil {
		t.Fatalf("up to 25: %v", err)
	}
	const def = "00000000-0000-0000-0000-000000000001"
	for _, table := range []string{"care_teams", "patients", "users", "care_team_members", "audit_entries"} {
		var outside int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+table+` WHERE org_id IS DISTINCT FROM $1`, def).Scan(&outside); err != nil || outside != 0 {
			t.Fatalf("%s: %d rows outside the default organisation, %v", table, outside, err)
		}
	}
	verify(t, pool, 4, 0)

	// A second organisation: a team of its own cannot take the first's
	// clinician, and its audit entries are chained with their organisation.
	other, otherTeam := uuid.New(), uuid.New()
	if _, err := pool.Exec(ctx, `INSERT INTO organisations (id, name, slug) VALUES ($1, 'Other', 'other')`, other); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO care_teams (id, name, org_id) VALUES ($1, 'COPD', $2)`, otherTeam, other); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO care_team_members (care_team_id, user_id, role, org_id) VALUES ($1, $2, 'clinician', $3)`, otherTeam, nurse, other); err == nil {
		t.Fatal("a clinician of the default organisation joined another organisation's team")
	}
	if _, err := pool.Exec(ctx, `INSERT INTO patients (id, display_name, timezone, care_team_id, org_id) VALUES ($1, 'Q', 'UTC', $2, $3)`, uuid.New(), team, other); err == nil {
		t.Fatal("a patient of another organisation was put on the default organisation's team")
	}
	if _, err := pool.Exec(ctx, `INSERT INTO audit_entries (actor_role, action, object_type, org_id) VALUES ('admin', 'team.create', 'care_team', $1)`, other); err != nil {
		t.Fatal(err)
	}
	seal()
	verify(t, pool, 5, 0)
	if _, err := p.DownTo(ctx, 24); err == nil {
		t.Fatal("went down with a second organisation")
	}
	// An audit entry outside the default organisation never goes, and going
	// down would break its hash: so going down needs a database without one.
	pool, p = migrated(t)
	if _, err := p.DownTo(ctx, 24); err != nil {
		t.Fatalf("down to 24 (fresh): %v", err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("up: %v", err)
	}
	if _, err := p.DownTo(ctx, 24); err != nil {
		t.Fatalf("down to 24 again: %v", err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("up again: %v", err)
	}
}
