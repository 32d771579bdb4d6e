package api_test

import (
	"net/http"
	"testing"
	"time"
)

// TestPendingRetakes: a crisis reading from the cuff asks for a retake; the
// patient's app (and the cuff, and the clinician) can list the open request
// with its kind and deadline; a scheduler may not, another patient finds
// nothing; the retake closes it.
func TestPendingRetakes(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	patient := s.admin.as(s.userToken(t, map[string]any{"name": "Sam Lee", "role": "patient", "patient_id": s.patientID}))
	scheduler := s.admin.as(s.userToken(t, map[string]any{"name": "Sched", "role": "scheduler"}))
	now := time.Now().UTC()
	bp := func(sys, dia int, ago time.Duration) map[string]any {
		return map[string]any{"kind": "blood_pressure", "systolic": sys, "diastolic": dia, "unit": "mm[Hg]",
			"observed_at": now.Add(-ago).Format(time.RFC3339)}
	}
	type pending struct {
		Items []struct {
			RuleID    string    `json:"rule_id"`
			Kind      string    `json:"kind"`
			ReadingID string    `json:"reading_id"`
			RetakeBy  time.Time `json:"retake_by"`
		}
	}
	path := "/v1/patients/" + s.patientID + "/retakes"
	var none pending
	patient.do("GET", path, nil).decode(t, &none)
	if len(none.Items) != 0 {
		t.Fatalf("before any reading: %+v", none.Items)
	}
	r := s.device.do("POST", "/v1/patients/"+s.patientID+"/readings", bp(185, 122, 3*time.Minute))
	if r.status != http.StatusCreated {
		t.Fatalf("reading: %d %s", r.status, r.body)
	}
	var first struct{ Readings []struct{ ID string } }
	r.decode(t, &first)
	for _, c := range []client{patient, s.device, s.clinician} {
		var got pending
		r := c.do("GET", path, nil)
		if r.status != http.StatusOK {
			t.Fatalf("list: %d %s", r.status, r.body)
		}
		r.decode(t, &got)
		if len(got.Items) != 1 || got.Items[0].RuleID != "bp-crisis" || got.Items[0].Kind != "blood_pressure" ||
			got.Items[0].ReadingID != first.Readings[0].ID || time.Until(got.Items[0].RetakeBy) < 3*time.Minute {
			t.Errorf("open requests: %+v", got.Items)
		}
	}
	wantProblem(t, scheduler.do("GET", path, nil), http.StatusForbidden)
	other := s.admin.as(s.userToken(t, map[string]any{"name": "Kim", "role": "clinician"}))
	wantProblem(t, other.do("GET", path, nil), http.StatusNotFound)
	if r := patient.do("POST", "/v1/patients/"+s.patientID+"/readings", bp(186, 121, 0)); r.status != http.StatusCreated {
		t.Fatalf("retake: %d %s", r.status, r.body)
	}
	var after pending
	patient.do("GET", path, nil).decode(t, &after)
	if len(after.Items) != 0 {
		t.Errorf("after the retake: %+v", after.Items)
	}
}
