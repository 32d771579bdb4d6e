package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSymptomReportsAPI(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	patient := s.admin.as(s.userToken(t, map[string]any{"name": "Sam Lee", "role": "patient", "patient_id": s.patientID}))
	path := "/v1/patients/" + s.patientID + "/symptom-reports"
	type result struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Alerts []struct {
			ID, RuleID, Urgency, Title string
		} `json:"alerts"`
	}
	var res result
	r := patient.do("POST", path, `{"symptoms": [{"code": "chest_pain", "severity": 7}, {"code": "other", "severity": 2, "text": "tingling"}],
		"note": "started an hour ago"}`)
	r.decode(t, &res)
	if r.status != http.StatusCreated || res.ID == "" || len(res.Alerts) != 1 || res.Alerts[0].Urgency != "critical" || res.Alerts[0].Title == "" {
		t.Fatalf("report chest pain: %d %s", r.status, r.body)
	}
	// The clinician sees the alert in the queue and the report on the patient.
	r = s.clinician.do("GET", "/v1/alerts", nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), res.Alerts[0].ID) || !strings.Contains(string(r.body), `"rule_id":"chest-pain"`) {
		t.Errorf("triage queue: %d %s", r.status, r.body)
	}
	r = s.clinician.do("GET", path, nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"code":"chest_pain"`) || !strings.Contains(string(r.body), res.Alerts[0].ID) {
		t.Errorf("list reports: %d %s", r.status, r.body)
	}

	// A retry with the same Idempotency-Key is answered with the stored report.
	var first, again result
	body := `{"symptoms": [{"code": "headache", "severity": 3}]}`
	r = s.clinician.doWith("POST", path, body, map[string]string{"Idempotency-Key": "report-9"})
	r.decode(t, &first)
	if r.status != http.StatusCreated || first.Status != "created" || len(first.Alerts) != 0 {
		t.Fatalf("headache: %d %s", r.status, r.body)
	}
	r = s.clinician.doWith("POST", path, body, map[string]string{"Idempotency-Key": "report-9"})
	r.decode(t, &again)
	if r.status != http.StatusOK || again.Status != "duplicate" || again.ID != first.ID {
		t.Errorf("retry: %d %s", r.status, r.body)
	}

	wantProblem(t, patient.do("POST", path, `{"symptoms": [{"code": "chest_pain"}, {"code": "sneezing", "severity": 2.5}, {"code": "other", "severity": 1}]}`),
		http.StatusUnprocessableEntity, "symptoms[0].severity", "symptoms[1].code", "symptoms[1].severity", "symptoms[2].text")
	wantProblem(t, patient.do("POST", path, `{"symptoms": []}`), http.StatusUnprocessableEntity, "symptoms")
	wantProblem(t, patient.do("POST", path, `{"symptoms": [{"code": "cough", "severity": 1, "colour": "red"}]}`), http.StatusBadRequest)
	wantProblem(t, s.device.do("POST", path, `{"symptoms": [{"code": "cough", "severity": 1}]}`), http.StatusForbidden)
	stranger := s.admin.as(s.userToken(t, map[string]any{"name": "Dr Stranger", "role": "clinician"}))
	wantProblem(t, stranger.do("POST", path, `{"symptoms": [{"code": "cough", "severity": 1}]}`), http.StatusNotFound)
	wantProblem(t, stranger.do("GET", path, nil), http.StatusNotFound)

	// Nothing invalid was stored.
	var list struct{ Items []any }
	s.clinician.do("GET", path, nil).decode(t, &list)
	if len(list.Items) != 2 {
		t.Errorf("%d reports stored, want 2", len(list.Items))
	}
}

// doWith is do with extra request headers.
func (c client) doWith(method, path, body string, headers map[string]string) response {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// A symptom rule with ask, created through the API, makes a report ask the
// patient to measure: the answer lists the request (as an ingest lists its
// retakes) and no alert. The rule API keeps ask and retake.confirm and
// refuses them when invalid.
func TestSymptomReportAsksToMeasure(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	ask := `{"id": "test-cough-measure", "title": "Cough: measure SpO2", "symptom": "cough", "urgency": "low",
		"ask": {"kind": "spo2", "within": "20m"}}`
	confirm := `{"id": "test-spo2-very-low", "title": "SpO2 very low", "kind": "spo2", "urgency": "high",
		"when": "value < 85", "retake": {"within": "10m", "confirm": "value < 87"}}`
	for id, body := range map[string]string{"test-cough-measure": ask, "test-spo2-very-low": confirm} {
		if r := s.admin.do("POST", "/v1/rules", body); r.status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", id, r.status, r.body)
		}
		var one ruleJSON
		r := s.clinician.do("GET", "/v1/rules/"+id, nil)
		r.decode(t, &one)
		var def struct {
			Ask    *struct{ Kind, Within string } `json:"ask"`
			Retake *struct{ Confirm string }      `json:"retake"`
		}
		if err := json.Unmarshal(one.Definition, &def); err != nil {
			t.Fatal(err)
		}
		if (def.Ask == nil || def.Ask.Kind != "spo2" || def.Ask.Within != "20m") && (def.Retake == nil || def.Retake.Confirm != "value < 87") {
			t.Errorf("%s read back without its ask or retake.confirm: %s", id, one.Definition)
		}
	}
	wantProblem(t, s.admin.do("POST", "/v1/rules", strings.Replace(ask, `"spo2"`, `"oxygen"`, 1)),
		http.StatusUnprocessableEntity, "ask.kind")
	wantProblem(t, s.admin.do("POST", "/v1/rules", strings.Replace(confirm, "value < 87", "value <", 1)),
		http.StatusUnprocessableEntity, "retake.confirm")

	patient := s.admin.as(s.userToken(t, map[string]any{"name": "Sam Lee", "role": "patient", "patient_id": s.patientID}))
	start := time.Now()
	var res struct {
		ID      string `json:"id"`
		Alerts  []any  `json:"alerts"`
		Retakes []struct {
			RuleID    string    `json:"rule_id"`
			ReadingID string    `json:"reading_id"`
			RetakeBy  time.Time `json:"retake_by"`
			Kind      string    `json:"kind"`
		} `json:"retakes"`
	}
	r := patient.do("POST", "/v1/patients/"+s.patientID+"/symptom-reports", `{"symptoms": [{"code": "cough", "severity": 4}]}`)
	r.decode(t, &res)
	if r.status != http.StatusCreated || len(res.Alerts) != 0 {
		t.Fatalf("report a cough: %d %s", r.status, r.body)
	}
	found := false
	for _, rt := range res.Retakes {
		if rt.RuleID == "test-cough-measure" {
			found = rt.ReadingID == res.ID && rt.Kind == "spo2" &&
				!rt.RetakeBy.Before(start.Add(20*time.Minute)) && rt.RetakeBy.Before(time.Now().Add(21*time.Minute))
		}
	}
	if !found {
		t.Errorf("retakes do not hold the request to measure SpO2 within 20 minutes: %s", r.body)
	}
}
