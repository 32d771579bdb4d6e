package api_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/e2ee"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// userIn creates a user as admin and returns its id and a token.
func userIn(t *testing.T, admin client, body map[string]any) (id, token string) {
	t.Helper()
	r := admin.do("POST", "/v1/users", body)
	var u struct{ ID string }
	r.decode(t, &u)
	if r.status != http.StatusCreated {
		t.Fatalf("user: %d %s", r.status, r.body)
	}
	var tok struct{ Token string }
	admin.do("POST", "/v1/users/"+u.ID+"/tokens", map[string]any{}).decode(t, &tok)
	return u.ID, tok.Token
}

// testLogo is a small PNG.
func testLogo(t testing.TB) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for x := range 16 {
		for y := range 16 {
			img.Set(x, y, color.RGBA{R: 11, G: 83, B: 148, A: 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestOrganisations: an operator creates an organisation and its first
// admin, who changes its settings and logo; everyone of the organisation
// reads it (GET /v1/me carries its branding), nobody of another one does;
// bad input names its field and changes nothing.
func TestOrganisations(t *testing.T) {
	t.Parallel()
	pool := enginetest.NewPool(t)
	serverRecord, err := e2ee.GenerateDeviceKeys()
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Config{Pool: pool, Keys: testKeys(t), RecordPublicKey: serverRecord.HPKEPublic})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Engine: eng, RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	hs := ts.URL
	ctx := context.Background()
	sys := engine.System("test")
	op, err := eng.CreateUser(ctx, sys, engine.NewUser{Name: "Operator", Role: engine.RoleSuperAdmin})
	if err != nil {
		t.Fatal(err)
	}
	opTok, err := eng.CreateToken(ctx, sys, op.ID)
	if err != nil {
		t.Fatal(err)
	}
	operator := client{t: t, base: hs, token: opTok}
	home := client{t: t, base: hs, token: adminToken(t, eng)}

	// Only an operator creates organisations.
	if r := home.do("POST", "/v1/organisations", map[string]any{"name": "Mine", "slug": "mine"}); r.status != http.StatusForbidden {
		t.Errorf("an admin created an organisation: %d", r.status)
	}
	r := operator.do("POST", "/v1/organisations", map[string]any{"name": "Northside Heart Clinic", "slug": "northside"})
	var org engine.Organisation
	r.decode(t, &org)
	if r.status != http.StatusCreated || org.Timezone != "UTC" || org.Branding.Name != "Northside Heart Clinic" || org.QuietHours != nil {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	wantProblem(t, operator.do("POST", "/v1/organisations", map[string]any{"name": "Again", "slug": "northside"}), http.StatusUnprocessableEntity, "slug")
	wantProblem(t, operator.do("POST", "/v1/organisations", map[string]any{"name": "Bad", "slug": "-bad"}), http.StatusUnprocessableEntity, "slug")
	// Its first admin, by the operator: admins only, and into a named organisation.
	wantProblem(t, operator.do("POST", "/v1/users", map[string]any{"name": "Nurse", "role": "clinician", "org_id": org.ID}), http.StatusUnprocessableEntity, "role")
	wantProblem(t, operator.do("POST", "/v1/users", map[string]any{"name": "Admin", "role": "admin"}), http.StatusUnprocessableEntity, "org_id")
	r = operator.do("POST", "/v1/users", map[string]any{"name": "North admin", "role": "admin", "org_id": org.ID})
	var adm engine.User
	r.decode(t, &adm)
	if r.status != http.StatusCreated || adm.OrgID == nil || *adm.OrgID != org.ID {
		t.Fatalf("admin: %d %s", r.status, r.body)
	}
	var tok struct{ Token string }
	operator.do("POST", "/v1/users/"+adm.ID.String()+"/tokens", map[string]any{}).decode(t, &tok)
	north := client{t: t, base: hs, token: tok.Token}
	// The home admin cannot put a user in another organisation, nor see it.
	wantProblem(t, home.do("POST", "/v1/users", map[string]any{"name": "Spy", "role": "admin", "org_id": org.ID}), http.StatusUnprocessableEntity, "org_id")
	if r := home.do("GET", "/v1/organisations/"+org.ID.String(), nil); r.status != http.StatusNotFound {
		t.Errorf("another organisation's admin read it: %d", r.status)
	}
	if r := home.do("PATCH", "/v1/organisations/"+org.ID.String(), map[string]any{"name": "Mine now"}); r.status != http.StatusNotFound {
		t.Errorf("another organisation's admin changed it: %d", r.status)
	}

	// Its admin changes its settings; null clears.
	r = north.do("PATCH", "/v1/organisations/"+org.ID.String(), map[string]any{"timezone": "Europe/London",
		"branding":    map[string]any{"name": "Northside Heart", "primary_color": "#0B5394", "accent_color": "#38761d"},
		"quiet_hours": map[string]any{"start": "21:00", "end": "07:00"},
		"retention":   map[string]any{"readings_days": 3650, "deliveries_days": 90}})
	r.decode(t, &org)
	if r.status != http.StatusOK || org.Timezone != "Europe/London" || org.Branding.Name != "Northside Heart" ||
		org.Branding.PrimaryColor != "#0b5394" || org.QuietHours == nil || org.QuietHours.Start != "21:00" ||
		org.Retention.ReadingsDays == nil || *org.Retention.ReadingsDays != 3650 || org.Retention.MessagesDays != nil {
		t.Fatalf("update: %d %s", r.status, r.body)
	}
	r = north.do("PATCH", "/v1/organisations/"+org.ID.String(), map[string]any{"quiet_hours": nil, "branding": map[string]any{"accent_color": nil},
		"retention": map[string]any{"deliveries_days": nil}})
	org = engine.Organisation{}
	r.decode(t, &org)
	if r.status != http.StatusOK || org.QuietHours != nil || org.Branding.AccentColor != "" || org.Retention.DeliveriesDays != nil ||
		org.Retention.ReadingsDays == nil || org.Branding.PrimaryColor != "#0b5394" {
		t.Fatalf("clearing: %d %s", r.status, r.body)
	}
	for field, body := range map[string]map[string]any{
		"timezone":                map[string]any{"timezone": "Mars/Base"},
		"branding.primary_color":  {"branding": map[string]any{"primary_color": "blue"}},
		"quiet_hours.start":       {"quiet_hours": map[string]any{"start": "25:00", "end": "07:00"}},
		"quiet_hours.end":         {"quiet_hours": map[string]any{"start": "07:00", "end": "07:00"}},
		"retention.messages_days": {"retention": map[string]any{"messages_days": 0}},
		"name":                    {"name": strings.Repeat("n", 300)},
	} {
		wantProblem(t, north.do("PATCH", "/v1/organisations/"+org.ID.String(), body), http.StatusUnprocessableEntity, field)
	}
	if got := north.do("GET", "/v1/organisations/"+org.ID.String(), nil); !bytes.Contains(got.body, []byte(`"Northside Heart"`)) ||
		bytes.Contains(got.body, []byte("Mars")) {
		t.Errorf("refused changes were stored: %s", got.body)
	}

	// The logo: PNG, JPEG or WebP whose bytes agree, bounded; served to
	// the organisation only.
	logoPath := "/v1/organisations/" + org.ID.String() + "/logo"
	if r := north.doWith("PUT", logoPath, "<svg onload='alert(1)'/>", map[string]string{"Content-Type": "image/svg+xml"}); r.status != http.StatusUnprocessableEntity {
		t.Errorf("an SVG logo: %d %s", r.status, r.body)
	}
	if r := north.doWith("PUT", logoPath, "not a png", map[string]string{"Content-Type": "image/png"}); r.status != http.StatusUnprocessableEntity {
		t.Errorf("a PNG that is not one: %d %s", r.status, r.body)
	}
	if r := north.doWith("PUT", logoPath, string(make([]byte, engine.MaxLogoBytes+1)), map[string]string{"Content-Type": "image/png"}); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("a logo too large: %d", r.status)
	}
	if r := north.do("GET", logoPath, nil); r.status != http.StatusNotFound {
		t.Errorf("no logo yet: %d", r.status)
	}
	logo := testLogo(t)
	r = north.doWith("PUT", logoPath, string(logo), map[string]string{"Content-Type": "image/png"})
	r.decode(t, &org)
	if r.status != http.StatusOK || !strings.HasPrefix(org.Branding.LogoURL, logoPath) {
		t.Fatalf("logo: %d %s", r.status, r.body)
	}
	if r := north.do("GET", org.Branding.LogoURL, nil); r.status != http.StatusOK || !bytes.Equal(r.body, logo) ||
		r.header.Get("Content-Type") != "image/png" || r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("GET logo: %d %q", r.status, r.header.Get("Content-Type"))
	}
	if r := home.do("GET", logoPath, nil); r.status != http.StatusNotFound {
		t.Errorf("another organisation read the logo: %d", r.status)
	}

	// Everyone of the organisation sees its branding in GET /v1/me; the
	// operator belongs to none.
	var me engine.Me
	north.do("GET", "/v1/me", nil).decode(t, &me)
	if me.Organisation == nil || me.Organisation.ID != org.ID || me.Organisation.Branding.LogoURL == "" ||
		!slices.Contains(me.Capabilities, "organisation") || slices.Contains(me.Capabilities, "jobs") {
		t.Errorf("me (admin of another organisation): %+v", me)
	}
	var hm engine.Me
	home.do("GET", "/v1/me", nil).decode(t, &hm)
	if hm.Organisation == nil || hm.Organisation.Slug != "default" || !slices.Contains(hm.Capabilities, "jobs") {
		t.Errorf("me (admin of the default organisation): %+v", hm)
	}
	var om engine.Me
	operator.do("GET", "/v1/me", nil).decode(t, &om)
	if om.Organisation != nil || !slices.Contains(om.Capabilities, "organisations") {
		t.Errorf("me (operator): %+v", om)
	}
	// Lists: an operator sees both, an admin their own.
	var list struct{ Items []engine.Organisation }
	operator.do("GET", "/v1/organisations", nil).decode(t, &list)
	if len(list.Items) != 2 {
		t.Errorf("the operator lists %d organisations", len(list.Items))
	}
	north.do("GET", "/v1/organisations", nil).decode(t, &list)
	if len(list.Items) != 1 || list.Items[0].ID != org.ID {
		t.Errorf("an admin lists %+v", list.Items)
	}
	// The organisation's own record key: without one, its threads cannot
	// be end-to-end encrypted (the server's key is the default
	// organisation's); with one, their envelopes are wrapped to it.
	doc, docTok := userIn(t, north, map[string]any{"name": "Dr North", "role": "clinician"})
	if r := north.do("POST", "/v1/care-teams", map[string]any{"name": "North team", "member_ids": []string{doc}}); r.status != http.StatusCreated {
		t.Fatalf("team: %d %s", r.status, r.body)
	}
	clinician := client{t: t, base: hs, token: docTok}
	newE2EEClient(t, clinician)
	var threads struct{ Items []struct{ ID, Kind string } }
	clinician.do("GET", "/v1/threads", nil).decode(t, &threads)
	if len(threads.Items) != 1 || threads.Items[0].Kind != "team" {
		t.Fatalf("the team's channel: %+v", threads.Items)
	}
	channel := threads.Items[0].ID
	if r := clinician.do("POST", "/v1/threads/"+channel+"/encrypt", nil); r.status != http.StatusConflict || !bytes.Contains(r.body, []byte("record key")) {
		t.Errorf("encrypting without the organisation's record key: %d %s", r.status, r.body)
	}
	wantProblem(t, north.do("PATCH", "/v1/organisations/"+org.ID.String(), map[string]any{"record_public_key": "not-a-key"}),
		http.StatusUnprocessableEntity, "record_public_key")
	record, err := e2ee.GenerateDeviceKeys()
	if err != nil {
		t.Fatal(err)
	}
	org = engine.Organisation{}
	r = north.do("PATCH", "/v1/organisations/"+me.Organisation.ID.String(), map[string]any{"record_public_key": b64url(record.HPKEPublic)})
	r.decode(t, &org)
	if r.status != http.StatusOK || org.RecordKey == nil || org.RecordKey.ID != e2ee.RecordKeyID(record.HPKEPublic) {
		t.Fatalf("record key: %d %s", r.status, r.body)
	}
	if r := clinician.do("POST", "/v1/threads/"+channel+"/encrypt", nil); r.status != http.StatusOK {
		t.Fatalf("encrypting with the organisation's record key: %d %s", r.status, r.body)
	}
	var keys struct {
		RecordKey struct{ ID string } `json:"record_key"`
	}
	clinician.do("GET", "/v1/threads/"+channel+"/keys", nil).decode(t, &keys)
	if keys.RecordKey.ID != org.RecordKey.ID || keys.RecordKey.ID == e2ee.RecordKeyID(serverRecord.HPKEPublic) {
		t.Errorf("the channel's record key is %q, want the organisation's %q", keys.RecordKey.ID, org.RecordKey.ID)
	}
	var changed int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_entries WHERE org_id = $1 AND action = 'organisation.update'
		AND detail->>'record_key_id' = $2`, org.ID, org.RecordKey.ID).Scan(&changed); err != nil || changed != 1 {
		t.Errorf("the record key's change in the audit trail: %d, %v", changed, err)
	}

	// Every change is audited in the organisation.
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_entries WHERE org_id = $1 AND action LIKE 'organisation.%'`, org.ID).Scan(&n); err != nil || n != 5 {
		t.Errorf("organisation audit entries = %d, %v; want 5 (create, three updates, logo)", n, err)
	}
}
