package fhir_test

import (
	"strings"
	"testing"

	"github.com/tendhealth/tend/fhir"
)

// decode is fhir.DecodeObservation, after checking that the fast path and
// the full decoder agree on body: every Observation of these tests runs
// through both.
func decode(t *testing.T, body, root string) (fhir.Inbound, error) {
	t.Helper()
	if _, err := fhir.CheckFastPath([]byte(body), now); err != nil {
		t.Error(err)
	}
	return fhir.DecodeObservation([]byte(body), now, root)
}

// readBundle is fhir.ReadBundle, after the same check.
func readBundle(t *testing.T, data []byte) (fhir.Bundle, []fhir.Decoded, error) {
	t.Helper()
	if _, err := fhir.CheckFastPath(data, now); err != nil {
		t.Error(err)
	}
	return fhir.ReadBundle(data, now)
}

// plain is an Observation of the shape devices send (and the benchmark
// posts), with extra elements spliced in before the closing brace.
func plain(extra string) string {
	return `{"resourceType":"Observation","status":"final",
		"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],
		"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/` + pid + `"},
		"effectiveDateTime":"2026-11-22T08:00:00Z","valueQuantity":{"value":70,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"}` +
		extra + `}`
}

func bundleOf(typ string, entries ...string) string {
	var es []string
	for _, e := range entries {
		es = append(es, `{"fullUrl":"urn:uuid:1","request":{"method":"POST","url":"Observation"},"resource":`+e+`}`)
	}
	return `{"resourceType":"Bundle","type":"` + typ + `","entry":[` + strings.Join(es, ",") + `]}`
}

// corpus is what the fast path must read (fast) or leave to the full
// decoder (not fast); either way both must agree.
var corpus = []struct {
	name, body string
	fast       bool
}{
	{"plain", plain(""), true},
	{"identifier, device, meta, issued", plain(`,"identifier":[{"system":"urn:gw","value":"1"}],"device":{"display":"cuff"},
		"meta":{"profile":["http://hl7.org/fhir/StructureDefinition/vitalsigns"]},"issued":"2026-11-22T08:00:01Z","id":"x"`), true},
	{"period", strings.Replace(plain(""), `"effectiveDateTime":"2026-11-22T08:00:00Z"`, `"effectivePeriod":{"start":"2026-11-22T02:58:00-05:00"}`, 1), true},
	{"instant", strings.Replace(plain(""), `"effectiveDateTime"`, `"effectiveInstant"`, 1), true},
	{"external subject", strings.Replace(plain(""), `{"reference":"Patient/`+pid+`"}`, `{"identifier":{"system":"urn:x","value":"MRN-1"}}`, 1), true},
	{"blood pressure", `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}],"text":"BP"},
		"subject":{"reference":"Patient/` + pid + `"},"effectiveDateTime":"2026-11-22T08:00:00Z","component":[
		{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":120.5e0,"code":"mm[Hg]"}},
		{"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"valueQuantity":{"value":-0.0,"code":"mm[Hg]"}}]}`, true},
	{"implausible (a 422 of the shared checks)", strings.Replace(plain(""), `"value":70`, `"value":900`, 1), true},
	{"date only", strings.Replace(plain(""), `T08:00:00Z`, ``, 1), true},
	{"no status", strings.Replace(plain(""), `"status":"final",`, ``, 1), true},
	{"entered in error", strings.Replace(plain(""), `"final"`, `"entered-in-error"`, 1), true},
	{"not an observation", `{"resourceType":"Patient","status":"final"}`, true},
	{"non-ASCII text", plain(`,"device":{"display":"Blutdruckmessgerät"}`), true},
	{"huge number", strings.Replace(plain(""), `"value":70`, `"value":1e999`, 1), true},
	{"empty", `{}`, true},

	{"unknown element", plain(`,"colour":"red"`), false},
	{"other spelling of an element", strings.Replace(plain(""), `"status"`, `"Status"`, 1), false},
	{"escaped string", strings.Replace(plain(""), `"final"`, `"fin\u0061l"`, 1), false},
	{"duplicate element", plain(`,"status":"amended"`), false},
	{"null", plain(`,"issued":null`), false},
	{"string value", strings.Replace(plain(""), `"value":70`, `"value":"70"`, 1), false},
	{"bad number", strings.Replace(plain(""), `"value":70`, `"value":070`, 1), false},
	{"comparator", strings.Replace(plain(""), `"value":70`, `"value":70,"comparator":"<"`, 1), false},
	{"trailing data", plain("") + `{}`, false},
	{"truncated", plain("")[:80], false},
	{"invalid UTF-8", plain(`,"device":{"display":"` + "\xff" + `"}`), false},
	{"valueString", plain(`,"valueString":"x"`), false},

	{"transaction", bundleOf("transaction", plain(""), plain(`,"identifier":[{"value":"2"}]`)), true},
	{"batch with a 422 entry", bundleOf("batch", plain(""), strings.Replace(plain(""), `"value":70`, `"value":900`, 1)), true},
	{"bundle of no entries", `{"resourceType":"Bundle","type":"batch","entry":[]}`, false},
	{"bundle with an odd entry", bundleOf("batch", plain(""), plain(`,"colour":"red"`)), false},
	{"bundle of a GET", strings.Replace(bundleOf("batch", plain("")), `"POST"`, `"GET"`, 1), false},
	{"collection", bundleOf("collection", plain("")), false},
}

// The fast path reads the plain shapes, leaves everything else to the full
// decoder, and agrees with it on every document of the corpus.
func TestFastPathAgreesWithTheFullDecoder(t *testing.T) {
	t.Parallel()
	for _, tc := range corpus {
		fast, err := fhir.CheckFastPath([]byte(tc.body), now)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if fast != tc.fast {
			t.Errorf("%s: fast path took it %v, want %v", tc.name, fast, tc.fast)
		}
	}
}

// FuzzFastPath: on any input, whenever the fast path takes a document, the
// full decoder reads it to the same result or the same errors.
//
//	go test -run '^$' -fuzz FuzzFastPath -fuzztime 60s ./fhir/
func FuzzFastPath(f *testing.F) {
	for _, tc := range corpus {
		f.Add([]byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := fhir.CheckFastPath(data, now); err != nil {
			t.Fatal(err)
		}
	})
}
