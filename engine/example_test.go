package engine_test

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rpm"
)

// An ingest that raises an alert: the reading, the alert and the job that
// will push it to the clinician's phone commit in one transaction, so the
// push is queued by the time Ingest returns.
func Example() {
	ctx := context.Background()
	pool, cleanup, err := enginetest.Open()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cleanup()
	eng, err := engine.New(engine.Config{Pool: pool})
	if err != nil {
		fmt.Println(err)
		return
	}
	admin := engine.System("example")

	// A clinician with a phone, a care team and a patient with a cuff.
	doc, _ := eng.CreateUser(ctx, admin, engine.NewUser{Name: "Dr Ada Osei", Role: engine.RoleClinician})
	team, _ := eng.CreateCareTeam(ctx, admin, engine.NewCareTeam{Name: "Cardiology", MemberIDs: []uuid.UUID{doc.ID}})
	patient, _ := eng.CreatePatient(ctx, admin, engine.NewPatient{DisplayName: "Sam Lee", Timezone: "America/Chicago",
		CareTeamID: team.ID, Programs: []string{"hypertension"}})
	cuff, _ := eng.CreateUser(ctx, admin, engine.NewUser{Name: "cuff", Role: engine.RoleDevice, PatientID: patient.ID})
	phone := engine.Actor{UserID: doc.ID, Role: engine.RoleClinician}
	if _, _, err := eng.RegisterDevice(ctx, phone, engine.NewDevice{Platform: "fcm", Token: "fcm-token-of-the-phone"}); err != nil {
		fmt.Println(err)
		return
	}

	// The cuff posts a reading in the crisis range.
	sys, dia := 200.0, 130.0
	res, err := eng.Ingest(ctx, engine.Actor{UserID: cuff.ID, Role: engine.RoleDevice, PatientID: patient.ID},
		engine.IngestRequest{PatientID: patient.ID, Readings: []rpm.Reading{{Kind: rpm.BloodPressure, Systolic: &sys,
			Diastolic: &dia, Unit: "mm[Hg]", ObservedAt: time.Now().Add(-time.Minute)}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Readings[0].Status, res.Alerts[0].RuleID, res.Alerts[0].Urgency)

	// Its push is already queued, in the same transaction as the alert.
	var jobs int
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'notify.deliver'`).Scan(&jobs)
	fmt.Println("push jobs queued:", jobs)
	// Output:
	// created bp-crisis critical
	// push jobs queued: 1
}
