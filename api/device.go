package api

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/rpm"
)

// Answer is the API's answer to a request independent of its transport: the
// status HTTP sends and the JSON body, a result or a Problem. Devices that
// speak MQTT (package api/mqtt) get exactly what HTTP answers.
type Answer struct {
	Status int
	Body   any
	// Err is the unexpected error behind a 500, for the caller to log with
	// its own ids (it carries ids, never PHI); nil otherwise.
	Err error
	// Retry tells a transient failure (the database is unreachable): nothing
	// was stored, or it may have been; sending the same again is safe.
	Retry bool
}

// OK reports whether the request succeeded (a 2xx status).
func (a Answer) OK() bool { return a.Status >= 200 && a.Status < 300 }

// DeviceOpts tunes DeviceReadings and DeviceSymptoms.
type DeviceOpts struct {
	// DeriveSourceIDs gives a reading sent without a source_id one derived
	// from its patient, kind, values, unit and observed_at, so that a
	// transport's redelivery of the same reading is a duplicate, never a
	// second reading.
	DeriveSourceIDs bool
	// IdempotencyKey is the symptom report's key, as the HTTP header
	// Idempotency-Key.
	IdempotencyKey string
}

// deviceReadingsBody is POST /v1/patients/{id}/readings' body with the
// patient named in it, for transports without a path: it may only name the
// token's own patient.
type deviceReadingsBody struct {
	PatientID *uuid.UUID `json:"patient_id"`
	readingsBody
}

// deviceSymptomsBody is the symptom report's body with the patient named in
// it.
type deviceSymptomsBody struct {
	PatientID *uuid.UUID `json:"patient_id"`
	symptomReportBody
}

// DeviceReadings answers readings that a device or patient token sent over
// another transport, exactly as POST /v1/patients/{id}/readings would for
// the token's own patient: the same decoding (body limit, unknown fields,
// types), validation, ingest (and so the same group commit and
// transaction) and JSON. The body may name the patient in "patient_id";
// another patient than the token's is refused.
func (s *Server) DeviceReadings(ctx context.Context, a engine.Actor, body []byte, o DeviceOpts) Answer {
	var in deviceReadingsBody
	if err := s.decodeDevice(body, &in); err != nil {
		return answerError(err)
	}
	if ans, ok := checkPatient(a, in.PatientID); !ok {
		return ans
	}
	req, err := s.readingsRequest(a.PatientID, &in.readingsBody, "")
	if err != nil {
		return answerError(err)
	}
	if o.DeriveSourceIDs {
		deriveSourceIDs(a.PatientID, req.Readings)
	}
	res, status, err := s.ingest(ctx, a, req)
	if err != nil {
		return answerError(err)
	}
	return Answer{Status: status, Body: res}
}

// DeviceSymptoms answers a symptom report sent over another transport, as
// POST /v1/patients/{id}/symptom-reports would for the token's patient.
func (s *Server) DeviceSymptoms(ctx context.Context, a engine.Actor, body []byte, o DeviceOpts) Answer {
	var in deviceSymptomsBody
	if err := s.decodeDevice(body, &in); err != nil {
		return answerError(err)
	}
	if ans, ok := checkPatient(a, in.PatientID); !ok {
		return ans
	}
	req, err := symptomRequest(a.PatientID, &in.symptomReportBody, o.IdempotencyKey)
	if err != nil {
		return answerError(err)
	}
	res, status, err := s.reportSymptoms(ctx, a, req)
	if err != nil {
		return answerError(err)
	}
	return Answer{Status: status, Body: res}
}

// decodeDevice is decode for a body that came whole over another
// transport: the same limit (413 beyond) and strict decoding.
func (s *Server) decodeDevice(body []byte, v any) error {
	if int64(len(body)) > s.cfg.MaxBodyBytes {
		return decodeError(&http.MaxBytesError{Limit: s.cfg.MaxBodyBytes}, s.cfg.MaxBodyBytes, nil)
	}
	return decodeBody(body, v, s.cfg.MaxBodyBytes)
}

// Allow takes one request from the user's rate limit (Config.RateLimit),
// the same bucket HTTP requests draw from; it returns 0 when the request
// may proceed, else how long to wait.
func (s *Server) Allow(a engine.Actor) time.Duration { return s.allow(a) }

// MaxBodyBytes is the largest request body accepted (Config.MaxBodyBytes).
func (s *Server) MaxBodyBytes() int64 { return s.cfg.MaxBodyBytes }

// checkPatient refuses a token without a patient, and a body naming another
// patient than the token's (answered like a path to another patient: 404).
func checkPatient(a engine.Actor, named *uuid.UUID) (Answer, bool) {
	if a.PatientID == uuid.Nil {
		return answerError(engine.ErrForbidden), false
	}
	if named != nil && *named != a.PatientID {
		p := Problem{Type: problemTypes[http.StatusNotFound], Title: "Not found", Status: http.StatusNotFound,
			Detail: "patient_id is not the patient of this token",
			Errors: []rpm.FieldError{{Field: "patient_id", Reason: "is not the patient of this token"}}}
		return Answer{Status: p.Status, Body: p}, false
	}
	return Answer{}, true
}

func answerError(err error) Answer {
	p := classify(err)
	p.Type = problemTypes[p.Status]
	p.Errors = safeFields(p.Errors)
	ans := Answer{Status: p.Status, Body: p, Retry: isUnavailable(err)}
	if p.Status == http.StatusInternalServerError {
		ans.Err = err
	}
	return ans
}

// deriveSourceIDs gives each reading without a source_id one derived from
// what it measured: the same reading sent again is the same id.
func deriveSourceIDs(patient uuid.UUID, rs []rpm.Reading) {
	for i := range rs {
		r := &rs[i]
		if r.SourceID != "" {
			continue
		}
		h := sha256.New()
		h.Write(patient[:])
		for _, part := range []string{string(r.Kind), num(r.Value), num(r.Systolic), num(r.Diastolic), r.Unit,
			r.ObservedAt.UTC().Format(time.RFC3339Nano)} {
			h.Write([]byte(part))
			h.Write([]byte{0})
		}
		r.SourceID = "derived:" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18])
	}
}

func num(f *float64) string {
	if f == nil {
		return "-"
	}
	return strconv.FormatFloat(*f, 'g', -1, 64)
}
