package enginetest

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
)

// Org is another organisation on a World's database: its admin, a clinician
// on its care team, and a patient of that team with a device user.
type Org struct {
	ID        uuid.UUID
	Admin     engine.Actor
	Clinician engine.Actor
	Patient   engine.Patient
	Device    engine.Actor
}

// NewOrg inserts an organisation with slug and its first admin (by SQL, as
// an operator would create them), then creates the rest through the
// engine as that admin: a clinician, a care team, and a patient in programs
// with a device user.
func NewOrg(t testing.TB, w *World, slug string, programs ...string) Org {
	t.Helper()
	ctx := context.Background()
	o := Org{ID: uuid.New()}
	admin := uuid.New()
	if _, err := w.Pool.Exec(ctx, `INSERT INTO organisations (id, name, slug) VALUES ($1, $2, $2)`, o.ID, slug); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Pool.Exec(ctx, `INSERT INTO users (id, name, role, org_id) VALUES ($1, 'Admin', 'admin', $2)`, admin, o.ID); err != nil {
		t.Fatal(err)
	}
	o.Admin = engine.Actor{UserID: admin, Role: engine.RoleAdmin, OrgID: o.ID, RequestID: "test"}
	doc, err := w.Eng.CreateUser(ctx, o.Admin, engine.NewUser{Name: "Dr Lin Hale", Role: engine.RoleClinician})
	if err != nil {
		t.Fatal(err)
	}
	o.Clinician = engine.Actor{UserID: doc.ID, Role: engine.RoleClinician, OrgID: o.ID, RequestID: "test"}
	team, err := w.Eng.CreateCareTeam(ctx, o.Admin, engine.NewCareTeam{Name: "Remote care", MemberIDs: []uuid.UUID{doc.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if programs == nil {
		programs = []string{"hypertension"}
	}
	o.Patient, err = w.Eng.CreatePatient(ctx, o.Clinician, engine.NewPatient{DisplayName: "Kim Ray", Timezone: "UTC",
		CareTeamID: team.ID, Programs: programs})
	if err != nil {
		t.Fatal(err)
	}
	dev, err := w.Eng.CreateUser(ctx, o.Admin, engine.NewUser{Name: "cuff-12", Role: engine.RoleDevice, PatientID: o.Patient.ID})
	if err != nil {
		t.Fatal(err)
	}
	o.Device = engine.Actor{UserID: dev.ID, Role: engine.RoleDevice, PatientID: o.Patient.ID, OrgID: o.ID, RequestID: "test"}
	return o
}

// DefaultOrgAdmin creates an admin user of the default organisation (w's).
func DefaultOrgAdmin(t testing.TB, w *World) engine.Actor {
	t.Helper()
	u, err := w.Eng.CreateUser(context.Background(), w.Admin, engine.NewUser{Name: "Admin Ana", Role: engine.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	return engine.Actor{UserID: u.ID, Role: engine.RoleAdmin, OrgID: uuid.MustParse("00000000-0000-0000-0000-000000000001"), RequestID: "test"}
}
