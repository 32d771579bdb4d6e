package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tendhealth/tend/fhir/fhirtest"
)

func obsJSON(subject, code, value, effective string) string {
	return fmt.Sprintf(`{"resourceType":"Observation","status":"final",
		"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],
		"code":{"coding":[{"system":"http://loinc.org","code":%q}]},"subject":%s,"effectiveDateTime":%q,%s}`, code, subject, effective, value)
}

func ref(id string) string { return `{"reference":"Patient/` + id + `"}` }

func bundleJSON(typ string, entries ...string) string {
	var es []string
	for _, e := range entries {
		es = append(es, `{"request":{"method":"POST","url":"Observation"},"resource":`+e+`}`)
	}
	return `{"resourceType":"Bundle","type":"` + typ + `","entry":[` + strings.Join(es, ",") + `]}`
}

type outcome struct {
	ResourceType string
	Issue        []struct {
		Code, Diagnostics string
		Expression        []string
	}
}

func wantOutcome(t *testing.T, r response, status int, expr string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/fhir+json" {
		t.Fatalf("content type %q", ct)
	}
	var oo outcome
	r.decode(t, &oo)
	if oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 {
		t.Fatalf("not an OperationOutcome: %s", r.body)
	}
	if expr == "" {
		return
	}
	for _, is := range oo.Issue {
		for _, e := range is.Expression {
			if e == expr {
				return
			}
		}
	}
	t.Fatalf("no issue at %s: %s", expr, r.body)
}

func TestFHIRObservationsInAndOut(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	var emitted []json.RawMessage
	now := time.Now().UTC().Truncate(time.Second)
	at := func(d time.Duration) string { return now.Add(-d).Format(time.RFC3339) }

	// Omron-style: older panel code, components in mmHg (unit only).
	bp := `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"55284-4"}]},
		"subject":` + ref(s.patientID) + `,"effectiveDateTime":"` + at(time.Hour) + `","identifier":[{"system":"urn:omron","value":"m-1"}],
		"component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":245,"unit":"mmHg"}},
		{"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"valueQuantity":{"value":145,"unit":"mmHg"}}]}`
	r := s.device.do("POST", "/fhir/r4/Observation", bp)
	if r.status != http.StatusCreated || r.header.Get("Location") == "" {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	emitted = append(emitted, r.body)
	var created struct {
		ID   string
		Meta struct {
			LastUpdated string
			Profile     []string
		}
	}
	r.decode(t, &created)
	if created.Meta.LastUpdated == "" || len(created.Meta.Profile) != 1 {
		t.Fatalf("meta missing: %s", r.body)
	}
	// The same identifier again stores nothing.
	if r = s.device.do("POST", "/fhir/r4/Observation", bp); r.status != http.StatusOK {
		t.Fatalf("re-post: %d %s", r.status, r.body)
	}
	// The reading is visible to the JSON API, and raised an alert.
	var readings struct{ Items []map[string]any }
	s.clinician.do("GET", "/v1/patients/"+s.patientID+"/readings", nil).decode(t, &readings)
	if len(readings.Items) != 1 || readings.Items[0]["systolic"] != 245.0 {
		t.Fatalf("readings = %v", readings.Items)
	}
	// Read it back.
	r = s.clinician.do("GET", "/fhir/r4/Observation/"+created.ID, nil)
	if r.status != http.StatusOK {
		t.Fatalf("read: %d %s", r.status, r.body)
	}
	emitted = append(emitted, r.body)
	if r = s.clinician.do("GET", "/fhir/r4/Observation/"+strings.Repeat("0", 64), nil); r.status != 404 {
		t.Fatalf("read unknown: %d", r.status)
	}

	// Apple Health: effectivePeriod, unit and UCUM code; Withings: pounds by unit only.
	apple := `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},
		"subject":` + ref(s.patientID) + `,"effectivePeriod":{"start":"` + at(50*time.Minute) + `","end":"` + at(49*time.Minute) + `"},
		"valueQuantity":{"value":72,"unit":"count/min","system":"http://unitsofmeasure.org","code":"/min"}}`
	withings := obsJSON(ref(s.patientID), "29463-7", `"valueQuantity":{"value":180,"unit":"lb"}`, at(40*time.Minute))
	r = s.device.do("POST", "/fhir/r4", bundleJSON("transaction", apple, withings))
	if r.status != http.StatusOK {
		t.Fatalf("transaction: %d %s", r.status, r.body)
	}
	emitted = append(emitted, r.body)

	// Search: newest first, paging with next links.
	var ids []string
	next := "/fhir/r4/Observation?patient=Patient/" + s.patientID + "&_count=2"
	for pages := 0; next != ""; pages++ {
		if pages > 3 {
			t.Fatal("too many pages")
		}
		r = s.clinician.do("GET", next, nil)
		if r.status != http.StatusOK {
			t.Fatalf("search: %d %s", r.status, r.body)
		}
		emitted = append(emitted, r.body)
		var b struct {
			Link  []struct{ Relation, URL string }
			Entry []struct{ Resource struct{ ID string } }
		}
		r.decode(t, &b)
		next = ""
		for _, l := range b.Link {
			if l.Relation == "next" {
				next = l.URL
			}
		}
		for _, e := range b.Entry {
			ids = append(ids, e.Resource.ID)
		}
		if pages == 0 { // a reading stored between pages does not shift them
			s.device.do("POST", "/fhir/r4/Observation", obsJSON(ref(s.patientID), "8867-4", `"valueQuantity":{"value":64,"code":"/min"}`, at(time.Minute)))
		}
	}
	if len(ids) != 3 {
		t.Fatalf("paged ids = %v, want the 3 readings stored before the search", ids)
	}
	r = s.clinician.do("GET", "/fhir/r4/Observation?patient=Patient/"+s.patientID+"&code=29463-7&date=ge"+at(45*time.Minute)+"&date=lt"+at(0), nil)
	var one struct {
		Entry []struct{ Resource map[string]any }
	}
	r.decode(t, &one)
	if len(one.Entry) != 1 || one.Entry[0].Resource["valueQuantity"].(map[string]any)["code"] != "kg" {
		t.Fatalf("code+date search: %s", r.body)
	}
	wantOutcome(t, s.clinician.do("GET", "/fhir/r4/Observation?patient=Patient/"+s.patientID+"&date=eq2026-01-01", nil), 400, "")
	wantOutcome(t, s.clinician.do("GET", "/fhir/r4/Observation?subject=x", nil), 400, "")

	// Patient, Flag, metadata.
	r = s.clinician.do("GET", "/fhir/r4/Patient/"+s.patientID, nil)
	if r.status != http.StatusOK {
		t.Fatalf("patient: %d %s", r.status, r.body)
	}
	emitted = append(emitted, r.body)
	r = s.clinician.do("GET", "/fhir/r4/Flag?patient=Patient/"+s.patientID+"&status=active", nil)
	var flags struct {
		Entry []struct{ Resource struct{ ID, Status string } }
	}
	r.decode(t, &flags)
	if r.status != http.StatusOK || len(flags.Entry) == 0 || flags.Entry[0].Resource.Status != "active" {
		t.Fatalf("flags: %d %s", r.status, r.body)
	}
	emitted = append(emitted, r.body)
	r = s.clinician.do("GET", "/fhir/r4/Flag/"+flags.Entry[0].Resource.ID, nil)
	emitted = append(emitted, r.body)
	r = s.clinician.do("GET", "/fhir/r4/Flag?status=inactive", nil)
	if !strings.Contains(string(r.body), `"searchset"`) || strings.Contains(string(r.body), `"entry"`) {
		t.Fatalf("inactive flags: %s", r.body)
	}
	r = client{t: t, base: s.admin.base}.do("GET", "/fhir/r4/metadata", nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"Flag"`) {
		t.Fatalf("metadata: %d %s", r.status, r.body)
	}
	emitted = append(emitted, r.body)

	// Errors are OperationOutcomes, authentication included.
	wantOutcome(t, client{t: t, base: s.admin.base}.do("GET", "/fhir/r4/Patient/"+s.patientID, nil), 401, "")
	r = s.device.do("POST", "/fhir/r4/Observation", obsJSON(ref(s.patientID), "8867-4", `"valueQuantity":{"value":70,"code":"/min"}`, "2026-11-22"))
	wantOutcome(t, r, 422, "Observation.effectiveDateTime")
	emitted = append(emitted, r.body)
	fhirtest.Validate(t, emitted...)
}

func TestFHIRBatchVersusTransaction(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	at := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	good := obsJSON(ref(s.patientID), "8867-4", `"valueQuantity":{"value":70,"code":"/min"}`, at)
	bad := obsJSON(ref(s.patientID), "8867-4", `"valueQuantity":{"value":900,"code":"/min"}`, at)
	count := func() int {
		var l struct{ Items []any }
		s.clinician.do("GET", "/v1/patients/"+s.patientID+"/readings", nil).decode(t, &l)
		return len(l.Items)
	}
	// A transaction with one bad entry stores nothing.
	wantOutcome(t, s.device.do("POST", "/fhir/r4", bundleJSON("transaction", good, bad)), 422, "Bundle.entry[1].resource.valueQuantity.value")
	if n := count(); n != 0 {
		t.Fatalf("transaction stored %d readings", n)
	}
	// A batch answers each entry on its own.
	r := s.device.do("POST", "/fhir/r4", bundleJSON("batch", good, bad))
	if r.status != http.StatusOK {
		t.Fatalf("batch: %d %s", r.status, r.body)
	}
	var b struct {
		Type  string
		Entry []struct {
			Response struct {
				Status  string
				Outcome *outcome
			}
		}
	}
	r.decode(t, &b)
	if b.Type != "batch-response" || b.Entry[0].Response.Status != "201 Created" || !strings.HasPrefix(b.Entry[1].Response.Status, "422") ||
		b.Entry[1].Response.Outcome == nil {
		t.Fatalf("batch response: %s", r.body)
	}
	if n := count(); n != 1 {
		t.Fatalf("batch stored %d readings, want 1", n)
	}
	fhirtest.Validate(t, r.body)
}

func TestFHIRBundleDedupAndExternalID(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	var p struct{ ID string }
	s.clinician.do("POST", "/v1/patients", map[string]any{"display_name": "Kim Park", "timezone": "UTC", "care_team_id": s.teamID,
		"external_id": "MRN-88"}).decode(t, &p)
	at := time.Now().UTC().Add(-time.Hour)
	var entries []string
	for i := range 5 {
		o := obsJSON(`{"identifier":{"system":"urn:mrn","value":"MRN-88"}}`, "59408-5", `"valueQuantity":{"value":96,"code":"%"},
			"identifier":[{"system":"urn:gw","value":"`+fmt.Sprint(i)+`"}]`, at.Add(time.Duration(i)*time.Minute).Format(time.RFC3339))
		entries = append(entries, o)
	}
	body := bundleJSON("transaction", entries...)
	for round, want := range []string{"201 Created", "200 OK"} {
		r := s.clinician.do("POST", "/fhir/r4", body)
		if r.status != http.StatusOK || strings.Count(string(r.body), want) != 5 {
			t.Fatalf("round %d: %d %s", round, r.status, r.body)
		}
	}
	var l struct{ Items []any }
	s.clinician.do("GET", "/v1/patients/"+p.ID+"/readings", nil).decode(t, &l)
	if len(l.Items) != 5 {
		t.Fatalf("stored %d readings after a re-posted Bundle, want 5", len(l.Items))
	}
	// An unknown external id is not found.
	wantOutcome(t, s.clinician.do("POST", "/fhir/r4/Observation",
		obsJSON(`{"identifier":{"value":"MRN-404"}}`, "59408-5", `"valueQuantity":{"value":96,"code":"%"}`, at.Format(time.RFC3339))), 404, "Observation.subject")
}

func TestFHIRScope(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	var other struct{ ID string }
	s.clinician.do("POST", "/v1/patients", map[string]any{"display_name": "Other", "timezone": "UTC", "care_team_id": s.teamID}).decode(t, &other)
	at := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	// The device of patient A posting for patient B: 404, nothing stored.
	o := obsJSON(ref(other.ID), "8867-4", `"valueQuantity":{"value":70,"code":"/min"}`, at)
	wantOutcome(t, s.device.do("POST", "/fhir/r4/Observation", o), 404, "Observation.subject")
	wantOutcome(t, s.device.do("POST", "/fhir/r4", bundleJSON("transaction", o)), 404, "Bundle.entry[0].resource.subject")
	wantOutcome(t, s.device.do("GET", "/fhir/r4/Patient/"+other.ID, nil), 404, "")
	wantOutcome(t, s.device.do("GET", "/fhir/r4/Observation?patient=Patient/"+other.ID, nil), 404, "")
	var l struct{ Items []any }
	s.clinician.do("GET", "/v1/patients/"+other.ID+"/readings", nil).decode(t, &l)
	if len(l.Items) != 0 {
		t.Fatalf("stored %d readings for another patient", len(l.Items))
	}
}

// TestFHIREnteredInError: an Observation with status entered-in-error whose
// identifier names a stored reading of the patient retracts it — kept and
// readable as entered-in-error, gone from listings, audited — and one that
// names nothing is a 422.
func TestFHIREnteredInError(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	at := time.Now().UTC().Add(-time.Hour)
	obs := func(id string, min int) string {
		return obsJSON(ref(s.patientID), "8867-4", `"valueQuantity":{"value":70,"code":"/min"},"identifier":[{"system":"urn:gw","value":"`+id+`"}]`,
			at.Add(time.Duration(min)*time.Minute).Format(time.RFC3339))
	}
	retract := func(o string) string { return strings.Replace(o, `"status":"final"`, `"status":"entered-in-error"`, 1) }
	var first struct{ ID string }
	if r := s.device.do("POST", "/fhir/r4/Observation", obs("a", 0)); r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	} else {
		r.decode(t, &first)
	}
	if r := s.device.do("POST", "/fhir/r4/Observation", obs("b", 1)); r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	for round := range 2 { // the second retraction changes nothing
		r := s.device.do("POST", "/fhir/r4/Observation", retract(obs("a", 0)))
		var got struct{ ID, Status string }
		if r.status != http.StatusOK {
			t.Fatalf("round %d: retract: %d %s", round, r.status, r.body)
		}
		if r.decode(t, &got); got.Status != "entered-in-error" || got.ID != first.ID {
			t.Fatalf("round %d: retract answered %s", round, r.body)
		}
	}
	var l struct {
		Items []struct {
			SourceID string `json:"source_id"`
		}
	}
	s.clinician.do("GET", "/v1/patients/"+s.patientID+"/readings", nil).decode(t, &l)
	if len(l.Items) != 1 || l.Items[0].SourceID != "urn:gw|b" {
		t.Fatalf("listing after retraction: %+v, want only urn:gw|b", l.Items)
	}
	var set struct{ Entry []any }
	s.clinician.do("GET", "/fhir/r4/Observation?patient=Patient/"+s.patientID, nil).decode(t, &set)
	if len(set.Entry) != 1 {
		t.Fatalf("search after retraction: %d entries, want 1", len(set.Entry))
	}
	var read struct{ Status string }
	if r := s.clinician.do("GET", "/fhir/r4/Observation/"+first.ID, nil); r.status != http.StatusOK {
		t.Fatalf("read: %d %s", r.status, r.body)
	} else if r.decode(t, &read); read.Status != "entered-in-error" {
		t.Fatalf("read status %q, want entered-in-error", read.Status)
	}
	a := s.admin.do("GET", "/v1/audit?patient_id="+s.patientID, nil)
	if n := strings.Count(string(a.body), `"reading.entered_in_error"`); n != 1 {
		t.Fatalf("%d reading.entered_in_error audit entries, want 1: %s", n, a.body)
	}
	// Naming nothing stored, or nothing at all: 422, nothing changes.
	wantOutcome(t, s.device.do("POST", "/fhir/r4/Observation", retract(obs("zzz", 0))), 422, "Observation.identifier")
	noID := retract(obsJSON(ref(s.patientID), "8867-4", `"valueQuantity":{"value":70,"code":"/min"}`, at.Format(time.RFC3339)))
	wantOutcome(t, s.device.do("POST", "/fhir/r4/Observation", noID), 422, "Observation.status")
	// The code must match the stored reading's kind.
	wrongKind := retract(obsJSON(ref(s.patientID), "59408-5", `"valueQuantity":{"value":96,"code":"%"},"identifier":[{"system":"urn:gw","value":"b"}]`,
		at.Add(time.Minute).Format(time.RFC3339)))
	wantOutcome(t, s.device.do("POST", "/fhir/r4/Observation", wrongKind), 422, "Observation.identifier")
	// A transaction that retracts and records, or retracts nothing stored: all refused.
	wantOutcome(t, s.device.do("POST", "/fhir/r4", bundleJSON("transaction", retract(obs("b", 1)), obs("c", 2))), 422, "Bundle.entry[0].resource.status")
	wantOutcome(t, s.device.do("POST", "/fhir/r4", bundleJSON("transaction", retract(obs("b", 1)), retract(obs("zzz", 3)))), 422,
		"Bundle.entry[1].resource.identifier")
	s.clinician.do("GET", "/v1/patients/"+s.patientID+"/readings", nil).decode(t, &l)
	if len(l.Items) != 1 {
		t.Fatalf("a refused transaction changed the listing: %+v", l.Items)
	}
	// In a batch each entry counts on its own.
	r := s.device.do("POST", "/fhir/r4", bundleJSON("batch", retract(obs("b", 1)), retract(obs("zzz", 3))))
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"200 OK"`) || !strings.Contains(string(r.body), `"422 Unprocessable Entity"`) {
		t.Fatalf("batch: %d %s", r.status, r.body)
	}
	s.clinician.do("GET", "/v1/patients/"+s.patientID+"/readings", nil).decode(t, &l)
	if len(l.Items) != 0 {
		t.Fatalf("after the batch: %+v, want no current readings", l.Items)
	}
}

// TestFHIREnteredInErrorLeavesRuleHistory: glucose-high needs two high
// readings at least 4 hours apart. A retracted high reading does not count
// as the first of them; two current ones do (so the test can fail).
func TestFHIREnteredInErrorLeavesRuleHistory(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	t0 := time.Now().UTC().Add(-20 * time.Hour)
	ingest := func(id string, at time.Time) []string {
		t.Helper()
		r := s.device.do("POST", "/v1/patients/"+s.patientID+"/readings", fmt.Sprintf(
			`{"kind":"blood_glucose","value":350,"unit":"mg/dL","observed_at":%q,"source_id":"urn:gw|%s"}`, at.Format(time.RFC3339), id))
		if r.status != http.StatusCreated {
			t.Fatalf("ingest %s: %d %s", id, r.status, r.body)
		}
		var res struct {
			Alerts []struct {
				RuleID string `json:"rule_id"`
			}
		}
		r.decode(t, &res)
		var ids []string
		for _, a := range res.Alerts {
			ids = append(ids, a.RuleID)
		}
		return ids
	}
	has := func(ids []string) bool { return strings.Contains(strings.Join(ids, ","), "glucose-high") }
	if got := ingest("g1", t0); has(got) {
		t.Fatalf("one high reading raised %v", got)
	}
	retraction := strings.Replace(obsJSON(ref(s.patientID), "2339-0", `"valueQuantity":{"value":350,"code":"mg/dL"},"identifier":[{"system":"urn:gw","value":"g1"}]`,
		t0.Format(time.RFC3339)), `"status":"final"`, `"status":"entered-in-error"`, 1)
	if r := s.device.do("POST", "/fhir/r4/Observation", retraction); r.status != http.StatusOK {
		t.Fatalf("retract: %d %s", r.status, r.body)
	}
	if got := ingest("g2", t0.Add(5*time.Hour)); has(got) {
		t.Fatalf("the retracted reading counted in the rule's history: %v", got)
	}
	if got := ingest("g3", t0.Add(10*time.Hour)); !has(got) {
		t.Fatalf("two current high readings 5 h apart raised %v, want glucose-high", got)
	}
}
