package api_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestDirectory: staff search the staff directory by name or team over
// HTTP; a patient and a device get 403; an over-long q is a 422 naming it.
func TestDirectory(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	var page struct {
		Items []struct {
			Name  string
			Role  string
			Teams []struct{ Name, Role string }
		}
	}
	r := w.actors["scheduler"].do("GET", "/v1/directory?q=team+b", nil)
	r.decode(t, &page)
	if r.status != http.StatusOK || len(page.Items) != 2 {
		t.Fatalf("q=team b: %d %s", r.status, r.body)
	}
	for _, e := range page.Items {
		if len(e.Teams) != 1 || e.Teams[0].Name != "Team B" || (e.Name != "Dr B" && e.Name != "Scheduler B") {
			t.Errorf("entry %+v", e)
		}
	}
	for _, who := range []string{"patient", "device"} {
		wantProblem(t, w.actors[who].do("GET", "/v1/directory?q=Dr", nil), http.StatusForbidden)
	}
	wantProblem(t, w.actors["clinician"].do("GET", "/v1/directory?q="+strings.Repeat("x", 201), nil), http.StatusUnprocessableEntity, "q")
}
