package api_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tendhealth/tend/fhir/fhirtest"
)

// exported is a patient's export, unzipped.
type exported struct {
	bundle struct {
		ResourceType string `json:"resourceType"`
		Type         string `json:"type"`
		Entry        []struct {
			FullURL  string          `json:"fullUrl"`
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	raw      []byte
	files    map[string][]byte
	manifest struct {
		PatientID string         `json:"patient_id"`
		Counts    map[string]int `json:"counts"`
		Files     []struct {
			Path, SHA256, Failed string
		} `json:"files"`
	}
}

func unzipExport(t *testing.T, r response) exported {
	t.Helper()
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/zip" ||
		!strings.Contains(r.header.Get("Content-Disposition"), "attachment; filename=\"patient-") {
		t.Fatalf("export: %d %s %.300s", r.status, r.header, r.body)
	}
	zr, err := zip.NewReader(bytes.NewReader(r.body), int64(len(r.body)))
	if err != nil {
		t.Fatal(err)
	}
	var e exported
	e.files = map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		e.files[f.Name] = b
	}
	e.raw = e.files["patient-bundle.json"]
	if err := json.Unmarshal(e.raw, &e.bundle); err != nil {
		t.Fatalf("bundle: %v", err)
	}
	if err := json.Unmarshal(e.files["manifest.json"], &e.manifest); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	return e
}

// resources returns the bundle's resources of a type.
func (e exported) resources(typ string) []map[string]any {
	var out []map[string]any
	for _, en := range e.bundle.Entry {
		var m map[string]any
		_ = json.Unmarshal(en.Resource, &m)
		if m["resourceType"] == typ {
			out = append(out, m)
		}
	}
	return out
}

// TestPatientExport: GET /v1/patients/{id}/export gives an admin a zip of a
// FHIR R4 collection Bundle that Medplum's validator accepts, holding every
// reading and message the API lists for the patient, their care team,
// alerts, reminders, decided doses and who read their data, with each
// attachment's bytes under the path its Communication names. The patient
// exports their own record without the staff-only discussion; a
// clinician gets 403, another patient 404, and nothing is audited for them.
func TestPatientExport(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	pat, doc := w.actors["patient"], w.actors["clinician"]
	id := w.patient["A"]
	up := w.send(pat, "POST", "/v1/threads/"+w.thread["A"]+"/attachments", "application/pdf", pdfFile)
	var att attachmentJSON
	up.decode(t, &att)
	if r := pat.do("POST", "/v1/threads/"+w.thread["A"]+"/messages", map[string]any{"body": "My discharge letter",
		"attachment_ids": []string{att.ID}}); r.status != http.StatusCreated {
		t.Fatalf("message: %d %s", r.status, r.body)
	}
	if r := w.actors["patient"].do("POST", "/v1/doses/"+w.dose["A"]+"/confirm", map[string]any{"status": "taken"}); r.status != http.StatusOK {
		t.Fatalf("confirm: %d %s", r.status, r.body)
	}
	if r := doc.do("GET", "/v1/patients/"+id, nil); r.status != http.StatusOK {
		t.Fatalf("read: %d", r.status)
	}

	e := unzipExport(t, w.send(w.admin, "GET", "/v1/patients/"+id+"/export", "", nil))
	if e.bundle.ResourceType != "Bundle" || e.bundle.Type != "collection" || e.manifest.PatientID != id {
		t.Fatalf("bundle %s %s, manifest %+v", e.bundle.ResourceType, e.bundle.Type, e.manifest)
	}
	fhirtest.Validate(t, e.raw)

	var readings struct{ Items []struct{ ID string } }
	doc.do("GET", "/v1/patients/"+id+"/readings?limit=500", nil).decode(t, &readings)
	if got := len(e.resources("Observation")); got != len(readings.Items) || got == 0 {
		t.Errorf("%d Observations, the API lists %d readings", got, len(readings.Items))
	}
	for typ, least := range map[string]int{"Patient": 1, "CareTeam": 1, "Flag": 1, "MedicationRequest": 2,
		"MedicationAdministration": 1, "AuditEvent": 1} {
		if got := len(e.resources(typ)); got < least || e.manifest.Counts[typ] != got {
			t.Errorf("%d %s resources (manifest %d), want at least %d", got, typ, e.manifest.Counts[typ], least)
		}
	}
	texts, letter := map[string]bool{}, ""
	for _, c := range e.resources("Communication") {
		for _, p := range c["payload"].([]any) {
			part := p.(map[string]any)
			if s, ok := part["contentString"].(string); ok {
				texts[s] = true
			}
			if a, ok := part["contentAttachment"].(map[string]any); ok {
				letter = a["url"].(string)
			}
		}
	}
	if !texts["Feeling dizzy"] || !texts["My discharge letter"] {
		t.Errorf("Communications %v", texts)
	}
	sum := sha256.Sum256(pdfFile)
	if !bytes.Equal(e.files[letter], pdfFile) || len(e.manifest.Files) != 1 || e.manifest.Files[0].Path != letter ||
		e.manifest.Files[0].SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("attachment at %q: %d bytes; manifest %+v", letter, len(e.files[letter]), e.manifest.Files)
	}

	own := unzipExport(t, w.send(pat, "GET", "/v1/patients/"+id+"/export", "", nil))
	for _, c := range own.resources("Communication") {
		if strings.Contains(string(mustJSON(t, c)), "staff-only") {
			t.Errorf("the patient's own export holds a staff-only message: %v", c)
		}
	}
	exports := func() (n int) {
		if err := w.pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_entries WHERE action = 'patient.export'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := exports(); n != 2 {
		t.Errorf("%d patient.export audit entries after two exports", n)
	}
	for _, c := range []struct {
		who    client
		target string
		want   int
	}{
		{doc, id, http.StatusForbidden},
		{w.actors["device"], id, http.StatusForbidden},
		{pat, w.patient["B"], http.StatusNotFound},
		{w.admin, "not-a-uuid", http.StatusNotFound},
	} {
		wantProblem(t, w.send(c.who, "GET", "/v1/patients/"+c.target+"/export", "", nil), c.want)
	}
	if n := exports(); n != 2 {
		t.Errorf("%d patient.export audit entries after refused exports, want 2", n)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
