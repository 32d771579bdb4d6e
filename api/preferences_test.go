package api_test

import (
	"net/http"
	"testing"
)

func TestPreferences(t *testing.T) {
	t.Parallel()
	s := newSetup(t)

	r := s.clinician.do("GET", "/v1/me/preferences", nil)
	if r.status != http.StatusOK || string(r.body) != `{"timezone":null,"quiet_hours":null}`+"\n" {
		t.Fatalf("GET before any PUT: %d %s", r.status, r.body)
	}
	body := `{"timezone": "America/Chicago", "quiet_hours": {"start": "22:00", "end": "07:00"}}`
	r = s.clinician.do("PUT", "/v1/me/preferences", body)
	want := `{"timezone":"America/Chicago","quiet_hours":{"start":"22:00","end":"07:00"}}` + "\n"
	if r.status != http.StatusOK || string(r.body) != want {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	if r = s.clinician.do("GET", "/v1/me/preferences", nil); string(r.body) != want {
		t.Errorf("GET after PUT: %s, want %s", r.body, want)
	}

	// Each user has their own; a device or patient user may set them too.
	if r = s.device.do("GET", "/v1/me/preferences", nil); r.status != http.StatusOK || string(r.body) != `{"timezone":null,"quiet_hours":null}`+"\n" {
		t.Errorf("another user's preferences: %d %s", r.status, r.body)
	}

	for _, tc := range []struct {
		body   string
		fields []string
	}{
		{`{"timezone": "Mars/Olympus_Mons"}`, []string{"timezone"}},
		{`{"timezone": ""}`, []string{"timezone"}},
		{`{"quiet_hours": {"start": "22:00", "end": "07:00"}}`, []string{"timezone"}},
		{`{"timezone": "UTC", "quiet_hours": {"start": "10pm", "end": "24:00"}}`, []string{"quiet_hours.start", "quiet_hours.end"}},
		{`{"timezone": "UTC", "quiet_hours": {"start": "07:00", "end": "07:00"}}`, []string{"quiet_hours.end"}},
		{`{"timezone": "UTC", "quiet_hours": {}}`, []string{"quiet_hours.start", "quiet_hours.end"}},
		{`{"timezone": "UTC", "quiet_hours": "22:00-07:00"}`, []string{"quiet_hours"}},
	} {
		wantProblem(t, s.clinician.do("PUT", "/v1/me/preferences", tc.body), http.StatusUnprocessableEntity, tc.fields...)
	}
	wantProblem(t, s.clinician.do("PUT", "/v1/me/preferences", `{"timezone": "UTC", "dnd": true}`), http.StatusBadRequest)
	if r = s.clinician.do("GET", "/v1/me/preferences", nil); string(r.body) != want {
		t.Errorf("a refused PUT changed the preferences: %s", r.body)
	}

	// null clears.
	r = s.clinician.do("PUT", "/v1/me/preferences", `{"timezone": "America/Chicago", "quiet_hours": null}`)
	if r.status != http.StatusOK || string(r.body) != `{"timezone":"America/Chicago","quiet_hours":null}`+"\n" {
		t.Errorf("clearing quiet hours: %d %s", r.status, r.body)
	}
	if r = s.clinician.as("").do("GET", "/v1/me/preferences", nil); r.status != http.StatusUnauthorized {
		t.Errorf("unauthenticated GET: %d", r.status)
	}
}
