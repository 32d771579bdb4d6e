package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// The reminders API end to end, every exchange checked against the OpenAPI
// document: schedules written by staff and read by the patient, pause and
// resume, field-named 422s, a dose confirmed by the patient, doses and
// adherence listed, a schedule deleted.
func TestRemindersAPI(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	patient := s.admin.as(s.userToken(t, map[string]any{"name": "Sam", "role": "patient", "patient_id": s.patientID}))
	chicago, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	soon := time.Now().In(chicago).Add(10 * time.Minute)
	base := "/v1/patients/" + s.patientID
	type scheduleJSON struct {
		ID         string   `json:"id"`
		Medication string   `json:"medication"`
		Times      []string `json:"times"`
		Paused     bool     `json:"paused"`
	}
	var sc scheduleJSON
	r := s.clinician.do("POST", base+"/schedules", map[string]any{"type": "medication", "medication": "Furosemide", "dose": "40 mg",
		"times": []string{soon.Format("15:04")}, "start_date": time.Now().In(chicago).Format(time.DateOnly)})
	r.decode(t, &sc)
	if r.status != http.StatusCreated || sc.ID == "" || sc.Medication != "Furosemide" {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	wantProblem(t, s.clinician.do("POST", base+"/schedules", map[string]any{"type": "medication", "medication": "X",
		"times": []string{"8:00", "08:00", "08:00"}, "days_of_week": []string{"someday"}, "start_date": "2026-02-30"}),
		http.StatusUnprocessableEntity, "times[0]", "times[2]", "days_of_week[0]", "start_date")
	wantProblem(t, s.clinician.do("POST", base+"/schedules", map[string]any{"type": "measurement", "kind": "mood",
		"times": []string{"08:00"}, "start_date": "2026-03-01", "grace_minutes": 5000}), http.StatusUnprocessableEntity, "kind", "grace_minutes")
	wantProblem(t, patient.do("POST", base+"/schedules", map[string]any{"type": "medication", "medication": "X",
		"times": []string{"08:00"}, "start_date": "2026-03-01"}), http.StatusForbidden)
	stranger := s.admin.as(s.userToken(t, map[string]any{"name": "Other scheduler", "role": "scheduler"}))
	wantProblem(t, stranger.do("GET", "/v1/schedules/"+sc.ID, nil), http.StatusNotFound)
	wantProblem(t, stranger.do("GET", base+"/schedules", nil), http.StatusNotFound)

	var list struct{ Items []scheduleJSON }
	r = patient.do("GET", base+"/schedules", nil)
	r.decode(t, &list)
	if r.status != http.StatusOK || len(list.Items) != 1 || list.Items[0].ID != sc.ID {
		t.Fatalf("patient's list: %d %s", r.status, r.body)
	}

	type doseJSON struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Time   string `json:"time"`
	}
	var doses struct{ Items []doseJSON }
	r = patient.do("GET", base+"/doses?status=pending", nil)
	r.decode(t, &doses)
	if r.status != http.StatusOK || len(doses.Items) != 2 || doses.Items[0].Time != soon.Format("15:04") {
		t.Fatalf("doses: %d %s", r.status, r.body)
	}
	wantProblem(t, patient.do("GET", base+"/doses?status=lost", nil), http.StatusUnprocessableEntity, "status")
	wantProblem(t, patient.do("GET", base+"/doses?since=yesterday", nil), http.StatusUnprocessableEntity, "since")

	var d doseJSON
	r = patient.do("POST", "/v1/doses/"+doses.Items[0].ID+"/confirm", map[string]any{"status": "taken"})
	r.decode(t, &d)
	if r.status != http.StatusOK || d.Status != "taken" {
		t.Fatalf("confirm: %d %s", r.status, r.body)
	}
	wantProblem(t, patient.do("POST", "/v1/doses/"+doses.Items[0].ID+"/confirm", map[string]any{"status": "skipped"}), http.StatusConflict)
	wantProblem(t, patient.do("POST", "/v1/doses/"+doses.Items[1].ID+"/confirm", map[string]any{"status": "maybe"}),
		http.StatusUnprocessableEntity, "status")
	wantProblem(t, s.device.do("POST", "/v1/doses/"+doses.Items[1].ID+"/confirm", map[string]any{"status": "taken"}), http.StatusForbidden)

	// Pause: future doses go; resume with new times: they come back.
	r = s.clinician.do("PATCH", "/v1/schedules/"+sc.ID, map[string]any{"paused": true})
	r.decode(t, &sc)
	if r.status != http.StatusOK || !sc.Paused {
		t.Fatalf("pause: %d %s", r.status, r.body)
	}
	r = patient.do("GET", base+"/doses?status=pending", nil)
	r.decode(t, &doses)
	if len(doses.Items) != 0 {
		t.Errorf("pending doses while paused: %s", r.body)
	}
	wantProblem(t, s.clinician.do("PATCH", "/v1/schedules/"+sc.ID, map[string]any{"times": []string{"24:00"}}), http.StatusUnprocessableEntity, "times[0]")
	wantProblem(t, s.clinician.do("PATCH", "/v1/schedules/"+sc.ID, map[string]any{"times": "08:00"}), http.StatusUnprocessableEntity, "times")
	wantProblem(t, s.clinician.do("PATCH", "/v1/schedules/"+sc.ID, map[string]any{"frequency": 2}), http.StatusBadRequest, "frequency")
	wantProblem(t, patient.do("PATCH", "/v1/schedules/"+sc.ID, map[string]any{"paused": false}), http.StatusForbidden)
	r = s.clinician.do("PATCH", "/v1/schedules/"+sc.ID, map[string]any{"paused": false, "times": []string{"07:00", "19:00"}})
	r.decode(t, &sc)
	if r.status != http.StatusOK || sc.Paused || len(sc.Times) != 2 || sc.Medication != "Furosemide" {
		t.Fatalf("resume: %d %s", r.status, r.body)
	}
	r = s.clinician.do("GET", base+"/doses?status=pending", nil)
	r.decode(t, &doses)
	if len(doses.Items) < 3 {
		t.Errorf("pending doses after resuming twice daily: %s", r.body)
	}
	for _, it := range doses.Items {
		if it.Time != "07:00" && it.Time != "19:00" {
			t.Errorf("dose at %s after the edit", it.Time)
		}
	}

	var adh struct {
		Total struct {
			Due, Taken int
			Percentage *float64
		}
		Schedules []struct {
			ScheduleID string `json:"schedule_id"`
		}
	}
	r = s.clinician.do("GET", base+"/adherence?since="+time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), nil)
	r.decode(t, &adh)
	// The taken dose is due in ten minutes: adherence counts doses whose time
	// has come (the engine tests move the clock past it).
	if r.status != http.StatusOK || adh.Total.Due != 0 || adh.Total.Percentage != nil || adh.Schedules == nil {
		t.Errorf("adherence: %d %s", r.status, r.body)
	}
	wantProblem(t, s.clinician.do("GET", base+"/adherence?since=2999-01-01T00:00:00Z", nil), http.StatusUnprocessableEntity, "since")

	if r = s.clinician.do("DELETE", "/v1/schedules/"+sc.ID, nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	wantProblem(t, s.clinician.do("GET", "/v1/schedules/"+sc.ID, nil), http.StatusNotFound)
	r = s.clinician.do("GET", base+"/doses?status=pending", nil)
	if !strings.Contains(string(r.body), `"items":[]`) {
		t.Errorf("pending doses after delete: %s", r.body)
	}
}
