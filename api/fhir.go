package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

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

func (s *Server) fhirCreateObservation(w http.ResponseWriter, r *http.Request) {
	data, err := s.readFHIRBody(w, r, "Observation")
	if err != nil {
		s.fhirError(w, r, err)
		return
	}
	now := s.cfg.Now()
	in, err := fhir.DecodeObservation(data, now, "Observation")
	if err != nil {
		s.fhirError(w, r, err)
		return
	}
	results := s.ingestFHIR(r.Context(), actor(r), []fhir.Inbound{in}, []string{"Observation"}, true, now)
	res := results[0]
	if res.Err != nil {
		if res.Err.Status == http.StatusInternalServerError {
			s.writeError(w, r, errors.New(res.Err.Issues[0].Diagnostics))
			return
		}
		writeOutcome(w, res.Err)
		return
	}
	w.Header().Set("Location", fhirBase+"/Observation/"+*res.Resource.Id)
	w.Header().Set("Last-Modified", now.UTC().Format(http.TimeFormat))
	writeFHIR(w, res.Status, res.Resource)
}

func (s *Server) fhirBundle(w http.ResponseWriter, r *http.Request) {
	data, err := s.readFHIRBody(w, r, "Bundle")
	if err != nil {
		s.fhirError(w, r, err)
		return
	}
	now := s.cfg.Now()
	b, decoded, err := fhir.ReadBundle(data, now)
	if err != nil {
		s.fhirError(w, r, err)
		return
	}
	n := len(decoded)
	results := make([]fhir.Result, n)
	ins := make([]fhir.Inbound, 0, n)
	roots := make([]string, 0, n)
	at := make([]int, 0, n) // entry index of each decoded inbound
	var failed []fhir.Issue
	status := 0
	for i, d := range decoded {
		if fe := d.Err; fe != nil {
			results[i] = fhir.Result{Status: fe.Status, Err: fe}
			failed, status = append(failed, fe.Issues...), cmpStatus(status, fe.Status)
			continue
		}
		ins, roots, at = append(ins, d.In), append(roots, "Bundle.entry["+strconv.Itoa(i)+"].resource"), append(at, i)
	}
	if b.Transaction && len(failed) > 0 {
		writeOutcome(w, &fhir.Error{Status: status, Issues: failed})
		return
	}
	for k, res := range s.ingestFHIR(r.Context(), actor(r), ins, roots, b.Transaction, now) {
		if b.Transaction && res.Err != nil {
			if res.Err.Status == http.StatusInternalServerError {
				s.writeError(w, r, errors.New(res.Err.Issues[0].Diagnostics))
				return
			}
			writeOutcome(w, res.Err)
			return
		}
		results[at[k]] = res
	}
	out, err := fhir.ResponseBundle(b.Transaction, results, now)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out.SetBase(s.publicBase(r) + fhirBase)
	writeFHIR(w, http.StatusOK, out)
}

// cmpStatus keeps the first error status of a transaction.
func cmpStatus(have, next int) int {
	if have != 0 {
		return have
	}
	return next
}

// ingestFHIR stores decoded Observations: grouped by patient, each group one
// engine ingest; with atomic, every group in one transaction (the first
// failure fails all, and results then hold that failure in every entry).
// Errors of unexpected kinds come back as a 500 result.
func (s *Server) ingestFHIR(ctx context.Context, a engine.Actor, ins []fhir.Inbound, roots []string, atomic bool, now time.Time) []fhir.Result {
	b := &fhirIngest{s: s, ins: ins, roots: roots, now: now, results: make([]fhir.Result, len(ins))}
	known, err := b.resolveSubjects(ctx, a)
	if err != nil {
		return fillResults(b.results, internalResult(err))
	}
	groups, retract, ok := b.partition(known, atomic)
	if !ok {
		return b.results
	}
	if len(retract.idx) > 0 {
		if atomic && len(groups) > 0 {
			return fillResults(b.results, fhir.Result{Status: http.StatusUnprocessableEntity, Err: fhir.Invalid(fhir.Issue{
				Code: "not-supported", Expression: roots[retract.idx[0]] + ".status",
				Diagnostics: "a transaction may retract readings (entered-in-error) or record new ones, not both"})})
		}
		if !s.retractFHIR(ctx, a, ins, roots, retract.idx, retract.patients, atomic, b.results) {
			return b.results
		}
	}
	if atomic {
		if len(groups) > 0 {
			b.ingestAll(ctx, a, groups)
		}
		return b.results
	}
	b.ingestEach(ctx, a, groups)
	return b.results
}

// fhirIngest is one request's decoded Observations on their way to the
// engine: roots name each entry in issues, results collect one answer per
// entry.
type fhirIngest struct {
	s       *Server
	ins     []fhir.Inbound
	roots   []string
	now     time.Time
	results []fhir.Result
}

// patientGroup is the entries (indexes in ins) that record readings of one
// patient: one engine ingest request.
type patientGroup struct {
	patient uuid.UUID
	idx     []int
}

// retractions is the entries with status entered-in-error and their
// patients.
type retractions struct {
	idx      []int
	patients []uuid.UUID
}

// resolveSubjects resolves, in one query, the subjects given by external_id.
func (b *fhirIngest) resolveSubjects(ctx context.Context, a engine.Actor) (map[string]uuid.UUID, error) {
	var exts []string
	for _, in := range b.ins {
		if in.Subject.ExternalID != "" {
			exts = append(exts, in.Subject.ExternalID)
		}
	}
	return b.s.eng.ResolveExternalIDs(ctx, a, exts)
}

// partition puts each entry with a known subject in its patient's group (in
// order of first appearance) or among the retractions; an unknown subject
// answers 404. It reports false when atomic and a subject is unknown (every
// result then holds that 404).
func (b *fhirIngest) partition(known map[string]uuid.UUID, atomic bool) ([]*patientGroup, retractions, bool) {
	var groups []*patientGroup
	var retract retractions
	byPatient := map[uuid.UUID]*patientGroup{}
	for i, in := range b.ins {
		pid := in.Subject.PatientID
		if in.Subject.ExternalID != "" {
			id, ok := known[in.Subject.ExternalID]
			if !ok {
				b.results[i] = fhir.Result{Status: http.StatusNotFound, Err: b.notFound(i)}
				if atomic {
					fillResults(b.results, b.results[i])
					return nil, retractions{}, false
				}
				continue
			}
			pid = id
		}
		if in.Retracts() {
			retract.idx = append(retract.idx, i)
			retract.patients = append(retract.patients, pid)
			continue
		}
		g := byPatient[pid]
		if g == nil {
			g = &patientGroup{patient: pid}
			byPatient[pid] = g
			groups = append(groups, g)
		}
		g.idx = append(g.idx, i)
	}
	return groups, retract, true
}

// notFound is the 404 of entry i whose subject is not a patient in scope.
func (b *fhirIngest) notFound(i int) *fhir.Error {
	return &fhir.Error{Status: http.StatusNotFound, Issues: []fhir.Issue{{Code: "not-found", Expression: b.roots[i] + ".subject",
		Diagnostics: "no such patient in your scope"}}}
}

// request is the engine ingest request of group g.
func (b *fhirIngest) request(g *patientGroup) engine.IngestRequest {
	req := engine.IngestRequest{PatientID: g.patient, Batch: true}
	for _, i := range g.idx {
		req.Readings = append(req.Readings, b.ins[i].Reading)
	}
	return req
}

// ingestAll records every group in one engine transaction: the first
// failure answers every entry.
func (b *fhirIngest) ingestAll(ctx context.Context, a engine.Actor, groups []*patientGroup) {
	reqs := make([]engine.IngestRequest, len(groups))
	for k, g := range groups {
		reqs[k] = b.request(g)
	}
	out, err := b.s.eng.IngestAll(ctx, a, reqs)
	if err != nil {
		g := groups[0]
		var re *engine.RequestError
		if errors.As(err, &re) && re.Index < len(groups) {
			g = groups[re.Index]
		}
		fillResults(b.results, b.groupError(g, err))
		return
	}
	for k, g := range groups {
		b.stored(g, out[k])
	}
}

// ingestEach records each group on its own: a failure answers the entries
// of its group only.
func (b *fhirIngest) ingestEach(ctx context.Context, a engine.Actor, groups []*patientGroup) {
	for _, g := range groups {
		res, err := b.s.eng.Ingest(ctx, a, b.request(g))
		if err != nil {
			r := b.groupError(g, err)
			for _, i := range g.idx {
				b.results[i] = r
			}
			continue
		}
		b.stored(g, res)
	}
}

// groupError answers every entry of g with err, naming the failing
// entry's elements when the error says which reading it was.
func (b *fhirIngest) groupError(g *patientGroup, err error) fhir.Result {
	var v *rpm.ValidationError
	switch {
	case errors.Is(err, engine.ErrNotFound):
		return fhir.Result{Status: http.StatusNotFound, Err: b.notFound(g.idx[0])}
	case errors.Is(err, engine.ErrForbidden):
		return fhir.Result{Status: http.StatusForbidden, Err: &fhir.Error{Status: http.StatusForbidden,
			Issues: []fhir.Issue{{Code: "forbidden", Diagnostics: "your role may not record observations"}}}}
	case errors.As(err, &v):
		return b.invalid(g, v)
	}
	return internalResult(err)
}

// invalid is the 422 of a group whose readings the engine refused: each
// field error is named by the FHIR element of the entry it is about (the
// group's first entry when the field does not say).
func (b *fhirIngest) invalid(g *patientGroup, v *rpm.ValidationError) fhir.Result {
	fe := &fhir.Error{Status: http.StatusUnprocessableEntity}
	for _, f := range v.Fields {
		k := 0
		if n, ok := readingIndex(f.Field); ok && n < len(g.idx) {
			k = n
		}
		i := g.idx[k]
		one := b.ins[i].Issues(&rpm.ValidationError{Fields: []rpm.FieldError{f}}).(*fhir.Error)
		for _, is := range one.Issues {
			is.Expression = b.roots[i] + strings.TrimPrefix(is.Expression, "Observation")
			fe.Issues = append(fe.Issues, is)
		}
	}
	return fhir.Result{Status: fe.Status, Err: fe}
}

// stored answers each entry of g with the Observation as stored: 201, or
// 200 when it was a duplicate of a stored reading.
func (b *fhirIngest) stored(g *patientGroup, res engine.IngestResult) {
	for k, i := range g.idx {
		rs := res.Readings[k]
		m, _ := rpm.Normalize(b.ins[i].Reading, b.now)
		obs := fhir.Observation(fhir.Reading{ID: rs.ID, PatientID: g.patient, Kind: m.Kind, Value: m.Value, Systolic: m.Systolic,
			Diastolic: m.Diastolic, ObservedAt: m.ObservedAt.Truncate(time.Microsecond), ReceivedAt: b.now, SourceID: m.SourceID})
		status := http.StatusCreated
		if rs.Status == "duplicate" {
			status = http.StatusOK
		}
		b.results[i] = fhir.Result{Status: status, Resource: &obs}
	}
}

// retractFHIR applies the entries that retract a stored reading (status
// entered-in-error): with atomic all in one engine call, else each on its
// own. It reports false when atomic and the retraction failed (every result
// then holds the failure).
func (s *Server) retractFHIR(ctx context.Context, a engine.Actor, ins []fhir.Inbound, roots []string, idx []int, patients []uuid.UUID,
	atomic bool, results []fhir.Result) bool {
	fail := func(i int, err error) fhir.Result {
		switch {
		case errors.Is(err, engine.ErrNoStoredReading):
			return fhir.Result{Status: http.StatusUnprocessableEntity, Err: fhir.Invalid(fhir.Issue{Code: "business-rule",
				Expression:  roots[i] + ".identifier",
				Diagnostics: "entered-in-error must name a stored reading of this patient and code by its identifier; none matches"})}
		case errors.Is(err, engine.ErrNotFound):
			return fhir.Result{Status: http.StatusNotFound, Err: &fhir.Error{Status: http.StatusNotFound, Issues: []fhir.Issue{{
				Code: "not-found", Expression: roots[i] + ".subject", Diagnostics: "no such patient in your scope"}}}}
		case errors.Is(err, engine.ErrForbidden):
			return fhir.Result{Status: http.StatusForbidden, Err: &fhir.Error{Status: http.StatusForbidden,
				Issues: []fhir.Issue{{Code: "forbidden", Diagnostics: "your role may not retract observations"}}}}
		}
		return internalResult(err)
	}
	done := func(i int, x engine.RetractedReading) {
		fr := toFHIRReading(x.Reading)
		fr.EnteredInError = true
		obs := fhir.Observation(fr)
		results[i] = fhir.Result{Status: http.StatusOK, Resource: &obs}
	}
	ask := func(k int) engine.Retraction {
		in := ins[idx[k]]
		return engine.Retraction{PatientID: patients[k], Kind: in.Reading.Kind, SourceID: in.Reading.SourceID}
	}
	if atomic {
		rs := make([]engine.Retraction, len(idx))
		for k := range idx {
			rs[k] = ask(k)
		}
		out, err := s.eng.RetractReadings(ctx, a, rs)
		if err != nil {
			at := idx[0]
			var re *engine.RequestError
			if errors.As(err, &re) && re.Index < len(idx) {
				at = idx[re.Index]
			}
			fillResults(results, fail(at, err))
			return false
		}
		for k, i := range idx {
			done(i, out[k])
		}
		return true
	}
	for k, i := range idx {
		out, err := s.eng.RetractReadings(ctx, a, []engine.Retraction{ask(k)})
		if err != nil {
			results[i] = fail(i, err)
			continue
		}
		done(i, out[0])
	}
	return true
}

var readingIndexRE = regexp.MustCompile(`^readings\[(\d+)\]\.`)

func readingIndex(field string) (int, bool) {
	m := readingIndexRE.FindStringSubmatch(field)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil
}

func internalResult(err error) fhir.Result {
	return fhir.Result{Status: http.StatusInternalServerError, Err: &fhir.Error{Status: http.StatusInternalServerError,
		Issues: []fhir.Issue{{Code: "exception", Diagnostics: err.Error()}}}}
}

func fillResults(results []fhir.Result, r fhir.Result) []fhir.Result {
	for i := range results {
		results[i] = r
	}
	return results
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
