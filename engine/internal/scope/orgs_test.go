package scope

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/internal/pgtest"
)

// TestAdminsSeeTheirOrganisationOnly: every rule that lets an admin see an
// object (patients, teams, events — in SQL and in SeesEvent for the live
// stream) lets an admin see their own organisation's objects and no
// other's; Tend itself (System) sees both.
func TestAdminsSeeTheirOrganisationOnly(t *testing.T) {
	pool := pgtest.NewPool(t)
	ctx := context.Background()
	orgA, orgB := access.DefaultOrgID(), uuid.New()
	type world struct{ admin, team, patient uuid.UUID }
	worlds := map[uuid.UUID]world{}
	if _, err := pool.Exec(ctx, `INSERT INTO organisations (id, name, slug) VALUES ($1, 'B', 'b')`, orgB); err != nil {
		t.Fatal(err)
	}
	for _, org := range []uuid.UUID{orgA, orgB} {
		w := world{uuid.New(), uuid.New(), uuid.New()}
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO users (id, name, role, org_id) VALUES ($1, 'Admin', 'admin', $2)`, []any{w.admin, org}},
			{`INSERT INTO care_teams (id, name, org_id) VALUES ($1, 'Team', $2)`, []any{w.team, org}},
			{`INSERT INTO patients (id, display_name, timezone, care_team_id, org_id) VALUES ($1, 'P', 'UTC', $2, $3)`, []any{w.patient, w.team, org}},
			{`INSERT INTO events (at, type, care_team_id, patient_id) VALUES (now(), 'alert.created', $1, $2)`, []any{w.team, w.patient}},
		} {
			if _, err := pool.Exec(ctx, q.sql, q.args...); err != nil {
				t.Fatalf("%s: %v", q.sql, err)
			}
		}
		worlds[org] = w
	}
	sees := func(a access.Actor, w world) (patient, team, event bool) {
		t.Helper()
		err := pool.QueryRow(ctx, `SELECT
			EXISTS (SELECT 1 FROM patients p WHERE p.id = $4 AND `+PatientSQL("p", "$1", "$2", "$3")+`),
			EXISTS (SELECT 1 FROM care_teams t WHERE t.id = $5 AND `+TeamSQL("t.id", "$1", "$3")+`),
			EXISTS (SELECT 1 FROM events e WHERE e.patient_id = $4 AND `+EventSQL("e", "$1", "$2", "$3", "$6")+`)`,
			a.Role, a.PatientID, a.UserID, w.patient, w.team, PatientVisibleEvents()).Scan(&patient, &team, &event)
		if err != nil {
			t.Fatal(err)
		}
		return patient, team, event
	}
	for _, own := range []uuid.UUID{orgA, orgB} {
		admin := access.Actor{UserID: worlds[own].admin, Role: access.RoleAdmin, OrgID: own}
		for org, w := range worlds {
			p, tm, ev := sees(admin, w)
			live := SeesEvent(admin, "alert.created", org, w.patient, nil)
			want := org == own
			if p != want || tm != want || ev != want || live != want {
				t.Errorf("admin of %s on organisation %s's objects: patient %v, team %v, event %v, live %v; want %v",
					own, org, p, tm, ev, live, want)
			}
		}
	}
	system := access.System("test")
	for org, w := range worlds {
		if p, tm, ev := sees(system, w); !p || !tm || !ev || !SeesEvent(system, "alert.created", org, w.patient, nil) {
			t.Errorf("Tend itself on organisation %s's objects: patient %v, team %v, event %v", org, p, tm, ev)
		}
	}
	// An operator is no admin: nothing.
	op := access.Actor{UserID: uuid.New(), Role: access.RoleSuperAdmin}
	for org, w := range worlds {
		if p, tm, ev := sees(op, w); p || tm || ev || SeesEvent(op, "alert.created", org, w.patient, nil) {
			t.Errorf("an operator sees organisation %s's objects", org)
		}
	}
}
