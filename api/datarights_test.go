package api_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// otherOrgAdmin is a client for an admin of a second organisation.
func otherOrgAdmin(t *testing.T, w *world) client {
	t.Helper()
	ctx := context.Background()
	org, user := uuid.New(), uuid.New()
	raw := make([]byte, 32)
	rand.Read(raw)
	tok := "tend_" + base64.RawURLEncoding.EncodeToString(raw)
	hash := sha256.Sum256([]byte(tok))
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO organisations (id, name, slug) VALUES ($1, 'Other clinic', 'other-clinic')`, []any{org}},
		{`INSERT INTO users (id, name, role, org_id) VALUES ($1, 'Other admin', 'admin', $2)`, []any{user, org}},
		{`INSERT INTO tokens (id, user_id, hash) VALUES ($1, $2, $3)`, []any{uuid.New(), user, hash[:]}},
	} {
		if _, err := w.pool.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	return w.admin.as(tok)
}

// TestDataRightsRoutes: POST /v1/patients/{id}/erase and
// POST/DELETE /v1/patients/{id}/restriction are for the patient's
// organisation's admins: every other role gets 403, another organisation's
// admin 404, and a missing or over-long reason 422 naming it — none of
// which changes a row but the refusal's audit entry, and a 422 not even
// that. Responses are checked against the OpenAPI document.
func TestDataRightsRoutes(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	checked := httptest.NewServer(api.CheckContract(t, w.srv))
	t.Cleanup(checked.Close)
	via := func(c client) client { c.base = checked.URL; return c }
	admin := via(w.admin)
	id := w.patient["A"]
	other := via(otherOrgAdmin(t, w))
	routes := []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/patients/" + id + "/erase", map[string]any{"reason": "asked in writing"}},
		{"POST", "/v1/patients/" + id + "/restriction", map[string]any{"reason": "contests accuracy"}},
		{"DELETE", "/v1/patients/" + id + "/restriction", nil},
	}
	state := func() string {
		var s string
		if err := w.pool.QueryRow(context.Background(), `SELECT display_name || (erased_at IS NULL)::text || (restricted_at IS NULL)::text
			FROM patients WHERE id = $1`, id).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := state()
	for _, rt := range routes {
		for _, who := range []string{"clinician", "scheduler", "patient", "device", "clinicianB", "patientB"} {
			wantProblem(t, via(w.actors[who]).do(rt.method, rt.path, rt.body), http.StatusForbidden)
		}
		wantProblem(t, other.do(rt.method, rt.path, rt.body), http.StatusNotFound)
	}
	if got := state(); got != before {
		t.Fatalf("refused requests changed the patient: %s, was %s", got, before)
	}

	counts := w.counts()
	for _, path := range []string{"/erase", "/restriction"} {
		for _, body := range []string{`{}`, `{"reason": ""}`, `{"reason": "  "}`, `{"reason": "` + strings.Repeat("é", 1001) + `"}`} {
			wantProblem(t, admin.do("POST", "/v1/patients/"+id+path, body), http.StatusUnprocessableEntity, "reason")
		}
	}
	if got := w.counts(); !equalCounts(got, counts) {
		t.Fatalf("422s stored or audited something: %v, was %v", got, counts)
	}

	var p struct {
		Restricted, Erased bool
	}
	r := admin.do("POST", "/v1/patients/"+id+"/restriction", map[string]any{"reason": "contests accuracy"})
	r.decode(t, &p)
	if r.status != http.StatusOK || !p.Restricted || p.Erased {
		t.Fatalf("restrict: %d %s", r.status, r.body)
	}
	admin.do("GET", "/v1/patients/"+id, nil).decode(t, &p)
	if !p.Restricted {
		t.Fatal("GET does not show the restriction")
	}
	if r := admin.do("DELETE", "/v1/patients/"+id+"/restriction", nil); r.status != http.StatusOK {
		t.Fatalf("lift: %d %s", r.status, r.body)
	}
	admin.do("GET", "/v1/patients/"+id, nil).decode(t, &p)
	if p.Restricted {
		t.Fatal("the restriction stayed after lifting")
	}
}

// equalCounts compares table counts.
func equalCounts(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestEraseThroughAPI: an admin erases patient A through the API; their
// messages (both threads), symptom note and attachment no longer open, a
// pg_dump of the database holds none of their text, names or identifiers
// (the same scan finds them before), the audit chain verifies, a second
// erasure is 409, and patient B's messages and notes still open.
func TestEraseThroughAPI(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	checked := httptest.NewServer(api.CheckContract(t, w.srv))
	t.Cleanup(checked.Close)
	via := func(c client) client { c.base = checked.URL; return c }
	admin, pat, doc, patB := via(w.admin), via(w.actors["patient"]), via(w.actors["clinician"]), via(w.actors["patientB"])
	id := w.patient["A"]
	if r := admin.do("PATCH", "/v1/patients/"+id, map[string]any{"external_id": "MRN-A-99812"}); r.status != http.StatusOK {
		t.Fatalf("external id: %d %s", r.status, r.body)
	}
	up := w.send(w.actors["patient"], "POST", "/v1/threads/"+w.thread["A"]+"/attachments", "application/pdf", pdfFile)
	var att attachmentJSON
	up.decode(t, &att)
	for _, m := range []struct {
		c      client
		thread string
		body   map[string]any
	}{
		{pat, w.thread["A"], map[string]any{"body": "A-SECRET-MESSAGE", "attachment_ids": []string{att.ID}}},
		{doc, w.thread["A"], map[string]any{"body": "A-CLINICIAN-SECRET"}},
		{patB, w.thread["B"], map[string]any{"body": "B-STILL-HERE"}},
	} {
		if r := m.c.do("POST", "/v1/threads/"+m.thread+"/messages", m.body); r.status != http.StatusCreated {
			t.Fatalf("message: %d %s", r.status, r.body)
		}
	}
	for _, x := range []struct {
		c       client
		patient string
		note    string
	}{{pat, id, "A-SECRET-NOTE"}, {patB, w.patient["B"], "B-NOTE-HERE"}} {
		if r := x.c.do("POST", "/v1/patients/"+x.patient+"/symptom-reports", map[string]any{"note": x.note,
			"symptoms": []map[string]any{{"code": "other", "severity": 3, "text": x.note + "-TEXT"}}}); r.status >= 300 {
			t.Fatalf("symptom report: %d %s", r.status, r.body)
		}
	}
	dump := func() string {
		out, err := exec.Command("pg_dump", "--data-only", "--dbname="+w.pool.Config().ConnString()).Output()
		if err != nil {
			t.Fatalf("pg_dump: %v", err)
		}
		return string(out)
	}
	if d := dump(); !strings.Contains(d, "Patient A") || !strings.Contains(d, "MRN-A-99812") || !strings.Contains(d, "A-SECRET-NOTE-TEXT") {
		t.Fatal("the dump before erasure lacks the patient's name, identifier or symptom text: the scan would prove nothing")
	}

	r := admin.do("POST", "/v1/patients/"+id+"/erase", map[string]any{"reason": "Erasure request of 2026-12-01"})
	var er engine.Erasure
	r.decode(t, &er)
	// Two attachments: the PDF above and the encrypted file the world put
	// in the staff-only thread about the patient.
	if r.status != http.StatusOK || er.PatientID.String() != id || er.Messages < 3 || er.Notes != 1 || er.Attachments != 2 || er.Users != 2 {
		t.Fatalf("erase: %d %s", r.status, r.body)
	}
	wantProblem(t, admin.do("POST", "/v1/patients/"+id+"/erase", map[string]any{"reason": "again"}), http.StatusConflict)
	wantProblem(t, admin.do("DELETE", "/v1/patients/"+id+"/restriction", nil), http.StatusConflict)

	d := dump()
	for _, s := range []string{"Patient A", "Patient user A", "MRN-A-99812", "A-SECRET-MESSAGE", "A-CLINICIAN-SECRET", "A-SECRET-NOTE",
		"Feeling dizzy", "Erasure request", string(pdfFile[:20])} {
		if strings.Contains(d, s) {
			t.Errorf("the dump after erasure holds %q", s)
		}
	}
	var msgs struct {
		Items []struct{ Body, Error string }
	}
	doc.do("GET", "/v1/threads/"+w.thread["A"]+"/messages", nil).decode(t, &msgs)
	if len(msgs.Items) == 0 {
		t.Fatal("the thread lost its messages")
	}
	for _, m := range msgs.Items {
		if m.Body != "" || m.Error == "" {
			t.Errorf("erased message reads %+v", m)
		}
	}
	if r := admin.do("GET", "/v1/patients/"+id+"/export", nil); r.status != http.StatusOK || strings.Contains(string(r.body), "A-SECRET") {
		t.Errorf("export after erasure: %d", r.status)
	}
	var p struct {
		DisplayName string `json:"display_name"`
		Erased      bool
		Restricted  bool
	}
	admin.do("GET", "/v1/patients/"+id, nil).decode(t, &p)
	if !p.Erased || !p.Restricted || strings.Contains(p.DisplayName, "Patient A") {
		t.Errorf("erased patient reads %+v", p)
	}
	// Revoked tokens stop working within the auth cache's lifetime (1 s).
	enginetest.WaitFor(t, func() bool { return pat.do("GET", "/v1/me", nil).status == http.StatusUnauthorized })

	// Patient B is untouched.
	patB.do("GET", "/v1/threads/"+w.thread["B"]+"/messages", nil).decode(t, &msgs)
	var found bool
	for _, m := range msgs.Items {
		found = found || m.Body == "B-STILL-HERE"
	}
	if !found {
		t.Errorf("patient B's messages after A's erasure: %+v", msgs.Items)
	}
	var reports struct{ Items []struct{ Note *string } }
	via(w.actors["clinicianB"]).do("GET", "/v1/patients/"+w.patient["B"]+"/symptom-reports", nil).decode(t, &reports)
	if len(reports.Items) != 1 || reports.Items[0].Note == nil || *reports.Items[0].Note != "B-NOTE-HERE" {
		t.Errorf("patient B's reports: %+v", reports.Items)
	}

	// The audit chain verifies (tend audit verify does the same).
	eng, err := engine.New(engine.Config{Pool: w.pool, Keys: enginetest.Keys(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.SealAudit(context.Background(), 100000); err != nil {
		t.Fatal(err)
	}
	rep, err := eng.VerifyAudit(context.Background(), nil)
	if err != nil || rep.Break != nil || rep.Unsealed != 0 || rep.Sealed == 0 {
		t.Fatalf("audit verify = %+v, %v", rep, err)
	}
}
