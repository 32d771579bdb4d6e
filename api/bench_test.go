package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// BenchmarkBundleIngest compares a FHIR transaction Bundle of 500
// Observations with the JSON batch of 500 readings, through the same HTTP
// server in the same run. Reported: obs/s.
func BenchmarkBundleIngest(b *testing.B) {
	s := newSetup(b)
	const n = 500
	base := time.Now().UTC().Add(-24 * time.Hour)
	seq := 0
	next := func() time.Time { seq++; return base.Add(time.Duration(seq) * time.Millisecond) }
	b.Run("fhir-transaction", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			entries := make([]string, n)
			for i := range entries {
				entries[i] = obsJSON(ref(s.patientID), "8867-4", `"valueQuantity":{"value":70,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"}`,
					next().Format(time.RFC3339Nano))
			}
			if r := s.device.do("POST", "/fhir/r4", bundleJSON("transaction", entries...)); r.status != http.StatusOK {
				b.Fatalf("%d %s", r.status, r.body[:200])
			}
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "obs/s")
	})
	b.Run("json-batch", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			items := make([]string, n)
			for i := range items {
				items[i] = fmt.Sprintf(`{"kind":"heart_rate","value":70,"unit":"/min","observed_at":%q}`, next().Format(time.RFC3339Nano))
			}
			if r := s.device.do("POST", "/v1/patients/"+s.patientID+"/readings", `{"readings":[`+strings.Join(items, ",")+`]}`); r.status != http.StatusCreated {
				b.Fatalf("%d %s", r.status, r.body)
			}
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "obs/s")
	})
}
