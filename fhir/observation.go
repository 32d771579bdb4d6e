package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/tendhealth/tend/rpm"
)

// Subject names the patient an inbound Observation is about: by Tend id
// (subject.reference "Patient/{id}") or by external_id
// (subject.identifier.value).
type Subject struct {
	PatientID  uuid.UUID
	ExternalID string
}

// Inbound is an Observation accepted for ingest: a reading in the JSON API's
// terms, its subject, and where its elements were (for errors found later).
type Inbound struct {
	Reading rpm.Reading
	Subject Subject
	// Status is final, amended or corrected — or EnteredInError: the
	// Observation retracts the stored reading with its identifier.
	Status string
	// paths maps rpm field names (value, systolic, unit, ...) to FHIRPath.
	paths map[string]string
}

// observationIn is an Observation with its resourceType, so that a strict
// decoder accepts the element. Status shadows r4.Observation.Status as a
// plain string: the typed field fails on an unknown code and turns a
// missing one into "registered", and Tend answers both with a 422 naming
// the element.
type observationIn struct {
	ResourceType string  `json:"resourceType"`
	Status       *string `json:"status"`
	r4.Observation
}

// statusProbe reads resourceType and status alone, to name a bad status
// even when other elements do not decode.
type statusProbe struct {
	ResourceType string  `json:"resourceType"`
	Status       *string `json:"status"`
}

// DecodeObservation parses one Observation (JSON) and maps it to a reading,
// checking the vital-signs rules Tend relies on and the reading's own rules
// (rpm.Normalize at now). Problems come back as an *Error naming each
// element by FHIRPath, rooted at root ("Observation" for a single resource,
// "Bundle.entry[3].resource" inside a Bundle).
func DecodeObservation(data []byte, now time.Time, root string) (Inbound, error) {
	in, err := decodeObservation(data, now)
	return in, reroot(err, root)
}

// reroot re-roots the FHIRPath of an Observation's issues at root.
func reroot(err error, root string) error {
	var fe *Error
	if errors.As(err, &fe) && root != "Observation" {
		return &Error{Status: fe.Status, Issues: prefix(fe.Issues, "Observation", root)}
	}
	return err
}

func decodeObservation(data []byte, now time.Time) (Inbound, error) {
	if obs, ok := fastObservation(data); ok {
		return readObservation(obs, now)
	}
	return decodeObservationFull(data, now)
}

// decodeObservationFull is decodeObservation through golang-fhir-models
// alone: any document, every error.
func decodeObservationFull(data []byte, now time.Time) (Inbound, error) {
	var obs observationIn
	if err := strictDecode(data, &obs); err != nil {
		// The checks keep their order: a missing or unsupported status is
		// named before elements that do not decode.
		var probe statusProbe
		if perr := json.Unmarshal(data, &probe); perr != nil {
			return Inbound{}, decodeError(perr, "Observation")
		}
		if fe := checkHead(probe.ResourceType, probe.Status); fe != nil {
			return Inbound{}, fe
		}
		return Inbound{}, decodeError(err, "Observation")
	}
	return readObservation(&obs, now)
}

// readObservation checks and maps a decoded Observation.
func readObservation(obs *observationIn, now time.Time) (Inbound, error) {
	if fe := checkHead(obs.ResourceType, obs.Status); fe != nil {
		return Inbound{}, fe
	}
	return mapObservation(obs.Observation, *obs.Status, now)
}

// checkHead checks resourceType and status.
func checkHead(resourceType string, status *string) *Error {
	if resourceType != "Observation" {
		return Malformed(Issue{Code: "structure", Expression: "Observation",
			Diagnostics: "resourceType must be Observation"})
	}
	if status == nil {
		return Invalid(Issue{Code: "required", Expression: "Observation.status", Diagnostics: "status is required"})
	}
	switch *status {
	case "final", "amended", "corrected", EnteredInError:
	default:
		return Invalid(Issue{Code: "value", Expression: "Observation.status",
			Diagnostics: "status must be final, amended or corrected (a completed measurement), or entered-in-error (retracting a stored one)"})
	}
	return nil
}

// strictDecode decodes exactly one JSON value and rejects unknown elements.
func strictDecode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("more than one JSON value")
	}
	return nil
}

// decodeError turns a JSON decoding error into a 400 whose diagnostics never
// quote the body.
func decodeError(err error, root string) *Error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return Malformed(Issue{Code: "structure", Diagnostics: fmt.Sprintf("malformed JSON at byte %d", syn.Offset)})
	case errors.As(err, &typ):
		expr := root
		if typ.Field != "" {
			expr += "." + typ.Field
		}
		return Malformed(Issue{Code: "structure", Expression: expr, Diagnostics: "wrong JSON type for this element"})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		if len(name) > 60 {
			name = name[:60]
		}
		return Malformed(Issue{Code: "structure", Expression: root,
			Diagnostics: fmt.Sprintf("unknown element %q (not an element of FHIR R4 %s)", name, root)})
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return Malformed(Issue{Code: "structure", Diagnostics: "the body is empty or ends early"})
	}
	return Malformed(Issue{Code: "structure", Expression: root, Diagnostics: "the body is not a valid FHIR R4 " + root})
}

// mapObservation maps a decoded Observation to an Inbound: its code to a
// kind, its subject, effective time, identifier and value(s). The issues of
// every element come back together as one 422; a mapped reading that
// rpm.Normalize refuses (at now) comes back with that error's issues.
func mapObservation(o r4.Observation, status string, now time.Time) (Inbound, error) {
	m := &mapper{in: Inbound{Status: status, paths: map[string]string{}}}
	m.code(o)
	m.subject(o.Subject)
	m.effective(o)
	m.identifier(o.Identifier)
	if status == EnteredInError && m.in.Reading.SourceID == "" {
		m.add("business-rule", "Observation.status", "entered-in-error retracts a stored reading, named by its identifier")
		m.add("required", "Observation.identifier", "an identifier is required to say which stored reading is in error")
	}
	switch kind := m.in.Reading.Kind; {
	case kind == rpm.BloodPressure:
		m.bloodPressure(o)
	case kind != "":
		m.value(o)
	}
	in := m.in
	if len(m.issues) > 0 {
		return in, Invalid(m.issues...)
	}
	if _, err := rpm.Normalize(in.Reading, now); err != nil {
		return in, in.Issues(err)
	}
	return in, nil
}

// mapper collects the Inbound mapped from one Observation and the issues
// found on the way.
type mapper struct {
	in     Inbound
	issues []Issue
}

// add records an issue on the element at expr.
func (m *mapper) add(code, expr, diag string) {
	m.issues = append(m.issues, Issue{Code: code, Expression: expr, Diagnostics: diag})
}

// code maps the first LOINC coding of a supported vital sign to the
// reading's kind.
func (m *mapper) code(o r4.Observation) {
	for i, c := range o.Code.Coding {
		if c.System != nil && *c.System == LOINC && c.Code != nil {
			if k, ok := kindOf[*c.Code]; ok {
				m.in.Reading.Kind = k
				m.in.paths["kind"] = fmt.Sprintf("Observation.code.coding[%d].code", i)
				break
			}
		}
	}
	if m.in.Reading.Kind == "" {
		m.add("code-invalid", "Observation.code", "code must hold a LOINC coding (system http://loinc.org) of a supported vital sign: "+supportedCodes())
	}
}

// subject maps the subject: a reference Patient/{id} or an identifier
// holding the patient's external_id.
func (m *mapper) subject(s *r4.Reference) {
	switch {
	case s == nil:
		m.add("required", "Observation.subject", "subject is required: Patient/{id} or an identifier holding the patient's external_id")
	case s.Reference != nil:
		id, ok := strings.CutPrefix(*s.Reference, "Patient/")
		pid, err := uuid.Parse(id)
		if !ok || err != nil {
			m.add("value", "Observation.subject.reference", "reference must be Patient/{id} with a Tend patient id")
		}
		m.in.Subject.PatientID = pid
	case s.Identifier != nil && s.Identifier.Value != nil && *s.Identifier.Value != "":
		if len(*s.Identifier.Value) > 200 {
			m.add("value", "Observation.subject.identifier.value", "is longer than 200 characters")
		}
		m.in.Subject.ExternalID = *s.Identifier.Value
	default:
		m.add("required", "Observation.subject", "subject needs a reference (Patient/{id}) or an identifier value (external_id)")
	}
}

// effective maps effective[x] to the time the reading was observed.
func (m *mapper) effective(o r4.Observation) {
	var at, expr string
	switch {
	case o.EffectiveDateTime != nil:
		at, expr = *o.EffectiveDateTime, "Observation.effectiveDateTime"
	case o.EffectiveInstant != nil:
		at, expr = *o.EffectiveInstant, "Observation.effectiveInstant"
	case o.EffectivePeriod != nil && o.EffectivePeriod.Start != nil:
		// A measurement over an interval (a watch's sample) counts from its start.
		at, expr = *o.EffectivePeriod.Start, "Observation.effectivePeriod.start"
	case o.EffectivePeriod != nil && o.EffectivePeriod.End != nil:
		at, expr = *o.EffectivePeriod.End, "Observation.effectivePeriod.end"
	default:
		m.add("required", "Observation.effective", "effectiveDateTime or effectivePeriod (with a time and a time zone) is required")
		return
	}
	m.in.Reading.ObservedAt = parseTime(at, expr, m.add)
	m.in.paths["observed_at"] = expr
}

// identifier maps the first identifier with a value to the reading's
// source_id ("system|value" when it has a system).
func (m *mapper) identifier(ids []r4.Identifier) {
	for i, id := range ids {
		if id.Value == nil || *id.Value == "" {
			continue
		}
		m.in.Reading.SourceID = *id.Value
		if id.System != nil && *id.System != "" {
			m.in.Reading.SourceID = *id.System + "|" + *id.Value
		}
		m.in.paths["source_id"] = fmt.Sprintf("Observation.identifier[%d]", i)
		break
	}
}

// bloodPressure maps a blood pressure panel: systolic and diastolic from
// its components (other components are not stored), in one unit, and no
// value[x].
func (m *mapper) bloodPressure(o r4.Observation) {
	r := &m.in.Reading
	if o.ValueQuantity != nil || countValues(o) > 0 {
		m.add("invariant", "Observation.value", "a blood pressure panel carries its values in component (systolic 8480-6, diastolic 8462-4), not in value[x]")
	}
	var sysUnit, diaUnit string
	for i, c := range o.Component {
		path := fmt.Sprintf("Observation.component[%d]", i)
		switch {
		case hasLOINC(c.Code, rpm.LOINCSystolic):
			m.in.paths["systolic"] = path + ".valueQuantity.value"
			m.component(c, path, &r.Systolic, &sysUnit)
		case hasLOINC(c.Code, rpm.LOINCDiastolic):
			m.in.paths["diastolic"] = path + ".valueQuantity.value"
			m.component(c, path, &r.Diastolic, &diaUnit)
		}
	}
	if r.Systolic == nil {
		m.add("required", "Observation.component", "a component with LOINC 8480-6 (systolic) is required")
	}
	if r.Diastolic == nil {
		m.add("required", "Observation.component", "a component with LOINC 8462-4 (diastolic) is required")
	}
	if sysUnit != "" && diaUnit != "" && sysUnit != diaUnit {
		m.add("value", "Observation.component", "systolic and diastolic must use the same unit")
	}
	r.Unit = sysUnit
}

// component maps one blood pressure component at path to target and unit:
// once per code, from its valueQuantity.
func (m *mapper) component(c r4.ObservationComponent, path string, target **float64, unit *string) {
	if *target != nil {
		m.add("invariant", path+".code", "more than one component with this code")
		return
	}
	if c.ValueQuantity == nil {
		m.add("required", path+".valueQuantity", "a blood pressure component needs a valueQuantity")
		return
	}
	*target, *unit = quantity(c.ValueQuantity, path+".valueQuantity", rpm.BloodPressure, m.add)
	m.in.paths["unit"] = path + ".valueQuantity.code"
}

// value maps the valueQuantity of a single-value vital sign.
func (m *mapper) value(o r4.Observation) {
	switch {
	case countValues(o) > 0:
		m.add("value", "Observation.value", "the value must be a valueQuantity")
	case o.ValueQuantity == nil:
		m.add("required", "Observation.valueQuantity", "valueQuantity is required")
	default:
		r := &m.in.Reading
		r.Value, r.Unit = quantity(o.ValueQuantity, "Observation.valueQuantity", r.Kind, m.add)
		m.in.paths["value"] = "Observation.valueQuantity.value"
		m.in.paths["unit"] = "Observation.valueQuantity.code"
	}
}

// Issues maps an error about the inbound reading (a *rpm.ValidationError
// from rpm.Normalize or the engine) to a 422 naming FHIR elements; other
// errors are returned unchanged.
func (in Inbound) Issues(err error) error {
	var v *rpm.ValidationError
	if !errors.As(err, &v) {
		return err
	}
	out := Invalid()
	for _, f := range v.Fields {
		name := f.Field
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			name = name[i+1:] // readings[i].value → value
		}
		expr, ok := in.paths[name]
		if !ok {
			expr = "Observation"
		}
		out.Issues = append(out.Issues, Issue{Code: "value", Expression: expr, Diagnostics: name + " " + f.Reason})
	}
	return out
}

// parseTime reads a FHIR dateTime that must carry a time and a zone: a
// reading needs an instant, and a date alone is not one.
func parseTime(s, expr string, add func(code, expr, diag string)) time.Time {
	if len(s) <= len("2006-01-02") {
		add("value", expr, "a date without a time is not precise enough for a vital sign; send a time with a zone, such as 2026-11-22T08:00:00Z")
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		add("value", expr, "must be a FHIR dateTime with seconds and a time zone, such as 2026-11-22T08:00:00Z")
		return time.Time{}
	}
	return t
}

// quantity reads a Quantity's value and unit. The UCUM code is preferred;
// devices that send only the human unit (or a code Tend does not accept but
// a unit it does) are understood too.
func quantity(q *r4.Quantity, expr string, kind rpm.Kind, add func(code, expr, diag string)) (*float64, string) {
	var v *float64
	switch {
	case q.Value == nil:
		add("required", expr+".value", "value is required")
	default:
		f, err := strconv.ParseFloat(q.Value.String(), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			add("value", expr+".value", "must be a finite decimal")
		} else {
			v = &f
		}
	}
	if q.Comparator != nil {
		add("value", expr+".comparator", "a measured vital sign cannot carry a comparator")
	}
	spec, _ := rpm.SpecOf(kind)
	var code, unit string
	if q.Code != nil {
		code = *q.Code
	}
	if q.Unit != nil {
		unit = *q.Unit
	}
	if q.System != nil && *q.System != UCUM && code != "" {
		add("code-invalid", expr+".system", "units must be UCUM (http://unitsofmeasure.org)")
	}
	for _, u := range []string{code, unit} {
		if _, ok := spec.ToCanonical(1, u); ok && u != "" {
			return v, u
		}
	}
	if code == "" && unit == "" {
		add("required", expr+".code", "a UCUM unit code is required; accepted: "+strings.Join(spec.Units(), ", "))
		return v, ""
	}
	return v, cmpOr(code, unit) // rpm reports the unit as not accepted
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func countValues(o r4.Observation) int {
	n := 0
	for _, set := range []bool{o.ValueCodeableConcept != nil, o.ValueString != nil, o.ValueBoolean != nil,
		o.ValueInteger != nil, o.ValueRange != nil, o.ValueRatio != nil, o.ValueSampledData != nil, o.ValueTime != nil,
		o.ValueDateTime != nil, o.ValuePeriod != nil} {
		if set {
			n++
		}
	}
	return n
}

func hasLOINC(c r4.CodeableConcept, code string) bool {
	for _, x := range c.Coding {
		if x.System != nil && *x.System == LOINC && x.Code != nil && *x.Code == code {
			return true
		}
	}
	return false
}

func supportedCodes() string {
	var parts []string
	for _, m := range Mappings() {
		parts = append(parts, m.LOINC+" ("+string(m.Kind)+")")
	}
	return strings.Join(parts, ", ")
}

// EnteredInError is the status of an Observation that retracts a stored
// reading.
const EnteredInError = "entered-in-error"

// Retracts reports whether the Observation retracts a stored reading (status
// entered-in-error) rather than recording a new one.
func (in Inbound) Retracts() bool { return in.Status == EnteredInError }

// Reading is a stored reading as the engine returns it, in canonical units.
type Reading struct {
	// EnteredInError marks a reading its source retracted.
	EnteredInError bool
	ID             uuid.UUID
	PatientID      uuid.UUID
	Kind           rpm.Kind
	Value          float64 // not for blood pressure
	Systolic       float64 // blood pressure only
	Diastolic      float64 // blood pressure only
	ObservedAt     time.Time
	ReceivedAt     time.Time
	SourceID       string
}

// Observation maps a stored reading to a vital-signs Observation.
func Observation(r Reading) r4.Observation {
	spec, _ := rpm.SpecOf(r.Kind)
	o := r4.Observation{
		Id:     ptr(ObservationID(r.PatientID, r.ID, r.ObservedAt)),
		Meta:   meta(r.ReceivedAt, VitalSignsProfile),
		Status: r4.ObservationStatusFinal,
		Category: []r4.CodeableConcept{{Coding: []r4.Coding{{System: ptr(CategorySystem), Code: ptr("vital-signs"),
			Display: ptr("Vital Signs")}}, Text: ptr("Vital Signs")}},
		Code: r4.CodeableConcept{Coding: []r4.Coding{{System: ptr(LOINC), Code: ptr(spec.LOINC), Display: ptr(loincDisplay[r.Kind])}},
			Text: ptr(loincDisplay[r.Kind])},
		Subject:           &r4.Reference{Reference: ptr("Patient/" + r.PatientID.String())},
		EffectiveDateTime: ptr(instant(r.ObservedAt)),
	}
	if r.EnteredInError {
		o.Status = r4.ObservationStatusEnteredInError
	}
	if r.SourceID != "" {
		id := r4.Identifier{Value: ptr(r.SourceID)}
		if sys, val, ok := strings.Cut(r.SourceID, "|"); ok && sys != "" && val != "" {
			id = r4.Identifier{System: ptr(sys), Value: ptr(val)}
		}
		o.Identifier = []r4.Identifier{id}
	}
	if r.Kind == rpm.BloodPressure {
		o.Component = []r4.ObservationComponent{
			{Code: r4.CodeableConcept{Coding: []r4.Coding{{System: ptr(LOINC), Code: ptr(rpm.LOINCSystolic), Display: ptr("Systolic blood pressure")}},
				Text: ptr("Systolic blood pressure")}, ValueQuantity: ucum(r.Systolic, spec.Unit)},
			{Code: r4.CodeableConcept{Coding: []r4.Coding{{System: ptr(LOINC), Code: ptr(rpm.LOINCDiastolic), Display: ptr("Diastolic blood pressure")}},
				Text: ptr("Diastolic blood pressure")}, ValueQuantity: ucum(r.Diastolic, spec.Unit)},
		}
	} else {
		o.ValueQuantity = ucum(r.Value, spec.Unit)
	}
	return o
}

func ucum(v float64, unit string) *r4.Quantity {
	n := json.Number(strconv.FormatFloat(v, 'f', -1, 64))
	return &r4.Quantity{Value: &n, Unit: ptr(unit), System: ptr(UCUM), Code: ptr(unit)}
}
