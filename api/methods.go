package api

import (
	"net/http"
	"strings"
)

// routedMethods are the methods a route may be registered with; HEAD is
// answered wherever GET is.
var routedMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}

// refuseMethod answers a request that reached a catch-all with 405 and
// Allow when its path is routed for other methods (DELETE /v1/alerts, say),
// and reports whether it did. A path routed for no method is left to the
// caller's 404.
func refuseMethod(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) bool {
	var allow []string
	for _, m := range routedMethods {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := mux.Handler(probe); pattern != "" && !catchAll(pattern) {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		return false
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeProblem(w, r, http.StatusMethodNotAllowed, "Method not allowed",
		r.Method+" is not supported here; the methods are "+strings.Join(allow, ", "), nil)
	return true
}

// catchAll reports whether pattern is one of the routes that answer a path
// nothing else routes.
func catchAll(pattern string) bool {
	return pattern == "/" || pattern == fhirBase || pattern == fhirBase+"/"
}
