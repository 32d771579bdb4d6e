package fhir_test

import (
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/fhir"
	"github.com/tendhealth/tend/fhir/fhirtest"
	"github.com/tendhealth/tend/rpm"
)

var now = time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)

const pid = "0190f3a2-7c1e-7a40-9d8e-0d5f3b2a1c11"

func TestDecodeObservationShapes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body string
		want       rpm.Reading
		ext        string
	}{
		{"apple health heart rate, unit and code, effectivePeriod", `{"resourceType":"Observation","status":"final",
			"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],
			"code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"},{"system":"com.apple.health","code":"HKQuantityTypeIdentifierHeartRate"}]},
			"subject":{"reference":"Patient/` + pid + `"},
			"effectivePeriod":{"start":"2026-11-22T02:58:00-05:00","end":"2026-11-22T02:59:00-05:00"},
			"identifier":[{"system":"com.apple.health","value":"6E4C-11"}],
			"valueQuantity":{"value":72,"unit":"count/min","system":"http://unitsofmeasure.org","code":"/min"}}`,
			rpm.Reading{Kind: rpm.HeartRate, Value: ptr(72.0), Unit: "/min", ObservedAt: time.Date(2026, 11, 22, 7, 58, 0, 0, time.UTC), SourceID: "com.apple.health|6E4C-11"}, ""},
		{"withings weight in pounds, unit only, external id subject", `{"resourceType":"Observation","status":"final",
			"code":{"coding":[{"system":"http://loinc.org","code":"29463-7"}]},
			"subject":{"identifier":{"system":"urn:withings:user","value":"MRN-88"}},
			"effectiveDateTime":"2026-11-22T08:00:00Z",
			"valueQuantity":{"value":180.5,"unit":"lb"}}`,
			rpm.Reading{Kind: rpm.BodyWeight, Value: ptr(180.5), Unit: "lb", ObservedAt: time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)}, "MRN-88"},
		{"omron blood pressure, older panel code, mmHg", `{"resourceType":"Observation","status":"final",
			"code":{"coding":[{"system":"http://loinc.org","code":"55284-4"}]},
			"subject":{"reference":"Patient/` + pid + `"},"effectiveDateTime":"2026-11-22T08:00:00+09:00",
			"component":[
			 {"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":150,"unit":"mmHg"}},
			 {"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"valueQuantity":{"value":95,"unit":"mmHg"}},
			 {"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"valueQuantity":{"value":70,"unit":"/min"}}]}`,
			rpm.Reading{Kind: rpm.BloodPressure, Systolic: ptr(150.0), Diastolic: ptr(95.0), Unit: "mmHg", ObservedAt: time.Date(2026, 11, 21, 23, 0, 0, 0, time.UTC)}, ""},
		{"hl7 example blood pressure panel, UCUM codes", `{"resourceType":"Observation","status":"amended",
			"meta":{"profile":["http://hl7.org/fhir/StructureDefinition/vitalsigns"]},
			"code":{"coding":[{"system":"http://loinc.org","code":"85354-9","display":"Blood pressure panel"}],"text":"BP"},
			"subject":{"reference":"Patient/` + pid + `"},"effectiveDateTime":"2026-11-22T08:00:00Z",
			"component":[
			 {"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":107,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}},
			 {"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"valueQuantity":{"value":60,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]}`,
			rpm.Reading{Kind: rpm.BloodPressure, Systolic: ptr(107.0), Diastolic: ptr(60.0), Unit: "mm[Hg]", ObservedAt: time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)}, ""},
		{"glucose molar code", `{"resourceType":"Observation","status":"final",
			"code":{"coding":[{"system":"http://loinc.org","code":"15074-8"}]},
			"subject":{"reference":"Patient/` + pid + `"},"effectiveDateTime":"2026-11-22T08:00:00Z",
			"valueQuantity":{"value":5.5,"system":"http://unitsofmeasure.org","code":"mmol/L"}}`,
			rpm.Reading{Kind: rpm.BloodGlucose, Value: ptr(5.5), Unit: "mmol/L", ObservedAt: time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := decode(t, tc.body, "Observation")
			if err != nil {
				t.Fatal(err)
			}
			got := in.Reading
			if got.Kind != tc.want.Kind || got.Unit != tc.want.Unit || !got.ObservedAt.Equal(tc.want.ObservedAt) || got.SourceID != tc.want.SourceID ||
				!eq(got.Value, tc.want.Value) || !eq(got.Systolic, tc.want.Systolic) || !eq(got.Diastolic, tc.want.Diastolic) {
				t.Errorf("reading = %+v, want %+v", got, tc.want)
			}
			if tc.ext != "" && in.Subject.ExternalID != tc.ext {
				t.Errorf("external id = %q, want %q", in.Subject.ExternalID, tc.ext)
			}
			if tc.ext == "" && in.Subject.PatientID.String() != pid {
				t.Errorf("patient = %v", in.Subject.PatientID)
			}
		})
	}
}

func TestDecodeObservationErrors(t *testing.T) {
	t.Parallel()
	base := func(mut string) string {
		return `{"resourceType":"Observation",` + mut + `}`
	}
	const ok = `"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/` + pid + `"}`
	for _, tc := range []struct {
		name, body string
		status     int
		expr       string
	}{
		{"date without time", base(`"status":"final",` + ok + `,"effectiveDateTime":"2026-11-22","valueQuantity":{"value":70,"code":"/min"}`), 422, "Observation.effectiveDateTime"},
		{"missing status", base(ok + `,"effectiveDateTime":"2026-11-22T08:00:00Z","valueQuantity":{"value":70,"code":"/min"}`), 422, "Observation.status"},
		{"preliminary", base(`"status":"preliminary",` + ok + `,"effectiveDateTime":"2026-11-22T08:00:00Z","valueQuantity":{"value":70,"code":"/min"}`), 422, "Observation.status"},
		{"entered in error", base(`"status":"entered-in-error",` + ok + `,"effectiveDateTime":"2026-11-22T08:00:00Z","valueQuantity":{"value":70,"code":"/min"}`), 422, "Observation.status"},
		{"unknown unit", base(`"status":"final",` + ok + `,"effectiveDateTime":"2026-11-22T08:00:00Z","valueQuantity":{"value":70,"code":"Hz"}`), 422, "Observation.valueQuantity.code"},
		{"implausible", base(`"status":"final",` + ok + `,"effectiveDateTime":"2026-11-22T08:00:00Z","valueQuantity":{"value":900,"code":"/min"}`), 422, "Observation.valueQuantity.value"},
		{"future", base(`"status":"final",` + ok + `,"effectiveDateTime":"2026-11-23T08:00:00Z","valueQuantity":{"value":70,"code":"/min"}`), 422, "Observation.effectiveDateTime"},
		{"unknown code", base(`"status":"final","code":{"coding":[{"system":"http://loinc.org","code":"1234-5"}]},"subject":{"reference":"Patient/` + pid + `"},"effectiveDateTime":"2026-11-22T08:00:00Z","valueQuantity":{"value":70,"code":"/min"}`), 422, "Observation.code"},
		{"no subject", base(`"status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"effectiveDateTime":"2026-11-22T08:00:00Z","valueQuantity":{"value":70,"code":"/min"}`), 422, "Observation.subject"},
		{"bp without diastolic", base(`"status":"final","code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},"subject":{"reference":"Patient/` + pid + `"},"effectiveDateTime":"2026-11-22T08:00:00Z","component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":120,"code":"mm[Hg]"}}]`), 422, "Observation.component"},
		{"string value", base(`"status":"final",` + ok + `,"effectiveDateTime":"2026-11-22T08:00:00Z","valueString":"70"`), 422, "Observation.value"},
		{"wrong type", base(`"status":"final",` + ok + `,"effectiveDateTime":"2026-11-22T08:00:00Z","valueQuantity":{"value":"seventy","code":"/min"}`), 400, "Observation"},
		{"unknown element", base(`"status":"final",` + ok + `,"effectiveDateTime":"2026-11-22T08:00:00Z","valueQuantity":{"value":70,"code":"/min"},"colour":"red"`), 400, "Observation"},
		{"not an observation", `{"resourceType":"Patient","status":"final"}`, 400, "Observation"},
		{"malformed", `{"resourceType":`, 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decode(t, tc.body, "Observation")
			var fe *fhir.Error
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want *fhir.Error", err)
			}
			if fe.Status != tc.status {
				t.Errorf("status = %d, want %d (%v)", fe.Status, tc.status, fe)
			}
			var exprs []string
			for _, is := range fe.Issues {
				exprs = append(exprs, is.Expression)
				if is.Diagnostics == "" {
					t.Errorf("issue %v has no diagnostics", is)
				}
			}
			if !slices.Contains(exprs, tc.expr) {
				t.Errorf("expressions = %q, want %q", exprs, tc.expr)
			}
		})
	}
}

func TestBundleEntryExpressions(t *testing.T) {
	t.Parallel()
	body := `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},
		"subject":{"reference":"Patient/` + pid + `"},"effectiveDateTime":"2026-11-22","valueQuantity":{"value":70,"code":"/min"}}`
	_, err := decode(t, body, "Bundle.entry[3].resource")
	var fe *fhir.Error
	if !errors.As(err, &fe) || fe.Issues[0].Expression != "Bundle.entry[3].resource.effectiveDateTime" {
		t.Fatalf("err = %v", err)
	}
}

func TestObservationIDRoundTrip(t *testing.T) {
	t.Parallel()
	p, r := uuid.New(), uuid.Must(uuid.NewV7())
	at := time.Date(2026, 11, 22, 8, 0, 0, 123456000, time.UTC)
	id := fhir.ObservationID(p, r, at)
	if len(id) != 64 || !regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`).MatchString(id) {
		t.Fatalf("id %q is not a FHIR id", id)
	}
	gp, gr, gat, ok := fhir.ParseObservationID(id)
	if !ok || gp != p || gr != r || !gat.Equal(at) {
		t.Fatalf("round trip: %v %v %v %v", gp, gr, gat, ok)
	}
	if _, _, _, ok := fhir.ParseObservationID(id[:63] + "!"); ok {
		t.Error("accepted a malformed id")
	}
}

// emitted are one of every resource Tend writes.
func emitted(t *testing.T) []json.RawMessage {
	t.Helper()
	p := uuid.MustParse(pid)
	var out []json.RawMessage
	add := func(v any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	for _, k := range rpm.Kinds() {
		r := fhir.Reading{ID: uuid.Must(uuid.NewV7()), PatientID: p, Kind: k, Value: 70, Systolic: 150, Diastolic: 90,
			ObservedAt: now.Add(-time.Hour), ReceivedAt: now, SourceID: "urn:cuff|77"}
		add(fhir.Observation(r))
	}
	add(fhir.PatientResource(fhir.Patient{ID: p, DisplayName: "Sam Lee", ExternalID: "MRN-88", CreatedAt: now}))
	resolved := now
	add(fhir.Flag(fhir.Alert{ID: uuid.New(), PatientID: p, RuleID: "bp-crisis", Urgency: rpm.Critical, Status: "resolved",
		Title: "Blood pressure in crisis range", CreatedAt: now.Add(-time.Hour), UpdatedAt: now, ResolvedAt: &resolved}))
	add(fhir.OperationOutcome(fhir.Issue{Code: "value", Expression: "Observation.status", Diagnostics: "status is required"}))
	for _, m := range communicationCases() {
		add(fhir.CommunicationOf(m.in, attURL))
	}
	cs, err := fhir.CapabilityStatement([]fhir.Interaction{
		{Code: "transaction"}, {Code: "batch"},
		{Resource: "Observation", Code: "create", Profile: fhir.VitalSignsProfile},
		{Resource: "Observation", Code: "search-type", SearchParams: []fhir.SearchParam{{Name: "patient", Type: "reference"}, {Name: "date", Type: "date"}}},
		{Resource: "Flag", Code: "read"},
	}, "Tend", "v1", now)
	if err != nil {
		t.Fatal(err)
	}
	add(cs)
	obs := fhir.Observation(fhir.Reading{ID: uuid.New(), PatientID: p, Kind: rpm.HeartRate, Value: 61, ObservedAt: now, ReceivedAt: now})
	resp, err := fhir.ResponseBundle(true, []fhir.Result{{Status: 201, Resource: &obs}}, now)
	if err != nil {
		t.Fatal(err)
	}
	add(resp)
	batch, err := fhir.ResponseBundle(false, []fhir.Result{{Status: 201, Resource: &obs},
		{Status: 422, Err: fhir.Invalid(fhir.Issue{Code: "value", Expression: "Bundle.entry[1].resource.status", Diagnostics: "bad"})}}, now)
	if err != nil {
		t.Fatal(err)
	}
	add(batch)
	raw, _ := json.Marshal(obs)
	add(fhir.SearchSet("/fhir/r4/Observation?patient="+pid, "/fhir/r4/Observation?_cursor=x", []json.RawMessage{raw}, []string{"/fhir/r4/Observation/" + *obs.Id}, now))
	return out
}

// TestEmittedResourcesValidate runs every kind of resource Tend writes, and
// every JSON example of docs/fhir.md, through Medplum's validator.
func TestEmittedResourcesValidate(t *testing.T) {
	res := emitted(t)
	doc, err := os.ReadFile("../docs/fhir.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(doc, -1)
	if len(blocks) < 3 {
		t.Fatalf("docs/fhir.md has %d JSON examples, want at least 3", len(blocks))
	}
	for _, b := range blocks {
		if !json.Valid(b[1]) {
			t.Fatalf("docs/fhir.md example is not JSON:\n%s", b[1])
		}
		res = append(res, b[1])
	}
	fhirtest.Validate(t, res...)
}

// TestValidatorRejects proves the validator can fail: a vital-signs
// Observation without its required elements.
func TestValidatorRejects(t *testing.T) {
	v := &recorder{TB: t}
	func() {
		defer func() { _ = recover() }()
		fhirtest.Validate(v, json.RawMessage(`{"resourceType":"Observation","status":"final","code":{"text":"x"}}`))
	}()
	if v.skipped {
		t.Skip("validator not installed")
	}
	if !v.failed {
		t.Fatal("the validator accepted an Observation missing subject, effective[x] and value")
	}
}

type recorder struct {
	testing.TB
	failed, skipped bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Fatalf(string, ...any) { r.failed = true; panic("fatal") }
func (r *recorder) Fatal(...any)          { r.failed = true; panic("fatal") }
func (r *recorder) Skip(...any)           { r.skipped = true; panic("skip") }

func ptr[T any](v T) *T { return &v }

func eq(a, b *float64) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

// TestReadBundleOnePassAgreesWithPerEntry: ReadBundle decodes a sound
// Bundle in one pass and falls back to entry-by-entry decoding when any
// entry does not decode; both give what DecodeObservation gives per entry,
// and the fallback still reads the good entries of a batch.
func TestReadBundleOnePassAgreesWithPerEntry(t *testing.T) {
	t.Parallel()
	obs := func(extra string) string {
		return `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},
			"subject":{"reference":"Patient/` + pid + `"},"effectiveDateTime":"2026-11-22T08:00:00Z",` + extra + `}`
	}
	good := obs(`"valueQuantity":{"value":70,"code":"/min"},"identifier":[{"system":"urn:gw","value":"1"}]`)
	implausible := obs(`"valueQuantity":{"value":900,"code":"/min"}`)
	unknown := obs(`"valueQuantity":{"value":70,"code":"/min"},"colour":"red"`)
	bundle := func(typ string, entries ...string) []byte {
		b := `{"resourceType":"Bundle","type":"` + typ + `","entry":[`
		for i, e := range entries {
			if i > 0 {
				b += ","
			}
			b += `{"request":{"method":"POST","url":"Observation"},"resource":` + e + `}`
		}
		return []byte(b + `]}`)
	}
	for _, tc := range []struct {
		name    string
		entries []string
	}{
		{"one pass", []string{good, implausible}},
		{"fallback", []string{good, unknown, implausible}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, dec, err := readBundle(t, bundle("batch", tc.entries...))
			if err != nil || b.Transaction || len(dec) != len(tc.entries) {
				t.Fatalf("ReadBundle = %+v, %d entries, %v", b, len(dec), err)
			}
			for i, e := range tc.entries {
				root := "Bundle.entry[" + strconv.Itoa(i) + "].resource"
				in, err := decode(t, e, root)
				var want *fhir.Error
				errors.As(err, &want)
				switch {
				case want == nil && dec[i].Err != nil, want != nil && dec[i].Err == nil:
					t.Fatalf("entry %d: ReadBundle error %v, DecodeObservation error %v", i, dec[i].Err, err)
				case want != nil && (want.Status != dec[i].Err.Status || !slices.Equal(want.Issues, dec[i].Err.Issues)):
					t.Errorf("entry %d: ReadBundle %+v, DecodeObservation %+v", i, dec[i].Err, want)
				case want == nil && (in.Reading.SourceID != dec[i].In.Reading.SourceID || !eq(in.Reading.Value, dec[i].In.Reading.Value)):
					t.Errorf("entry %d: ReadBundle %+v, DecodeObservation %+v", i, dec[i].In.Reading, in.Reading)
				}
			}
			if dec[0].Err != nil || dec[0].In.Reading.SourceID != "urn:gw|1" || dec[len(dec)-1].Err == nil {
				t.Fatalf("good entry %+v, implausible entry %+v", dec[0], dec[len(dec)-1])
			}
		})
	}
}
