package api

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/tendhealth/tend/rpm"
)

// Fuzz targets for the JSON request decoders. Whatever the bytes, decoding
// must not panic and must fail only with a client error (a *badRequest or a
// *rpm.ValidationError), never with something that would become a 500. Seeds
// live in testdata/fuzz; `make fuzz` runs each target for a bounded time.

func checkDecodeErr(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var bad *badRequest
	var v *rpm.ValidationError
	if !errors.As(err, &bad) && !errors.As(err, &v) {
		t.Fatalf("decode error %T is not a client error: %v", err, err)
	}
	if bad != nil && (bad.status < 400 || bad.status >= 500) {
		t.Fatalf("decode error status %d", bad.status)
	}
}

func FuzzDecodeReadings(f *testing.F) {
	f.Add([]byte(`{"kind":"blood_pressure","systolic":120,"diastolic":80,"unit":"mm[Hg]","observed_at":"2026-11-22T08:00:00Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var body readingsBody
		checkDecodeErr(t, decodeBody(data, &body, 1<<20))
	})
}

func FuzzDecodeSymptomReport(f *testing.F) {
	f.Add([]byte(`{"symptoms":[{"code":"dizziness","severity":3,"text":"x"}],"note":"n"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var body symptomReportBody
		checkDecodeErr(t, decodeBody(data, &body, 1<<20))
	})
}

func FuzzDecodeParams(f *testing.F) {
	f.Add([]byte(`{"bp-crisis":{"systolic_max":175}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var raw map[string]json.RawMessage
		checkDecodeErr(t, decodeBody(data, &raw, 1<<20))
	})
}

func FuzzCheckRuleTypes(f *testing.F) {
	f.Add([]byte(`{"id":"x","title":"X","kind":"heart_rate","urgency":"high","when":"value > params.max","params":{"max":130}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return // readJSONObject refuses invalid JSON before the type check
		}
		checkDecodeErr(t, checkRuleTypes(data, ""))
	})
}
