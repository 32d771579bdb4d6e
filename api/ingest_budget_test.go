package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// readingAllocs is the budget of allocations for one single reading posted
// through the HTTP handler — authentication (cached), decoding, validation,
// the group commit and the response — counted in the whole process. A change
// that needs more raises it in a commit of its own, with the measured figure
// in its message. Measured: 242 (303 before the engine encoded its arrays in one pass).
const readingAllocs = 280

// TestIngestBudgetAllocs posts single readings through the API's handler
// (no network, no contract check) and holds their allocations to
// readingAllocs with testing.AllocsPerRun.
func TestIngestBudgetAllocs(t *testing.T) {
	eng, err := engine.New(engine.Config{Pool: enginetest.NewPool(t), Keys: testKeys(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	admin := engine.System("test")
	team, err := eng.CreateCareTeam(ctx, admin, engine.NewCareTeam{Name: "Budget"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := eng.CreatePatient(ctx, admin, engine.NewPatient{DisplayName: "P", Timezone: "UTC", CareTeamID: team.ID,
		Programs: []string{"hypertension"}})
	if err != nil {
		t.Fatal(err)
	}
	u, err := eng.CreateUser(ctx, admin, engine.NewUser{Name: "cuff", Role: engine.RoleDevice, PatientID: p.ID})
	if err != nil {
		t.Fatal(err)
	}
	token, err := eng.CreateToken(ctx, admin, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	const runs = 200
	bodies := make([]string, runs+2)
	at := time.Now().UTC().Add(-time.Hour)
	for i := range bodies {
		bodies[i] = fmt.Sprintf(`{"kind":"blood_pressure","systolic":118,"diastolic":76,"unit":"mm[Hg]","observed_at":%q}`,
			at.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano))
	}
	path := "/v1/patients/" + p.ID.String() + "/readings"
	post := func(body string) int {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		return rec.Code
	}
	if code := post(bodies[runs+1]); code != http.StatusCreated { // warm: the partition, the token cache, statements
		t.Fatalf("post reading: %d", code)
	}
	i := 0
	allocs := testing.AllocsPerRun(runs, func() {
		if code := post(bodies[i]); code != http.StatusCreated {
			t.Fatalf("post reading: %d", code)
		}
		i++
	})
	if allocs > readingAllocs {
		t.Errorf("%.0f allocations per reading through the handler, budget %d", allocs, readingAllocs)
	}
	t.Logf("%.0f allocations per reading through the handler", allocs)
}
