package fhir_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/tendhealth/tend/fhir"
	"github.com/tendhealth/tend/rpm"
)

// responseOf builds a response Bundle of results for readings r, with an
// error entry and an entry without a resource.
func responseOf(t testing.TB, transaction bool, readings []fhir.Reading) fhir.ResponseJSON {
	var results []fhir.Result
	for _, r := range readings {
		o := fhir.Observation(r)
		results = append(results, fhir.Result{Status: 201, Resource: &o, LastUpdate: r.ReceivedAt})
	}
	results = append(results, fhir.Result{Status: 422, Err: fhir.Invalid(fhir.Issue{Code: "value",
		Expression: "Bundle.entry[1].resource.valueQuantity.value", Diagnostics: "value must be <= 300 & > 0"})})
	results = append(results, fhir.Result{Status: 200})
	out, err := fhir.ResponseBundle(transaction, results, now)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func encodeBoth(t testing.TB, b fhir.ResponseJSON) (fast, std []byte, ok bool) {
	var w bytes.Buffer
	if err := json.NewEncoder(&w).Encode(b); err != nil {
		t.Fatal(err)
	}
	fast, ok = b.AppendJSON(nil)
	return fast, w.Bytes(), ok
}

// AppendJSON writes exactly what encoding/json writes, for every kind,
// odd source ids and values, error entries and empty ones.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	var readings []fhir.Reading
	at := now.Add(-time.Hour)
	for i, k := range rpm.Kinds() {
		r := fhir.Reading{ID: uuid.New(), PatientID: uuid.New(), Kind: k, Value: 70.25 + float64(i), Systolic: 120, Diastolic: 80.5,
			ObservedAt: at.Add(time.Duration(i) * time.Microsecond), ReceivedAt: now}
		readings = append(readings, r)
	}
	for _, src := range []string{"urn:gw|1", "plain", "<script>&amp;", `quote"back\slash`, "zoë", "line\u2028sep", "ctl\x01", "bad\xffutf8", "|x", "x|"} {
		readings = append(readings, fhir.Reading{ID: uuid.New(), PatientID: uuid.New(), Kind: rpm.HeartRate, Value: 1e-7,
			ObservedAt: at, ReceivedAt: now, SourceID: src, EnteredInError: src == "plain"})
	}
	for _, tr := range []bool{true, false} {
		fast, std, ok := encodeBoth(t, responseOf(t, tr, readings))
		if !ok {
			t.Fatal("AppendJSON declined Observations Tend builds")
		}
		if !bytes.Equal(fast, std) {
			t.Errorf("AppendJSON differs from encoding/json:\n%s\n%s", fast, std)
		}
	}
	// An Observation with an element Tend never writes is left to
	// encoding/json.
	b := responseOf(t, true, readings[:1])
	b.Entry[0].Resource = nil
	o := fhir.Observation(readings[0])
	o.Note = []r4.Annotation{{Text: "x"}}
	b2, err := fhir.ResponseBundle(true, []fhir.Result{{Status: 201, Resource: &o}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := encodeBoth(t, b2); ok {
		t.Error("AppendJSON took an Observation with a note")
	}
	if fast, std, ok := encodeBoth(t, b); !ok || !bytes.Equal(fast, std) {
		t.Errorf("entry without resource: %v\n%s\n%s", ok, fast, std)
	}
}

// Every element of an Observation that AppendJSON does not write makes it
// decline, so nothing is ever dropped from a response.
func TestAppendJSONDeclinesEveryOtherElement(t *testing.T) {
	t.Parallel()
	written := map[string]bool{"Id": true, "Meta": true, "Identifier": true, "Status": true, "Category": true, "Code": true,
		"Subject": true, "EffectiveDateTime": true, "ValueQuantity": true, "Component": true}
	typ := reflect.TypeFor[r4.Observation]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if written[f.Name] {
			continue
		}
		o := fhir.Observation(fhir.Reading{ID: uuid.New(), PatientID: uuid.New(), Kind: rpm.HeartRate, Value: 70, ObservedAt: now, ReceivedAt: now})
		v := reflect.ValueOf(&o).Elem().Field(i)
		switch f.Type.Kind() {
		case reflect.Pointer:
			v.Set(reflect.New(f.Type.Elem()))
		case reflect.Slice:
			v.Set(reflect.MakeSlice(f.Type, 1, 1))
		default:
			t.Fatalf("element %s of kind %s: extend this test", f.Name, f.Type.Kind())
		}
		b, err := fhir.ResponseBundle(true, []fhir.Result{{Status: 201, Resource: &o}}, now)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := b.AppendJSON(nil); ok {
			t.Errorf("AppendJSON took an Observation with %s set", f.Name)
		}
	}
}

// FuzzAppendJSON: for any source id, value text and times, AppendJSON
// either declines or writes what encoding/json writes.
//
//	go test -run '^$' -fuzz FuzzAppendJSON -fuzztime 60s ./fhir/
func FuzzAppendJSON(f *testing.F) {
	f.Add("urn:gw|1", "70", int64(0), "Patient/x")
	f.Add("<&>\u2028", "-0.5e+3", int64(-1), "")
	f.Add("\xff", " 1", int64(1<<40), "a\"b")
	f.Fuzz(func(t *testing.T, src, value string, micros int64, ref string) {
		r := fhir.Reading{ID: uuid.New(), PatientID: uuid.New(), Kind: rpm.HeartRate, Value: 70,
			ObservedAt: time.UnixMicro(micros), ReceivedAt: now, SourceID: src}
		o := fhir.Observation(r)
		n := json.Number(value)
		o.ValueQuantity.Value = &n
		o.Subject.Reference = &ref
		b, err := fhir.ResponseBundle(false, []fhir.Result{{Status: 201, Resource: &o}}, now)
		if err != nil {
			return
		}
		var w bytes.Buffer
		stdErr := json.NewEncoder(&w).Encode(b)
		fast, ok := b.AppendJSON(nil)
		switch {
		case ok && stdErr != nil:
			t.Fatalf("AppendJSON wrote %s where encoding/json fails: %v", fast, stdErr)
		case ok && !bytes.Equal(fast, w.Bytes()):
			t.Fatalf("AppendJSON differs from encoding/json:\n%s\n%s", fast, w.Bytes())
		}
	})
}
