package fhir

import (
	"encoding/json"
	"io"

	"github.com/google/uuid"
	"strings"
	"testing"
	"time"
)

// BenchmarkReadBundle reads a transaction Bundle of 500 heart rates, the
// fast path against the full decoder. Reported: obs/s of decoding alone.
//
//	go test -run '^$' -bench BenchmarkReadBundle ./fhir/
func BenchmarkReadBundle(b *testing.B) {
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	entries := make([]string, 500)
	for i := range entries {
		entries[i] = `{"request":{"method":"POST","url":"Observation"},"resource":{"resourceType":"Observation","status":"final",
		"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],
		"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/0190f3a2-7c1e-7a40-9d8e-0d5f3b2a1c11"},
		"effectiveDateTime":"` + now.Add(-time.Duration(i)*time.Second).Format(time.RFC3339Nano) + `",
		"valueQuantity":{"value":70,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"}}}`
	}
	data := []byte(`{"resourceType":"Bundle","type":"transaction","entry":[` + strings.Join(entries, ",") + `]}`)
	for _, c := range []struct {
		name string
		read func([]byte, time.Time) (Bundle, []Decoded, error)
	}{{"fast", ReadBundle}, {"full", readBundleFull}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, dec, err := c.read(data, now)
				if err != nil || len(dec) != 500 || dec[0].Err != nil {
					b.Fatal(err, dec[0].Err)
				}
			}
			b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "obs/s")
		})
	}
}

// BenchmarkResponseEncode writes a transaction-response Bundle of 500
// Observations, AppendJSON against encoding/json.
//
//	go test -run '^$' -bench BenchmarkResponseEncode ./fhir/
func BenchmarkResponseEncode(b *testing.B) {
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	results := make([]Result, 500)
	for i := range results {
		o := Observation(Reading{ID: newID(i), PatientID: newID(1000), Kind: "heart_rate", Value: 70, ObservedAt: now.Add(-time.Duration(i) * time.Second), ReceivedAt: now})
		results[i] = Result{Status: 201, Resource: &o, LastUpdate: now}
	}
	out, err := ResponseBundle(true, results, now)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := out.AppendJSON(nil); !ok {
				b.Fatal("declined")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := json.NewEncoder(io.Discard).Encode(out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func newID(i int) uuid.UUID {
	var u uuid.UUID
	u[0], u[1], u[15] = byte(i>>8), byte(i), 7
	return u
}
