package api

import (
	"context"
	"errors"
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

// FHIR writes: POST Observation and a transaction or batch Bundle, ingested
// through the engine per patient, and the retractions (entered-in-error) a
// Bundle may carry.

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
