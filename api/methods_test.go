package api_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/tendhealth/tend/api"
)

// concretePath turns a route's path into one request path it serves: ids
// filled in, a subtree's root given a file name.
func concretePath(path string) string {
	var segs []string
	for seg := range strings.SplitSeq(path, "/") {
		switch {
		case seg == "{$}":
			seg = ""
		case strings.HasPrefix(seg, "{"):
			seg = "0190f3a2-7c1e-7a40-9d8e-0d5f3b2a1c11"
		}
		segs = append(segs, seg)
	}
	p := strings.Join(segs, "/")
	if strings.HasSuffix(p, "/") && p != "/" {
		p += "x"
	}
	return p
}

// routeMatches reports whether a route's path serves the request path p:
// segment by segment, {name} taking any one segment, a trailing slash any
// rest.
func routeMatches(route, p string) bool {
	if strings.HasSuffix(route, "/{$}") {
		return p == strings.TrimSuffix(route, "{$}")
	}
	if strings.HasSuffix(route, "/") {
		return strings.HasPrefix(p, route)
	}
	rs, ps := strings.Split(route, "/"), strings.Split(p, "/")
	if len(rs) != len(ps) {
		return false
	}
	for i := range rs {
		if !strings.HasPrefix(rs[i], "{") && rs[i] != ps[i] {
			return false
		}
	}
	return true
}

// TestWrongMethodIs405 walks the router: every known path answers each
// method it is not routed for with 405 and an Allow header naming the
// methods it is (HEAD wherever GET), problem+json on the API and an
// OperationOutcome on FHIR.
func TestWrongMethodIs405(t *testing.T) {
	t.Parallel()
	srv, err := api.New(api.Config{})
	if err != nil {
		t.Fatal(err)
	}
	type route struct{ method, path string }
	var routes []route
	for _, r := range srv.Routes() {
		method, path, ok := strings.Cut(r.Pattern, " ")
		if ok {
			routes = append(routes, route{method, path})
		}
	}
	checked := 0
	for _, r := range routes {
		p := concretePath(r.path)
		var allow []string
		for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} {
			if slices.ContainsFunc(routes, func(o route) bool {
				return (o.method == m || m == "HEAD" && o.method == "GET") && routeMatches(o.path, p)
			}) {
				allow = append(allow, m)
			}
		}
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
			if slices.Contains(allow, m) {
				continue
			}
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequest(m, p, nil))
			checked++
			if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != strings.Join(allow, ", ") {
				t.Errorf("%s %s: %d, Allow %q; want 405, Allow %q: %s", m, p, rec.Code, rec.Header().Get("Allow"),
					strings.Join(allow, ", "), rec.Body)
				continue
			}
			want := "application/problem+json"
			if strings.HasPrefix(p, "/fhir/") {
				want = "application/fhir+json"
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, want) {
				t.Errorf("%s %s: Content-Type %q, want %s", m, p, ct, want)
			}
		}
	}
	if checked < 100 {
		t.Fatalf("only %d wrong-method requests sent: the walk is broken", checked)
	}
	// A path nothing routes stays a 404.
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("DELETE", "/v1/nothing-here", nil))
	if rec.Code != http.StatusNotFound || rec.Header().Get("Allow") != "" {
		t.Errorf("DELETE /v1/nothing-here: %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
}
