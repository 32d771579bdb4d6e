package api_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
)

// orgRuleJSON is a rule with the fields of per-organisation overrides.
type orgRuleJSON struct {
	ID             string  `json:"id"`
	Version        int     `json:"version"`
	OrgID          *string `json:"org_id"`
	Overridden     bool    `json:"overridden"`
	DefaultVersion *int    `json:"default_version"`
}

// An organisation's admin overrides a rule of the default pack and creates
// one of their own: the other organisation keeps the default pack's rule,
// and gets a 404 for the rule it does not have, reading or changing it.
func TestRulesPerOrganisationAPI(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	ctx := context.Background()
	orgB, adminB := uuid.New(), uuid.New()
	if _, err := s.pool.Exec(ctx, `INSERT INTO organisations (id, name, slug) VALUES ($1, 'Clinic B', 'clinic-b')`, orgB); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO users (id, name, role, org_id) VALUES ($1, 'Admin B', 'admin', $2)`, adminB, orgB); err != nil {
		t.Fatal(err)
	}
	tok, err := s.eng.CreateToken(ctx, engine.System("test"), adminB)
	if err != nil {
		t.Fatal(err)
	}
	b := s.admin.as(tok)

	var one orgRuleJSON
	r := b.do("PUT", "/v1/rules/bp-crisis", map[string]any{"enabled": false})
	r.decode(t, &one)
	if r.status != http.StatusOK || one.Version != 2 || one.OrgID == nil || *one.OrgID != orgB.String() || !one.Overridden ||
		one.DefaultVersion == nil || *one.DefaultVersion != 1 {
		t.Fatalf("org B's override: %d %s", r.status, r.body)
	}
	r = s.admin.do("GET", "/v1/rules/bp-crisis", nil)
	r.decode(t, &one)
	if r.status != http.StatusOK || one.Version != 1 || one.OrgID != nil || one.Overridden {
		t.Errorf("the default organisation's bp-crisis: %d %s", r.status, r.body)
	}

	rule := map[string]any{"id": "temp-high-fever", "title": "High fever", "kind": "body_temperature",
		"when": "value >= params.max", "params": map[string]any{"max": 39.5}, "urgency": "high"}
	if r = b.do("POST", "/v1/rules", rule); r.status != http.StatusCreated {
		t.Fatalf("org B's own rule: %d %s", r.status, r.body)
	}
	wantProblem(t, s.admin.do("GET", "/v1/rules/temp-high-fever", nil), http.StatusNotFound)
	wantProblem(t, s.clinician.do("GET", "/v1/rules/temp-high-fever", nil), http.StatusNotFound)
	wantProblem(t, s.admin.do("PUT", "/v1/rules/temp-high-fever", map[string]any{"enabled": false}), http.StatusNotFound)

	list := func(c client) map[string]orgRuleJSON {
		t.Helper()
		var l struct{ Items []orgRuleJSON }
		r := c.do("GET", "/v1/rules", nil)
		r.decode(t, &l)
		if r.status != http.StatusOK {
			t.Fatalf("list: %d %s", r.status, r.body)
		}
		out := map[string]orgRuleJSON{}
		for _, x := range l.Items {
			out[x.ID] = x
		}
		return out
	}
	mine, theirs := list(b), list(s.admin)
	if x := mine["bp-crisis"]; !x.Overridden || x.Version != 2 {
		t.Errorf("org B lists bp-crisis as %+v", x)
	}
	if x, ok := mine["temp-high-fever"]; !ok || x.Overridden || x.DefaultVersion != nil || x.OrgID == nil {
		t.Errorf("org B lists its own rule as %+v (listed %v)", x, ok)
	}
	if x := theirs["bp-crisis"]; x.Overridden || x.Version != 1 || x.OrgID != nil {
		t.Errorf("the default organisation lists bp-crisis as %+v", x)
	}
	if _, ok := theirs["temp-high-fever"]; ok {
		t.Error("the default organisation lists org B's rule")
	}
}
