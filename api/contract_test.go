package api

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

func loadContract(t testing.TB) *openapi3.T {
	t.Helper()
	defineFormats() // before any validation reads kin-openapi's format registry
	b, err := OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the OpenAPI document is invalid: %v", err)
	}
	return doc
}

// TestOpenAPICoversRoutes holds the document and the router to each other:
// every /v1 and operations route has an operation, and every operation a
// route.
func TestOpenAPICoversRoutes(t *testing.T) {
	t.Parallel()
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	doc := loadContract(t)
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	var routed []string
	for _, p := range s.patterns {
		method, path, ok := strings.Cut(p.Pattern, " ")
		if !ok || strings.HasPrefix(path, fhirBase) || path == "/openapi.json" || path == "/docs/" ||
			path == "/{$}" || path == "/console/" || path == "/favicon.ico" || path == "/riverui/" {
			continue // FHIR is described by its CapabilityStatement; the console's files and the job dashboard are no API
		}
		routed = append(routed, method+" "+path)
	}
	for _, r := range routed {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s has no operation in the OpenAPI document", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(routed, d) {
			t.Errorf("OpenAPI operation %s has no route", d)
		}
	}
	if len(routed) < 20 {
		t.Fatalf("only %d routes recorded", len(routed))
	}
}

// contract validates every request and response passing through it against
// the OpenAPI document (the JSON API only); the API tests run their traffic
// through it.
type contract struct {
	t      testing.TB
	next   http.Handler
	router routers.Router
}

// defineFormats registers kin-openapi's string formats once: its registry is
// package state, and the API tests run in parallel.
var defineFormats = sync.OnceFunc(func() {
	openapi3.DefineStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`))
})

// CheckContract wraps h so that each /v1 exchange is validated.
func CheckContract(t testing.TB, h http.Handler) http.Handler {
	defineFormats()
	doc := loadContract(t)
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &contract{t: t, next: h, router: r}
}

func (c *contract) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/v1/") {
		c.next.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := httptest.NewRecorder()
	c.next.ServeHTTP(rec, r)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())

	req := r.Clone(context.Background())
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.URL.Scheme, req.URL.Host = "http", r.Host
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		c.t.Errorf("contract: %s %s is not in the OpenAPI document: %v", r.Method, r.URL.Path, err)
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	// Requests the API rejects (4xx) are often invalid on purpose; their
	// answers are still checked.
	if rec.Code < 400 {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			c.t.Errorf("contract: request %s %s: %s", r.Method, route.Path, redact(err))
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: rec.Code, Header: rec.Header(),
		Body: io.NopCloser(bytes.NewReader(rec.Body.Bytes())), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		c.t.Errorf("contract: response %d to %s %s: %s", rec.Code, r.Method, route.Path, redact(err))
	}
}

// redact keeps the first line of a validation error: kin-openapi quotes
// the offending values below it.
func redact(err error) string {
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return msg
}
