package api_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestPatientParamsAPI(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	path := "/v1/patients/" + s.patientID + "/params"
	type paramsJSON struct {
		PatientID string                        `json:"patient_id"`
		Overrides map[string]map[string]float64 `json:"overrides"`
		Effective map[string]map[string]float64 `json:"effective"`
		UpdatedAt *time.Time                    `json:"updated_at"`
	}
	var p paramsJSON
	r := s.clinician.do("GET", path, nil)
	r.decode(t, &p)
	if r.status != http.StatusOK || len(p.Overrides) != 0 || p.Effective["bp-crisis"]["systolic_max"] != 180 || p.UpdatedAt != nil {
		t.Fatalf("get before: %d %s", r.status, r.body)
	}
	r = s.clinician.do("PUT", path, `{"bp-crisis": {"systolic_max": 200, "diastolic_max": 130}}`)
	r.decode(t, &p)
	if r.status != http.StatusOK || p.Overrides["bp-crisis"]["systolic_max"] != 200 || p.Effective["bp-crisis"]["diastolic_max"] != 130 || p.UpdatedAt == nil {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	// The patient's thresholds apply at once.
	at := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	r = s.device.do("POST", "/v1/patients/"+s.patientID+"/readings",
		fmt.Sprintf(`{"kind": "blood_pressure", "systolic": 190, "diastolic": 100, "unit": "mm[Hg]", "observed_at": %q}`, at))
	var res struct{ Alerts []any }
	r.decode(t, &res)
	if r.status != http.StatusCreated || len(res.Alerts) != 0 {
		t.Errorf("190/100 with a personal threshold of 200: %d %s", r.status, r.body)
	}

	p1 := wantProblem(t, s.clinician.do("PUT", path, `{"bp-crisis": {"systolic": 170}, "bp-nope": {"x": 1}}`), http.StatusUnprocessableEntity,
		"bp-crisis.systolic", "bp-nope")
	if len(p1.Errors) != 2 {
		t.Errorf("errors = %+v", p1.Errors)
	}
	wantProblem(t, s.clinician.do("PUT", path, `{"bp-crisis": {"systolic_max": "high"}}`), http.StatusUnprocessableEntity, "bp-crisis.systolic_max")
	wantProblem(t, s.clinician.do("PUT", path, `{"bp-crisis": 170}`), http.StatusUnprocessableEntity, "bp-crisis")
	wantProblem(t, s.clinician.do("PUT", path, `[1]`), http.StatusBadRequest)
	stranger := s.admin.as(s.userToken(t, map[string]any{"name": "Dr Stranger", "role": "clinician"}))
	wantProblem(t, stranger.do("PUT", path, `{}`), http.StatusNotFound)
	wantProblem(t, stranger.do("GET", path, nil), http.StatusNotFound)
	wantProblem(t, s.device.do("PUT", path, `{}`), http.StatusForbidden)
	// Admins may change them too; {} removes every override.
	var cleared paramsJSON
	r = s.admin.do("PUT", path, `{}`)
	r.decode(t, &cleared)
	if r.status != http.StatusOK || len(cleared.Overrides) != 0 || cleared.Effective["bp-crisis"]["systolic_max"] != 180 {
		t.Errorf("clear: %d %s", r.status, r.body)
	}
}
