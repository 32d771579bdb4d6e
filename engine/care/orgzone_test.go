package care_test

import (
	"context"
	"testing"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// TestTeamZoneDefaultsToOrganisation: a team created without a time zone
// takes its organisation's; one that names its own keeps it.
func TestTeamZoneDefaultsToOrganisation(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	if _, err := w.Pool.Exec(ctx, `UPDATE organisations SET timezone = 'Europe/London' WHERE id = $1`, w.Admin.HomeOrg()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ given, want string }{{"", "Europe/London"}, {"Asia/Tokyo", "Asia/Tokyo"}} {
		team, err := w.Eng.CreateCareTeam(ctx, w.Admin, engine.NewCareTeam{Name: "Night team", Timezone: c.given})
		if err != nil {
			t.Fatal(err)
		}
		var stored string
		if err := w.Pool.QueryRow(ctx, `SELECT timezone FROM care_teams WHERE id = $1`, team.ID).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if team.Timezone != c.want || stored != c.want {
			t.Errorf("team created with zone %q: returned %q, stored %q; want %q", c.given, team.Timezone, stored, c.want)
		}
	}
}
