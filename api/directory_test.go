package api_test

import (
	"net/http"
	"slices"
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

// TestDirectoryIsTheOrganisations: the directory lists the caller's
// organisation's staff only — not even an admin finds another
// organisation's people.
func TestDirectoryIsTheOrganisations(t *testing.T) {
	t.Parallel()
	w := newOrgsWorld(t)
	names := func(who, q string) []string {
		t.Helper()
		var page struct{ Items []struct{ Name string } }
		r := w.actors[who].do("GET", "/v1/directory?q="+q, nil)
		r.decode(t, &page)
		if r.status != http.StatusOK {
			t.Fatalf("%s q=%s: %d %s", who, q, r.status, r.body)
		}
		var out []string
		for _, e := range page.Items {
			out = append(out, e.Name)
		}
		return out
	}
	for _, who := range []string{"admin", "clinician", "scheduler"} {
		if got := names(who, "b"); slices.ContainsFunc(got, func(n string) bool { return strings.HasSuffix(n, " B") }) {
			t.Errorf("%s of organisation A finds %v", who, got)
		}
	}
	for _, who := range []string{"adminB", "clinicianB"} {
		got := names(who, "")
		if !slices.Contains(got, "Dr B") || !slices.Contains(got, "Admin B") || slices.Contains(got, "Dr A") || slices.Contains(got, "Admin") {
			t.Errorf("%s finds %v, want organisation B's staff only", who, got)
		}
	}
}
