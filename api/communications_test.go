package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tendhealth/tend/fhir/fhirtest"
)

// communication is what the tests read of a Communication.
type communication struct {
	ResourceType, ID, Status, Priority, Sent string
	Meta                                     struct{ LastUpdated string }
	Subject                                  struct{ Reference string }
	Sender                                   *struct {
		Reference, Type, Display string
		Identifier               struct{ System, Value string }
	}
	Recipient []struct {
		Reference, Type, Display string
		Identifier               struct{ System, Value string }
	}
	Category []struct {
		Coding []struct{ System, Code string }
	}
	Payload []struct {
		ContentString     *string
		ContentAttachment *struct {
			ContentType, URL string
			Size             int64
			Extension        []struct{ URL, ValueBase64Binary string }
		}
	}
}

type commBundle struct {
	ResourceType, Type string
	Link               []struct{ Relation, URL string }
	Entry              []struct {
		FullURL  string
		Resource communication
	}
}

func (b commBundle) next() string {
	for _, l := range b.Link {
		if l.Relation == "next" {
			return l.URL
		}
	}
	return ""
}

func (b commBundle) texts() []string {
	var out []string
	for _, e := range b.Entry {
		for _, p := range e.Resource.Payload {
			if p.ContentString != nil {
				out = append(out, *p.ContentString)
			}
		}
	}
	return out
}

// TestFHIRCommunications: the messages of a patient's thread with their care
// team are Communications to its participants — the patient (their own) and
// the team's staff — newest first, paged, filtered by sent, each read
// audited; staff-only threads never appear, and another team, another
// patient or a device gets the same 404 as for nothing at all. Every
// resource written passes the independent validator.
func TestFHIRCommunications(t *testing.T) {
	t.Parallel()
	w := newMsgWorld(t)
	ctx := context.Background()
	var a1 string
	if err := w.pool.QueryRow(ctx, `SELECT patient_id FROM threads WHERE id = $1`, w.thread["own"]).Scan(&a1); err != nil {
		t.Fatal(err)
	}
	var emitted []json.RawMessage
	keep := func(r response) response { emitted = append(emitted, r.body); return r }

	first := w.post("patientA1", "own", "My ankles are swollen since Tuesday")
	// The clinician answers, urgent, with a photo.
	req, _ := http.NewRequest("POST", w.base+"/v1/threads/"+w.thread["own"]+"/attachments", bytes.NewReader(pngFile))
	req.Header.Set("Authorization", "Bearer "+w.tokens["clinicianA"])
	req.Header.Set("Content-Type", "image/png")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var att attachmentJSON
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(data, &att) != nil {
		t.Fatalf("upload: %d %s", resp.StatusCode, data)
	}
	r := w.as("clinicianA").do("POST", "/v1/threads/"+w.thread["own"]+"/messages", map[string]any{"body": "Please call us today",
		"urgent": true, "attachment_ids": []string{att.ID}})
	if r.status != http.StatusCreated {
		t.Fatalf("urgent post: %d %s", r.status, r.body)
	}
	var urgent struct{ ID string }
	r.decode(t, &urgent)
	staffOnly := w.post("clinicianA", "staff only", "Staff only: consider diuretics")
	w.post("clinicianA", "team channel", "Team channel chatter")
	w.post("patientA2", "same team", "Another patient's message")
	w.post("patientB", "other team", "Other team's patient")
	if r := w.as("patientA1").do("POST", "/v1/patients/"+a1+"/symptom-reports", map[string]any{
		"symptoms": []map[string]any{{"code": "dizziness", "severity": 2}}, "note": "dizzy when standing"}); r.status != http.StatusCreated {
		t.Fatalf("symptom report: %d %s", r.status, r.body)
	}

	// The patient's own search: their thread only, newest first.
	var b commBundle
	r = keep(w.as("patientA1").do("GET", "/fhir/r4/Communication", nil))
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/fhir+json" {
		t.Fatalf("patient search: %d %s", r.status, r.body)
	}
	r.decode(t, &b)
	want := []string{"dizzy when standing", "Please call us today", "My ankles are swollen since Tuesday"}
	if b.Type != "searchset" || !slices.Equal(b.texts(), want) {
		t.Fatalf("patient search texts = %q, want %q: %s", b.texts(), want, r.body)
	}
	for _, e := range b.Entry {
		c := e.Resource
		if c.ResourceType != "Communication" || c.Status != "completed" || c.Subject.Reference != "Patient/"+a1 || c.Sent == "" ||
			c.Meta.LastUpdated == "" || e.FullURL != w.as("patientA1").base+"/fhir/r4/Communication/"+c.ID {
			t.Errorf("communication %s: %+v", c.ID, c)
		}
	}
	report, doc, pat := b.Entry[0].Resource, b.Entry[1].Resource, b.Entry[2].Resource
	if report.Category[0].Coding[0].Code != "symptom_report" || pat.Category[0].Coding[0].Code != "text" {
		t.Errorf("categories: %+v / %+v", report.Category, pat.Category)
	}
	// The patient's message: from the patient to the care team, routine.
	if pat.ID != first["id"] || pat.Priority != "routine" || pat.Sender == nil || pat.Sender.Reference != "Patient/"+a1 ||
		len(pat.Recipient) != 1 || pat.Recipient[0].Type != "CareTeam" || pat.Recipient[0].Identifier.Value == "" {
		t.Errorf("patient's message: %+v", pat)
	}
	// The clinician's: urgent, from a Practitioner (by user id, role shown)
	// to the patient, with the photo by URL, size and SHA-256.
	sum := sha256.Sum256(pngFile)
	if doc.ID != urgent.ID || doc.Priority != "urgent" || doc.Sender == nil || doc.Sender.Type != "Practitioner" ||
		doc.Sender.Identifier.Value != w.ids["clinicianA"].String() || doc.Sender.Display != "clinician" ||
		len(doc.Recipient) != 1 || doc.Recipient[0].Reference != "Patient/"+a1 || len(doc.Payload) != 2 {
		t.Fatalf("clinician's message: %+v", doc)
	}
	ca := doc.Payload[1].ContentAttachment
	if ca == nil || ca.ContentType != "image/png" || ca.URL != "/v1/attachments/"+att.ID || ca.Size != int64(len(pngFile)) ||
		len(ca.Extension) != 1 || ca.Extension[0].ValueBase64Binary != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Fatalf("attachment payload: %+v", ca)
	}
	// The URL serves the attachment's bytes to the same reader.
	req, _ = http.NewRequest("GET", w.base+ca.URL, nil)
	req.Header.Set("Authorization", "Bearer "+w.tokens["patientA1"])
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("attachment URL: %v %v", resp, err)
	} else {
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Equal(got, pngFile) {
			t.Fatal("attachment URL served other bytes")
		}
	}

	// Staff of the team: the same messages, paged by the next link; never
	// the staff-only thread or the team channel.
	var ids, texts []string
	next := "/fhir/r4/Communication?patient=Patient/" + a1 + "&_count=2"
	for pages := 0; next != ""; pages++ {
		if pages > 3 {
			t.Fatal("too many pages")
		}
		r = keep(w.as("clinicianA").do("GET", next, nil))
		if r.status != http.StatusOK {
			t.Fatalf("staff search: %d %s", r.status, r.body)
		}
		var page commBundle
		r.decode(t, &page)
		for _, e := range page.Entry {
			ids = append(ids, e.Resource.ID)
		}
		texts = append(texts, page.texts()...)
		next = page.next()
		if pages == 0 {
			if next == "" || !strings.Contains(next, "_cursor=") {
				t.Fatalf("first page of 2 has no next link: %s", r.body)
			}
			// A message posted between pages does not shift them.
			w.post("patientA1", "own", "Arrived between pages")
		}
	}
	if len(ids) != 3 || !slices.Equal(texts, want) {
		t.Fatalf("paged = %v %q, want the 3 messages before the search", ids, texts)
	}
	// sent filters by time.
	future := url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	r = w.as("clinicianA").do("GET", "/fhir/r4/Communication?patient=Patient/"+a1+"&sent=ge"+future, nil)
	if r.status != http.StatusOK || strings.Contains(string(r.body), `"entry"`) {
		t.Fatalf("sent=ge future: %d %s", r.status, r.body)
	}
	past := url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
	r = w.as("clinicianA").do("GET", "/fhir/r4/Communication?patient=Patient/"+a1+"&sent=ge"+past+"&sent=lt"+future, nil)
	var ranged commBundle
	r.decode(t, &ranged)
	if len(ranged.Entry) != 4 {
		t.Fatalf("sent range: %d entries: %s", len(ranged.Entry), r.body)
	}

	// Reads.
	r = keep(w.as("clinicianA").do("GET", "/fhir/r4/Communication/"+urgent.ID, nil))
	var one communication
	r.decode(t, &one)
	if r.status != http.StatusOK || one.ID != urgent.ID || one.Priority != "urgent" {
		t.Fatalf("read: %d %s", r.status, r.body)
	}
	if r = w.as("patientA1").do("GET", "/fhir/r4/Communication/"+urgent.ID, nil); r.status != http.StatusOK {
		t.Fatalf("patient read: %d %s", r.status, r.body)
	}
	// Out of scope: the same 404 as for nothing.
	nothing := w.as("patientA1").do("GET", "/fhir/r4/Communication/00000000-0000-4000-8000-000000000000", nil)
	wantOutcome(t, nothing, http.StatusNotFound, "")
	for _, c := range []struct{ who, path string }{
		{"patientA1", "/fhir/r4/Communication/" + staffOnly["id"].(string)},  // a staff-only message, to the patient
		{"clinicianA", "/fhir/r4/Communication/" + staffOnly["id"].(string)}, // staff-only threads are not Communications
		{"clinicianB", "/fhir/r4/Communication/" + urgent.ID},                // another team
		{"patientA2", "/fhir/r4/Communication/" + urgent.ID},                 // another patient of the team
		{"deviceA1", "/fhir/r4/Communication/" + urgent.ID},                  // the patient's device
		{"admin", "/fhir/r4/Communication/" + urgent.ID},                     // an admin outside the team
		{"patientA1", "/fhir/r4/Communication/not-a-uuid"},
		{"clinicianB", "/fhir/r4/Communication?patient=Patient/" + a1},
		{"patientA2", "/fhir/r4/Communication?patient=Patient/" + a1},
		{"deviceA1", "/fhir/r4/Communication"},
		{"admin", "/fhir/r4/Communication?patient=Patient/" + a1},
	} {
		r := w.as(c.who).do("GET", c.path, nil)
		wantOutcome(t, r, http.StatusNotFound, "")
		if strings.Contains(string(r.body), "Please call") || strings.Contains(string(r.body), "diuretics") {
			t.Errorf("%s %s leaks a body: %s", c.who, c.path, r.body)
		}
	}
	// Bad input: OperationOutcomes, 400.
	for _, path := range []string{
		"/fhir/r4/Communication",                   // staff must name the patient
		"/fhir/r4/Communication?patient=Patient/x", // not an id
		"/fhir/r4/Communication?subject=Patient/x", // unsupported parameter
		"/fhir/r4/Communication?sent=eq2026-01-01", // unsupported prefix
		"/fhir/r4/Communication?_count=0",          // page size
		"/fhir/r4/Communication?patient=Patient/" + a1 + "&_cursor=bogus",
	} {
		wantOutcome(t, w.as("clinicianA").do("GET", path, nil), http.StatusBadRequest, "")
	}

	// Every read is audited: searches per thread (message.list), reads
	// (message.read), with the message ids.
	var lists, reads int
	if err := w.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE action = 'message.list'), count(*) FILTER (WHERE action = 'message.read')
		FROM audit_entries WHERE detail->>'via' = 'fhir' AND patient_id = $1`, a1).Scan(&lists, &reads); err != nil {
		t.Fatal(err)
	}
	if lists < 4 || reads != 2 {
		t.Errorf("audit: %d message.list and %d message.read entries via FHIR, want ≥ 4 and 2", lists, reads)
	}
	var audited bool
	if err := w.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM audit_entries WHERE action = 'message.read' AND detail->>'via' = 'fhir'
		AND detail->'message_ids' ? $1)`, urgent.ID).Scan(&audited); err != nil || !audited {
		t.Errorf("the read of %s is not audited with its id (%v)", urgent.ID, err)
	}

	// The CapabilityStatement lists Communication with its search parameters.
	r = keep(client{t: t, base: w.base}.do("GET", "/fhir/r4/metadata", nil))
	var cs struct {
		Rest []struct {
			Resource []struct {
				Type        string
				Interaction []struct{ Code string }
				SearchParam []struct{ Name string }
			}
		}
	}
	r.decode(t, &cs)
	found := false
	for _, res := range cs.Rest[0].Resource {
		if res.Type == "Communication" {
			found = len(res.Interaction) == 2 && len(res.SearchParam) == 3
		}
	}
	if !found {
		t.Fatalf("metadata does not list Communication read and search: %s", r.body)
	}
	fhirtest.Validate(t, emitted...)
}
