package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/fhir"
	"github.com/tendhealth/tend/rpm"
)

// fhirBase is where the FHIR R4 interface is mounted.
const fhirBase = "/fhir/r4"

// fhirRoute is one row of the FHIR routing table: the router registers the
// pattern and the CapabilityStatement lists the interactions, so the two
// cannot disagree.
type fhirRoute struct {
	pattern      string
	handler      http.HandlerFunc
	interactions []fhir.Interaction
}

func (s *Server) fhirRoutes() []fhirRoute {
	count := fhir.SearchParam{Name: "_count", Type: "number", Doc: "page size, 1-500 (default 50)"}
	return []fhirRoute{
		{"POST " + fhirBase + "/Observation", s.fhirCreateObservation, []fhir.Interaction{{Resource: "Observation", Code: "create",
			Profile: fhir.VitalSignsProfile, Doc: "a vital-signs Observation becomes a reading (rules, alerts, audit)"}}},
		{"POST " + fhirBase, s.fhirBundle, []fhir.Interaction{
			{Code: "transaction", Doc: "a Bundle of POST Observation entries, stored all or nothing"},
			{Code: "batch", Doc: "a Bundle of POST Observation entries, each stored or rejected on its own"}}},
		{"GET " + fhirBase + "/Observation/{id}", s.fhirReadObservation, []fhir.Interaction{{Resource: "Observation", Code: "read",
			Profile: fhir.VitalSignsProfile}}},
		{"GET " + fhirBase + "/Observation", s.fhirSearchObservations, []fhir.Interaction{{Resource: "Observation", Code: "search-type",
			Profile: fhir.VitalSignsProfile, Doc: "newest first; follow the next link to page (stable under inserts)",
			SearchParams: []fhir.SearchParam{
				{Name: "patient", Type: "reference", Doc: "Patient/{id}; required unless the caller is a patient or device"},
				{Name: "code", Type: "token", Doc: "one LOINC code, optionally http://loinc.org|code"},
				{Name: "date", Type: "date", Doc: "ge, gt, le or lt; may be repeated for a range"},
				count}}}},
		{"GET " + fhirBase + "/Patient/{id}", s.fhirReadPatient, []fhir.Interaction{{Resource: "Patient", Code: "read"}}},
		{"GET " + fhirBase + "/Flag/{id}", s.fhirReadFlag, []fhir.Interaction{{Resource: "Flag", Code: "read",
			Doc: "an alert; active until resolved"}}},
		{"GET " + fhirBase + "/Flag", s.fhirSearchFlags, []fhir.Interaction{{Resource: "Flag", Code: "search-type",
			Doc: "alerts in the caller's scope, most urgent first",
			SearchParams: []fhir.SearchParam{
				{Name: "patient", Type: "reference", Doc: "Patient/{id}"},
				{Name: "status", Type: "token", Doc: "active (default) or inactive"},
				count}}}},
		{"GET " + fhirBase + "/Communication/{id}", s.fhirReadCommunication, []fhir.Interaction{{Resource: "Communication", Code: "read",
			Doc: "a message of a patient's thread with their care team, to its participants"}}},
		{"GET " + fhirBase + "/Communication", s.fhirSearchCommunications, []fhir.Interaction{{Resource: "Communication", Code: "search-type",
			Doc: "the messages of a patient's threads with their care team that the caller takes part in, newest first",
			SearchParams: []fhir.SearchParam{
				{Name: "patient", Type: "reference", Doc: "Patient/{id}; required unless the caller is a patient"},
				{Name: "sent", Type: "date", Doc: "ge, gt, le or lt; may be repeated for a range"},
				count}}}},
	}
}

// fhirInteractions lists every interaction of the routing table.
func fhirInteractions(routes []fhirRoute) []fhir.Interaction {
	var out []fhir.Interaction
	for _, r := range routes {
		out = append(out, r.interactions...)
	}
	return out
}

type fhirKey struct{}

// asFHIR marks a request as a FHIR one, so that every error about it —
// authentication and rate limits included — is an OperationOutcome.
func asFHIR(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), fhirKey{}, true)))
	})
}

func isFHIR(r *http.Request) bool { v, _ := r.Context().Value(fhirKey{}).(bool); return v }

const fhirJSON = "application/fhir+json"

func writeFHIR(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", fhirJSON)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	// A response Bundle writes itself without reflection when it can
	// (byte for byte what the encoder writes).
	if a, ok := v.(interface{ AppendJSON([]byte) ([]byte, bool) }); ok {
		if buf, ok := a.AppendJSON(nil); ok {
			w.WriteHeader(status)
			_, _ = w.Write(buf)
			return
		}
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeOutcome answers a FHIR error.
func writeOutcome(w http.ResponseWriter, e *fhir.Error) {
	writeFHIR(w, e.Status, fhir.OperationOutcome(e.Issues...))
}

// outcomeFromProblem turns an error the JSON API would answer as
// problem+json into the OperationOutcome of the same status.
func outcomeFromProblem(status int, title, detail string, fields []rpm.FieldError) *fhir.Error {
	code := map[int]string{
		http.StatusUnauthorized: "login", http.StatusForbidden: "forbidden", http.StatusNotFound: "not-found",
		http.StatusConflict: "conflict", http.StatusRequestEntityTooLarge: "too-costly", http.StatusTooManyRequests: "throttled",
		http.StatusUnprocessableEntity: "invalid", http.StatusBadRequest: "structure", http.StatusUnsupportedMediaType: "not-supported",
		http.StatusMethodNotAllowed: "not-supported",
	}[status]
	if code == "" {
		code = "exception"
	}
	e := &fhir.Error{Status: status}
	for _, f := range fields {
		e.Issues = append(e.Issues, fhir.Issue{Code: code, Expression: f.Field, Diagnostics: f.Field + " " + f.Reason})
	}
	if len(e.Issues) == 0 {
		e.Issues = []fhir.Issue{{Code: code, Diagnostics: strings.TrimSpace(title + ": " + detail)}}
	}
	return e
}

// fhirError answers err: FHIR errors as they are, engine errors mapped by
// writeError (which answers FHIR requests with an OperationOutcome).
func (s *Server) fhirError(w http.ResponseWriter, r *http.Request, err error) {
	var fe *fhir.Error
	if errors.As(err, &fe) {
		writeOutcome(w, fe)
		return
	}
	s.writeError(w, r, err)
}

// readFHIRBody reads a FHIR JSON body within the size limit, and refuses
// text that is not clean (NUL, invalid UTF-8, over its length limit) the way
// every body is refused, as an OperationOutcome whose expression starts at
// root (the resource type the body should hold).
func (s *Server) readFHIRBody(w http.ResponseWriter, r *http.Request, root string) ([]byte, error) {
	if err := checkContentType(r, fhirJSON, "application/json"); err != nil {
		return nil, &fhir.Error{Status: http.StatusUnsupportedMediaType, Issues: []fhir.Issue{{Code: "not-supported",
			Diagnostics: "send the body as UTF-8 JSON with Content-Type: application/fhir+json"}}}
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, &fhir.Error{Status: http.StatusRequestEntityTooLarge, Issues: []fhir.Issue{{Code: "too-costly",
			Diagnostics: fmt.Sprintf("the request body exceeds %d bytes", s.cfg.MaxBodyBytes)}}}
	}
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if _, err := sanitizeJSON(data); err != nil {
		var v *rpm.ValidationError
		if errors.As(err, &v) {
			issues := make([]fhir.Issue, len(v.Fields))
			for i, f := range v.Fields {
				expr := root
				if f.Field != "body" {
					expr = root + "." + f.Field
				}
				issues[i] = fhir.Issue{Code: "value", Expression: expr, Diagnostics: f.Field + " " + f.Reason}
			}
			return nil, fhir.Invalid(issues...)
		}
		var bad *badRequest
		if errors.As(err, &bad) {
			return nil, fhir.Malformed(fhir.Issue{Code: "structure", Expression: root, Diagnostics: bad.detail})
		}
		return nil, err
	}
	return data, nil
}

func toFHIRReading(x engine.Reading) fhir.Reading {
	out := fhir.Reading{ID: x.ID, PatientID: x.PatientID, Kind: x.Kind, ObservedAt: x.ObservedAt, ReceivedAt: x.ReceivedAt}
	if x.Value != nil {
		out.Value = *x.Value
	}
	if x.Systolic != nil {
		out.Systolic = *x.Systolic
	}
	if x.Diastolic != nil {
		out.Diastolic = *x.Diastolic
	}
	if x.SourceID != nil {
		out.SourceID = *x.SourceID
	}
	return out
}

func fhirNotFound(what string) *fhir.Error {
	return &fhir.Error{Status: http.StatusNotFound, Issues: []fhir.Issue{{Code: "not-found", Diagnostics: "no such " + what}}}
}

// fhirRead answers a read interaction. A malformed id and an object that does
// not exist (or is out of the caller's scope) get the same not-found
// OperationOutcome, so existence never leaks.
func (s *Server) fhirRead(w http.ResponseWriter, r *http.Request, resource string, idOK bool, get func() (any, error)) {
	if !idOK {
		writeOutcome(w, fhirNotFound(resource))
		return
	}
	res, err := get()
	if errors.Is(err, engine.ErrNotFound) {
		writeOutcome(w, fhirNotFound(resource))
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeFHIR(w, http.StatusOK, res)
}

func (s *Server) fhirReadObservation(w http.ResponseWriter, r *http.Request) {
	patient, reading, at, ok := fhir.ParseObservationID(r.PathValue("id"))
	s.fhirRead(w, r, "Observation", ok, func() (any, error) {
		x, err := s.eng.GetReading(r.Context(), actor(r), patient, at, reading)
		if err != nil {
			return nil, err
		}
		fr := toFHIRReading(x.Reading)
		fr.EnteredInError = !x.EnteredInErrorAt.IsZero()
		return fhir.Observation(fr), nil
	})
}

func (s *Server) fhirReadPatient(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(r.PathValue("id"))
	s.fhirRead(w, r, "Patient", err == nil, func() (any, error) {
		p, err := s.eng.GetPatient(r.Context(), actor(r), id)
		if err != nil {
			return nil, err
		}
		return fhir.PatientResource(fhir.Patient{ID: p.ID, DisplayName: p.DisplayName,
			ExternalID: deref(p.ExternalID), CreatedAt: p.CreatedAt}), nil
	})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func toFHIRAlert(a engine.Alert) fhir.Alert {
	return fhir.Alert{ID: a.ID, PatientID: a.PatientID, RuleID: a.RuleID, Urgency: a.Urgency, Status: a.Status, Title: a.Title,
		CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt, ResolvedAt: a.ResolvedAt}
}

func (s *Server) fhirReadFlag(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(r.PathValue("id"))
	s.fhirRead(w, r, "Flag", err == nil, func() (any, error) {
		a, err := s.eng.GetAlert(r.Context(), actor(r), id)
		if err != nil {
			return nil, err
		}
		return fhir.Flag(toFHIRAlert(a.Alert)), nil
	})
}

// metadata answers the CapabilityStatement, built once from the routing
// table.
func (s *Server) metadata(cs any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { writeFHIR(w, http.StatusOK, cs) }
}

// capabilities builds the CapabilityStatement from the routing table. The
// table is static, so an error is a programming mistake caught by the tests.
func (s *Server) capabilities(routes []fhirRoute) any {
	cs, err := fhir.CapabilityStatement(fhirInteractions(routes), "Tend", "v1", s.started)
	if err != nil {
		panic(fmt.Sprintf("fhir routing table: %v", err))
	}
	return cs
}
