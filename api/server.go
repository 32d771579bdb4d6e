// Package api is Tend's HTTP interface: routing, authentication,
// authorization, JSON codecs and problem+json errors. It is thin: each handler
// decodes, calls the engine, and encodes.
package api

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/tendhealth/tend/rpm"
)

// Config configures a Server.
type Config struct {
	// Engine runs the use cases. Required.
	Engine Engine
	// Logger receives request errors (ids only). Defaults to discarding.
	Logger *slog.Logger
	// Gatherer serves /metrics. Defaults to an empty registry.
	Gatherer prometheus.Gatherer
	// Registerer receives the HTTP metrics. Defaults to a new registry.
	Registerer prometheus.Registerer
	// MaxBodyBytes bounds request bodies. Defaults to 1 MiB.
	MaxBodyBytes int64
	// RateLimit is each user's sustained request rate per second. Defaults to
	// 200. Negative disables rate limiting.
	RateLimit float64
	// RateBurst is each user's burst. Defaults to 2 × RateLimit.
	RateBurst int
	// FailedAuthRate is how many failed authentications (missing, unknown,
	// revoked or expired tokens) a client address may make per second
	// before it is answered 429 without a lookup. Defaults to 5; negative
	// (or a negative RateLimit) disables it.
	FailedAuthRate float64
	// FailedAuthBurst is each address's burst of failed authentications.
	// Defaults to 20.
	FailedAuthBurst int
	// Ready reports whether the service can take traffic (database reachable,
	// migrations current). Defaults to always ready.
	Ready func(ctx context.Context) error
	// Now is the clock (rate limits, FHIR timestamps, latency, stream write
	// deadlines). Defaults to
	// time.Now.
	Now func() time.Time
	// JobsUI is the operators' job dashboard (River's UI), served to admins
	// under /riverui/. Nil: the path answers 404.
	JobsUI http.Handler
	// PublicURL is the server's public base URL as clients reach it (scheme,
	// host and any path prefix, such as https://tend.example.org): FHIR
	// Bundle entries' fullUrl are absolute URLs under it. Defaults to the
	// request's scheme and Host.
	PublicURL string
	// StreamHeartbeat is how often GET /v1/stream sends a comment line to an
	// idle client (and re-checks its token). Defaults to 15 seconds.
	StreamHeartbeat time.Duration
	// App configures the patient app at /app/ (app.go).
	App AppConfig
	// AllowedOrigins are the browser origins (scheme://host[:port]) that may
	// call /v1/ across origins, such as a patient app hosted apart from
	// tend (cors.go). Empty: same origin only.
	AllowedOrigins []string
}

// Server is Tend's HTTP API.
type Server struct {
	eng      Engine
	log      *slog.Logger
	cfg      Config
	handler  http.Handler
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec

	// patterns are the routes registered by routes(), in order, so tests
	// can hold the OpenAPI document, the matrices and the router together.
	patterns []Route

	limitersMu sync.Mutex
	limiters   map[uuid.UUID]*limiter
	failed     map[string]*limiter // failed authentications per client address

	// started dates the CapabilityStatement.
	started time.Time
}

type limiter struct {
	*rate.Limiter
	seen time.Time
}

// New builds a Server.
func New(cfg Config) (*Server, error) {
	cfg.Logger = cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.MaxBodyBytes = cmp.Or(cfg.MaxBodyBytes, 1<<20)
	cfg.StreamHeartbeat = cmp.Or(cfg.StreamHeartbeat, 15*time.Second)
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("public URL %q: must be an http or https URL without query or fragment", cfg.PublicURL)
		}
		cfg.PublicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	}
	cfg.RateLimit = cmp.Or(cfg.RateLimit, 200)
	cfg.RateBurst = cmp.Or(cfg.RateBurst, int(2*cfg.RateLimit))
	cfg.FailedAuthRate = cmp.Or(cfg.FailedAuthRate, 5)
	cfg.FailedAuthBurst = cmp.Or(cfg.FailedAuthBurst, 20)
	if err := ValidateAppConfig(cfg.App); err != nil {
		return nil, err
	}
	if cfg.Gatherer == nil {
		cfg.Gatherer = prometheus.NewRegistry()
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	s := &Server{
		eng:      cfg.Engine,
		log:      cfg.Logger.With("component", "api"),
		cfg:      cfg,
		limiters: map[uuid.UUID]*limiter{},
		failed:   map[string]*limiter{},
		started:  cfg.Now(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tend_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
	}
	for _, c := range []prometheus.Collector{s.requests, s.latency} {
		if err := cfg.Registerer.Register(c); err != nil {
			return nil, err
		}
	}
	s.handler = s.routes()
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// routes lists every endpoint in one place.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h http.HandlerFunc) {
		s.patterns = append(s.patterns, Route{Pattern: pattern, Authenticated: true})
		mux.Handle(pattern, s.instrument(pattern, s.authenticated(h)))
	}
	open := func(pattern string, h http.Handler) {
		s.patterns = append(s.patterns, Route{Pattern: pattern})
		mux.Handle(pattern, s.instrument(pattern, h))
	}

	open("GET /healthz", http.HandlerFunc(s.healthz))
	open("GET /readyz", http.HandlerFunc(s.readyz))
	open("GET /metrics", promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{}))

	handle("POST /v1/organisations", s.createOrganisation)
	handle("GET /v1/organisations", s.listOrganisations)
	handle("GET /v1/organisations/{id}", s.getOrganisation)
	handle("PATCH /v1/organisations/{id}", s.updateOrganisation)
	handle("GET /v1/organisations/{id}/logo", s.getOrganisationLogo)
	handle("PUT /v1/organisations/{id}/logo", s.putOrganisationLogo)
	handle("DELETE /v1/organisations/{id}/logo", s.deleteOrganisationLogo)
	handle("POST /v1/users", s.createUser)
	handle("GET /v1/users", s.listUsers)
	handle("GET /v1/directory", s.directory)
	handle("PATCH /v1/users/{id}", s.updateUser)
	handle("POST /v1/users/{id}/tokens", s.createToken)
	handle("GET /v1/users/{id}/tokens", s.listTokens)
	handle("DELETE /v1/tokens/{id}", s.revokeToken)
	handle("POST /v1/care-teams", s.createCareTeam)
	handle("GET /v1/care-teams", s.listCareTeams)
	handle("GET /v1/care-teams/{id}", s.getCareTeam)
	handle("PUT /v1/care-teams/{id}", s.updateCareTeam)
	handle("POST /v1/patients", s.createPatient)
	handle("GET /v1/patients", s.listPatients)
	handle("GET /v1/patients/{id}", s.getPatient)
	handle("PATCH /v1/patients/{id}", s.updatePatient)
	handle("GET /v1/patients/{id}/export", s.exportPatient)
	handle("POST /v1/patients/{id}/erase", s.erasePatient)
	handle("POST /v1/patients/{id}/restriction", s.restrictPatient)
	handle("DELETE /v1/patients/{id}/restriction", s.liftRestriction)
	handle("POST /v1/patients/{id}/readings", s.postReadings)
	handle("GET /v1/patients/{id}/readings", s.listReadings)
	handle("GET /v1/patients/{id}/retakes", s.listRetakes)
	handle("GET /v1/patients/{id}/params", s.getParams)
	handle("PUT /v1/patients/{id}/params", s.putParams)
	handle("DELETE /v1/patients/{id}/params", s.deleteParams)
	handle("POST /v1/patients/{id}/symptom-reports", s.postSymptomReport)
	handle("GET /v1/patients/{id}/symptom-reports", s.listSymptomReports)
	handle("POST /v1/patients/{id}/schedules", s.createSchedule)
	handle("GET /v1/patients/{id}/schedules", s.listSchedules)
	handle("GET /v1/patients/{id}/doses", s.listDoses)
	handle("GET /v1/patients/{id}/adherence", s.getAdherence)
	handle("GET /v1/schedules/{id}", s.getSchedule)
	handle("PATCH /v1/schedules/{id}", s.patchSchedule)
	handle("DELETE /v1/schedules/{id}", s.deleteSchedule)
	handle("POST /v1/doses/{id}/confirm", s.confirmDose)
	handle("GET /v1/rules", s.listRules)
	handle("POST /v1/rules", s.createRule)
	handle("GET /v1/rules/errors", s.listRuleErrors)
	handle("POST /v1/rules/backtest", s.backtest)
	handle("POST /v1/rules/simulate", s.simulate)
	handle("GET /v1/rules/{id}", s.getRule)
	handle("PUT /v1/rules/{id}", s.updateRule)
	handle("GET /v1/alerts", s.listAlerts)
	handle("GET /v1/alerts/{id}", s.getAlert)
	handle("POST /v1/alerts/{id}/ack", s.ackAlert)
	handle("POST /v1/alerts/{id}/snooze", s.snoozeAlert)
	handle("POST /v1/alerts/{id}/assign", s.assignAlert)
	handle("POST /v1/alerts/{id}/resolve", s.resolveAlert)
	handle("GET /v1/me", s.getMe)
	handle("POST /v1/me/devices", s.registerDevice)
	handle("GET /v1/me/devices", s.listDevices)
	handle("DELETE /v1/me/devices/{id}", s.deleteDevice)
	handle("GET /v1/me/presence", s.getPresence)
	handle("POST /v1/me/presence", s.setPresence)
	handle("POST /v1/me/e2ee-devices", s.registerE2EEDevice)
	handle("GET /v1/me/e2ee-devices", s.listE2EEDevices)
	handle("DELETE /v1/me/e2ee-devices/{id}", s.revokeE2EEDevice)
	handle("GET /v1/me/preferences", s.getPreferences)
	handle("PUT /v1/me/preferences", s.putPreferences)
	handle("GET /v1/audit", s.listAudit)
	handle("GET /v1/threads", s.listThreads)
	handle("POST /v1/threads", s.createThread)
	handle("GET /v1/threads/{id}", s.getThread)
	handle("GET /v1/threads/{id}/messages", s.listMessages)
	handle("POST /v1/threads/{id}/messages", s.postMessage)
	handle("POST /v1/threads/{id}/read", s.markRead)
	handle("POST /v1/threads/{id}/typing", s.typing)
	handle("GET /v1/threads/{id}/keys", s.threadKeys)
	handle("POST /v1/threads/{id}/encrypt", s.encryptThread)
	handle("POST /v1/threads/{id}/envelopes", s.postEnvelope)
	handle("POST /v1/care-teams/{id}/broadcasts", s.createBroadcast)
	handle("GET /v1/broadcasts/{id}", s.getBroadcast)
	handle("POST /v1/threads/{id}/attachments", s.uploadAttachment) // raw bytes up to the attachment limit (attachments.go)
	handle("GET /v1/attachments/{id}", s.getAttachment)
	handle("GET /v1/stream", s.stream) // Server-Sent Events (stream.go)
	handle("POST /v1/session", s.createSession)
	handle("DELETE /v1/session", s.deleteSession)

	// FHIR R4 and the API contract (fhir.go, openapi.go).
	fhirRoutes := s.fhirRoutes()
	for _, rt := range fhirRoutes {
		// Authenticated inside asFHIR, so that its errors are OperationOutcomes.
		s.patterns = append(s.patterns, Route{Pattern: rt.pattern, Authenticated: true, FHIR: true})
		mux.Handle(rt.pattern, s.instrument(rt.pattern, asFHIR(s.authenticated(rt.handler))))
	}
	open("GET "+fhirBase+"/metadata", asFHIR(s.metadata(s.capabilities(fhirRoutes))))
	fhirOther := asFHIR(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuseMethod(mux, w, r) { // 405 with Allow (methods.go)
			return
		}
		writeOutcome(w, fhirNotFound("endpoint"))
	}))
	open(fhirBase, fhirOther) // the base itself: a transaction is POST /fhir/r4
	open(fhirBase+"/", fhirOther)
	open("GET /openapi.json", http.HandlerFunc(s.openAPI))
	open("GET /docs/", http.HandlerFunc(s.docs))
	open("GET /{$}", http.HandlerFunc(s.consoleIndex)) // the web triage console (console.go)
	open("GET /console/", s.consoleAssets())
	open("GET /app/", s.appFiles()) // the patient app (app.go)
	open("GET /favicon.ico", http.HandlerFunc(s.favicon))
	// The job dashboard authenticates by its session cookie or a bearer
	// token (session.go); River's UI uses these methods.
	for _, m := range []string{"GET", "POST", "PUT", "PATCH"} {
		pattern := m + " " + jobsPrefix + "/"
		s.patterns = append(s.patterns, Route{Pattern: pattern, Authenticated: true})
		mux.Handle(pattern, s.instrument(pattern, http.HandlerFunc(s.jobsUI)))
	}

	open("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuseMethod(mux, w, r) {
			return
		}
		writeProblem(w, r, http.StatusNotFound, "Not found", "no such endpoint", nil)
	}))
	return s.withRequestID(s.cors(cleanRequest(mux)))
}

// Route is one registered endpoint, as routes() lists it.
type Route struct {
	// Pattern is the ServeMux pattern, "METHOD /path/{id}".
	Pattern string
	// Authenticated reports whether the route needs a bearer token.
	Authenticated bool
	// FHIR routes answer errors as OperationOutcome, not problem+json.
	FHIR bool
}

// Routes lists every registered endpoint, in registration order: the API's
// contract tests and documentation are built from it.
func (s *Server) Routes() []Route { return slices.Clone(s.patterns) }

// cleanRequest refuses paths and query strings that are not clean text before
// any handler sees them: a path with NUL or invalid UTF-8 names nothing (404);
// such a query parameter, or one longer than 1,000 characters, is a 422
// naming it; an undecodable query string is a 400.
func cleanRequest(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !utf8.ValidString(r.URL.Path) || strings.ContainsRune(r.URL.Path, 0) {
			writeProblem(w, r, http.StatusNotFound, "Not found", "no such resource", nil)
			return
		}
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			writeProblem(w, r, http.StatusBadRequest, "Malformed query", "the query string is not correctly percent-encoded", nil)
			return
		}
		var v rpm.ValidationError
		for _, k := range slices.Sorted(maps.Keys(q)) {
			name := k
			if !utf8.ValidString(k) || strings.ContainsRune(k, 0) {
				v.Add("query", "parameter names must be valid UTF-8 text without NUL characters")
				continue
			}
			for _, val := range q[k] {
				switch {
				case !utf8.ValidString(val):
					v.Add(name, "must be valid UTF-8 text")
				case strings.ContainsRune(val, 0):
					v.Add(name, "must not contain NUL characters")
				case len(val) > 1000:
					v.Add(name, "is longer than 1000 characters")
				}
			}
		}
		if len(v.Fields) > 0 {
			writeProblem(w, r, http.StatusUnprocessableEntity, "Invalid input", "one or more query parameters are invalid", v.Fields)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// statusRecorder captures the status code for metrics.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Server) instrument(route string, h http.Handler) http.Handler {
	counter := s.requests.MustCurryWith(prometheus.Labels{"route": route})
	observer := s.latency.WithLabelValues(route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.cfg.Now()
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		observer.Observe(s.cfg.Now().Sub(start).Seconds())
		counter.WithLabelValues(strconv.Itoa(cmp.Or(rec.status, http.StatusOK))).Inc()
	})
}

type ctxKey int

const (
	actorKey ctxKey = iota
	requestIDKey
)

// withRequestID takes a sane X-Request-Id from the client or makes one, and
// echoes it, so audit entries can be tied to requests.
func (s *Server) withRequestID(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = uuid.NewString()
		}
		w.Header().Set("X-Request-Id", id)
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			s.log.WarnContext(ctx, "not ready", "error", err)
			writeProblem(w, r, http.StatusServiceUnavailable, "Not ready", err.Error(), nil)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
