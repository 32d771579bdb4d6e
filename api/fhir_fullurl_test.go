package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// TestFHIRFullURLsAreAbsolute: a transaction response's and a searchset's
// entries carry fullUrl as an absolute URL (R4), the same one for the same
// resource: under the configured public URL, else under the request's
// scheme and Host.
func TestFHIRFullURLsAreAbsolute(t *testing.T) {
	t.Parallel()
	pool := enginetest.NewPool(t)
	eng, err := engine.New(engine.Config{Pool: pool, Keys: testKeys(t)})
	if err != nil {
		t.Fatal(err)
	}
	configured, err := api.New(api.Config{Engine: eng, PublicURL: "https://tend.example.org/"})
	if err != nil {
		t.Fatal(err)
	}
	derived, err := api.New(api.Config{Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	adm, err := eng.CreateUser(ctx, engine.System("test"), engine.NewUser{Name: "Admin", Role: engine.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := eng.CreateToken(ctx, engine.System("test"), adm.ID)
	if err != nil {
		t.Fatal(err)
	}
	hsConfigured, hsDerived := httptest.NewServer(configured), httptest.NewServer(derived)
	t.Cleanup(hsConfigured.Close)
	t.Cleanup(hsDerived.Close)
	s := &setup{admin: client{t: t, base: hsConfigured.URL, token: tok}, eng: eng}
	s.clinician = s.admin.as(s.userToken(t, map[string]any{"name": "Dr Ada Osei", "role": "clinician"}))
	var team, patient struct{ ID string }
	s.admin.do("POST", "/v1/care-teams", map[string]any{"name": "Cardiology RPM", "member_ids": []string{s.lastUserID}}).decode(t, &team)
	s.clinician.do("POST", "/v1/patients", map[string]any{"display_name": "Sam Lee", "timezone": "America/Chicago",
		"care_team_id": team.ID, "programs": []string{"hypertension"}}).decode(t, &patient)
	for _, c := range []struct{ base, want string }{
		{hsConfigured.URL, "https://tend.example.org/fhir/r4/Observation/"},
		{hsDerived.URL, hsDerived.URL + "/fhir/r4/Observation/"},
	} {
		cl := s.clinician
		cl.base = c.base
		obs := obsJSON(ref(patient.ID), "8867-4", `"valueQuantity":{"value":72,"unit":"/min"}`, time.Now().UTC().Format(time.RFC3339))
		var out struct {
			Entry []struct {
				FullURL  string `json:"fullUrl"`
				Resource struct{ ID string }
				Response struct{ Location string }
			}
		}
		r := cl.do("POST", "/fhir/r4", bundleJSON("transaction", obs))
		r.decode(t, &out)
		if r.status != http.StatusOK || len(out.Entry) != 1 || out.Entry[0].FullURL != c.want+out.Entry[0].Resource.ID ||
			!strings.HasPrefix(out.Entry[0].Response.Location, "Observation/") {
			t.Fatalf("transaction at %s: %d %s", c.base, r.status, r.body)
		}
		id := out.Entry[0].Resource.ID
		r = cl.do("GET", "/fhir/r4/Observation?patient="+patient.ID+"&_count=500", nil)
		r.decode(t, &out)
		found := false
		for _, e := range out.Entry {
			found = found || e.Resource.ID == id && e.FullURL == c.want+id
		}
		if r.status != http.StatusOK || !found {
			t.Errorf("searchset at %s lacks fullUrl %s: %s", c.base, c.want+id, r.body)
		}
	}
	if _, err := api.New(api.Config{PublicURL: "tend.example.org"}); err == nil {
		t.Error("a public URL without a scheme was accepted")
	}
}
