package alerting_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rpm"
)

// An open alert that fires again pages again only once its repeat interval
// has passed: the urgency's default (15 minutes for critical), or the one
// its care team sets.
func TestRepeatIntervalPerTeam(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		policy *engine.EscalationInput
		want   int
	}{
		{"default", nil, 1},
		{"team sets 1m", &engine.EscalationInput{RepeatIntervals: map[string]string{"critical": "1m"}}, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := enginetest.NewWorld(t, false)
			ctx := context.Background()
			eng, clk := w.NewClockedEngine(t, time.Time{}, engine.Config{})
			team, err := eng.CreateCareTeam(ctx, w.Admin, engine.NewCareTeam{Name: "Repeat", MemberIDs: []uuid.UUID{w.Clinician.UserID}, Escalation: c.policy})
			if err != nil {
				t.Fatal(err)
			}
			p, err := eng.CreatePatient(ctx, w.Admin, engine.NewPatient{DisplayName: "Lee", Timezone: "UTC", CareTeamID: team.ID})
			if err != nil {
				t.Fatal(err)
			}
			dev := engine.Actor{UserID: w.Clinician.UserID, Role: engine.RoleClinician, RequestID: "test"}
			t0 := clk.Now()
			post := func(sys float64, at time.Time) engine.IngestResult {
				res, err := eng.Ingest(ctx, dev, engine.IngestRequest{PatientID: p.ID, Readings: []rpm.Reading{enginetest.BP(sys, 90, at, "")}})
				if err != nil {
					t.Fatal(err)
				}
				return res
			}
			first := post(245, t0.Add(-time.Minute)) // past the hard limit: pages at once
			clk.Set(t0.Add(2 * time.Minute))
			post(130, t0.Add(time.Minute))    // back to normal: the rule re-arms
			post(246, t0.Add(90*time.Second)) // fires again on the still-open alert
			if n := notifiedCount(t, w, first.Alerts[0].ID, w.Clinician.UserID); n != c.want {
				t.Errorf("the clinician was paged %d times, want %d", n, c.want)
			}
		})
	}
}
