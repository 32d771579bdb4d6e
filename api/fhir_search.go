package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/fhir"
	"github.com/tendhealth/tend/rpm"
)

// The FHIR searches (Observation, Flag, Communication) share their
// parameters — the patient, a date range, _count and the paging cursor —
// and their answer, a searchset Bundle: one reading of the query and one
// encoder serve them all, so each search says only what is its own.

// search is what a FHIR search reads from its query.
type search struct {
	Patient      uuid.UUID
	Since, Until time.Time
	Limit        int
	Cursor       string
}

// searchSpec says which parameters a search takes.
type searchSpec struct {
	// params are the search's parameters (beyond _count and _cursor);
	// any other is refused.
	params []string
	// patientRequired: patient defaults to the caller's own (patients and
	// devices) and is required; otherwise it is read only when given.
	patientRequired bool
	// own checks the search's own parameters, after the patient.
	own func(q url.Values) *fhir.Error
	// dates names the date range parameter (date, sent), if any.
	dates string
}

// parseSearch reads a search's query; the first problem found is the
// answer (an OperationOutcome), in the order the spec lists them.
func parseSearch(q url.Values, a engine.Actor, spec searchSpec) (search, *fhir.Error) {
	if fe := searchParams(q, spec.params...); fe != nil {
		return search{}, fe
	}
	out := search{Cursor: q.Get("_cursor")}
	var fe *fhir.Error
	if spec.patientRequired || q.Get("patient") != "" {
		if out.Patient, fe = patientParam(q, a); fe != nil {
			return out, fe
		}
	}
	if spec.patientRequired && out.Patient == uuid.Nil {
		return out, fhir.Malformed(fhir.Issue{Code: "required", Diagnostics: "patient is required"})
	}
	if spec.own != nil {
		if fe := spec.own(q); fe != nil {
			return out, fe
		}
	}
	if spec.dates != "" {
		if out.Since, out.Until, fe = rangeParams(spec.dates, q[spec.dates]); fe != nil {
			return out, fe
		}
	}
	if out.Limit, fe = searchCount(q); fe != nil {
		return out, fe
	}
	return out, nil
}

// writeSearchSet answers a search with a searchset Bundle of items; entry
// gives each item's resource and id; its fullUrl is the absolute URL
// publicBase/fhir/r4/{resource}/{id}.
func writeSearchSet[T any](s *Server, w http.ResponseWriter, r *http.Request, items []T, next, resource string, entry func(T) (any, string)) {
	res := make([]json.RawMessage, 0, len(items))
	urls := make([]string, 0, len(items))
	for _, x := range items {
		v, id := entry(x)
		raw, err := json.Marshal(v)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		res, urls = append(res, raw), append(urls, s.publicBase(r)+fhirBase+"/"+resource+"/"+id)
	}
	self, nextURL := nextLink(r, next)
	writeFHIR(w, http.StatusOK, fhir.SearchSet(self, nextURL, res, urls, s.cfg.Now()))
}

func (s *Server) fhirSearchObservations(w http.ResponseWriter, r *http.Request) {
	var kind rpm.Kind
	q, fe := parseSearch(r.URL.Query(), actor(r), searchSpec{params: []string{"patient", "code", "date"}, patientRequired: true,
		dates: "date", own: func(q url.Values) *fhir.Error {
			c := q.Get("code")
			if c == "" {
				return nil
			}
			sys, code, ok := strings.Cut(c, "|")
			if !ok {
				code, sys = sys, fhir.LOINC
			}
			k, known := fhir.KindOfLOINC(code)
			if sys != fhir.LOINC || !known {
				return fhir.Malformed(fhir.Issue{Code: "value", Diagnostics: "code must be one supported LOINC code"})
			}
			kind = k
			return nil
		}})
	if fe != nil {
		writeOutcome(w, fe)
		return
	}
	items, next, err := s.eng.ListReadings(r.Context(), actor(r), engine.ReadingFilter{PatientID: q.Patient, Kind: kind,
		Since: q.Since, Until: q.Until, Limit: q.Limit, Cursor: q.Cursor})
	if err != nil {
		s.searchError(w, r, err)
		return
	}
	// A search on a code also matches the codes accepted on input: keep only
	// readings of the kind (already filtered by the engine).
	writeSearchSet(s, w, r, items, next, "Observation", func(x engine.Reading) (any, string) {
		o := fhir.Observation(toFHIRReading(x))
		return o, *o.Id
	})
}

func (s *Server) fhirSearchFlags(w http.ResponseWriter, r *http.Request) {
	var statuses []string
	q, fe := parseSearch(r.URL.Query(), actor(r), searchSpec{params: []string{"patient", "status"},
		own: func(q url.Values) *fhir.Error {
			status := q.Get("status")
			if status == "" {
				status = "active"
			}
			var ok bool
			if statuses, ok = fhir.FlagStatuses(status); !ok {
				return fhir.Malformed(fhir.Issue{Code: "value", Diagnostics: "status must be active or inactive"})
			}
			return nil
		}})
	if fe != nil {
		writeOutcome(w, fe)
		return
	}
	items, next, err := s.eng.ListAlerts(r.Context(), actor(r), engine.AlertFilter{PatientID: q.Patient, Statuses: statuses,
		Limit: q.Limit, Cursor: q.Cursor})
	if err != nil {
		s.searchError(w, r, err)
		return
	}
	writeSearchSet(s, w, r, items, next, "Flag", func(x engine.Alert) (any, string) {
		return fhir.Flag(toFHIRAlert(x)), x.ID.String()
	})
}

// searchParams checks a search's query against the parameters it accepts
// (plus _count and the paging cursor _cursor); unknown ones are an error
// rather than silently ignored, so a client never reads a wider result
// than it asked for.
func searchParams(q url.Values, allowed ...string) *fhir.Error {
	for k := range q {
		if k == "_count" || k == "_cursor" || k == "_format" {
			continue
		}
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			// The parameter is not named back: a query string may hold
			// anything, health information included.
			return fhir.Malformed(fhir.Issue{Code: "not-supported", Diagnostics: "a search parameter is not supported; this search takes " +
				strings.Join(append(slices.Clone(allowed), "_count", "_cursor"), ", ")})
		}
	}
	return nil
}

func searchCount(q url.Values) (int, *fhir.Error) {
	c := q.Get("_count")
	if c == "" {
		return 50, nil
	}
	n, err := strconv.Atoi(c)
	if err != nil || n < 1 || n > 500 {
		return 0, fhir.Malformed(fhir.Issue{Code: "value", Diagnostics: "_count must be a whole number from 1 to 500"})
	}
	return n, nil
}

// patientParam reads patient=Patient/{id} (or a bare id).
func patientParam(q url.Values, a engine.Actor) (uuid.UUID, *fhir.Error) {
	p := q.Get("patient")
	if p == "" {
		return a.PatientID, nil // patient and device callers search their own
	}
	id, err := uuid.Parse(strings.TrimPrefix(p, "Patient/"))
	if err != nil {
		return uuid.Nil, fhir.Malformed(fhir.Issue{Code: "value", Diagnostics: "patient must be Patient/{id}"})
	}
	return id, nil
}

// rangeParams reads a date search parameter (date, sent) of the given name:
// ge…/gt…/le…/lt… into a half-open range. A date without a time stands for
// that whole UTC day.
func rangeParams(name string, vals []string) (since, until time.Time, fe *fhir.Error) {
	bad := func(why string) (time.Time, time.Time, *fhir.Error) {
		return time.Time{}, time.Time{}, fhir.Malformed(fhir.Issue{Code: "value", Diagnostics: name + " " + why})
	}
	for _, v := range vals {
		if len(v) < 2 {
			return bad("must start with ge, gt, le or lt")
		}
		prefix, raw := v[:2], v[2:]
		var start, end time.Time // the instant or day as [start, end)
		if len(raw) == len("2006-01-02") {
			d, err := time.Parse("2006-01-02", raw)
			if err != nil {
				return bad("must be a date (YYYY-MM-DD) or an RFC 3339 time")
			}
			start, end = d, d.AddDate(0, 0, 1)
		} else {
			t, err := time.Parse(time.RFC3339Nano, raw)
			if err != nil {
				return bad("must be a date (YYYY-MM-DD) or an RFC 3339 time")
			}
			start, end = t, t.Add(time.Microsecond)
		}
		switch prefix {
		case "ge":
			since = later(since, start)
		case "gt":
			since = later(since, end)
		case "lt":
			until = earlier(until, start)
		case "le":
			until = earlier(until, end)
		default:
			return bad("must start with ge, gt, le or lt (eq is not supported)")
		}
	}
	return since, until, nil
}

func later(a, b time.Time) time.Time {
	if a.IsZero() || b.After(a) {
		return b
	}
	return a
}

func earlier(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// nextLink is the request's URL with the next page's cursor.
func nextLink(r *http.Request, cursor string) (self, next string) {
	q := r.URL.Query()
	self = r.URL.Path + "?" + q.Encode()
	if cursor == "" {
		return self, ""
	}
	q.Set("_cursor", cursor)
	return self, r.URL.Path + "?" + q.Encode()
}

// searchError answers a search's engine error: a bad cursor or filter is a
// 400, an out-of-scope patient an empty-handed 404.
func (s *Server) searchError(w http.ResponseWriter, r *http.Request, err error) {
	var v *rpm.ValidationError
	if errors.As(err, &v) {
		fe := fhir.Malformed()
		for _, f := range v.Fields {
			fe.Issues = append(fe.Issues, fhir.Issue{Code: "value", Diagnostics: f.Field + " " + f.Reason})
		}
		writeOutcome(w, fe)
		return
	}
	if errors.Is(err, engine.ErrNotFound) {
		writeOutcome(w, fhirNotFound("Patient"))
		return
	}
	s.writeError(w, r, err)
}
