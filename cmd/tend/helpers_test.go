package main

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
)

// teamWithPatient creates, as the system, a care team named team (with a
// clinician named clinician as its member, unless clinician is empty) and a
// patient named patient in it, in UTC. It returns the clinician as an
// actor (zero without one) and the patient.
func teamWithPatient(tb testing.TB, ctx context.Context, eng *engine.Engine, team, clinician, patient string) (engine.Actor, engine.Patient) {
	tb.Helper()
	sys := engine.System("test")
	var doc engine.Actor
	var members []uuid.UUID
	if clinician != "" {
		u, err := eng.CreateUser(ctx, sys, engine.NewUser{Name: clinician, Role: engine.RoleClinician})
		if err != nil {
			tb.Fatal(err)
		}
		doc = engine.Actor{UserID: u.ID, Role: engine.RoleClinician}
		members = []uuid.UUID{u.ID}
	}
	tm, err := eng.CreateCareTeam(ctx, sys, engine.NewCareTeam{Name: team, MemberIDs: members})
	if err != nil {
		tb.Fatal(err)
	}
	p, err := eng.CreatePatient(ctx, sys, engine.NewPatient{DisplayName: patient, Timezone: "UTC", CareTeamID: tm.ID})
	if err != nil {
		tb.Fatal(err)
	}
	return doc, p
}
