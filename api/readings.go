package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/rpm"
)

// readingJSON is one reading on the wire. observed_at is parsed by hand so a
// malformed time is a 422 naming the field, not a 400.
type readingJSON struct {
	Kind       string   `json:"kind"`
	Value      *float64 `json:"value"`
	Systolic   *float64 `json:"systolic"`
	Diastolic  *float64 `json:"diastolic"`
	Unit       string   `json:"unit"`
	ObservedAt string   `json:"observed_at"`
	SourceID   string   `json:"source_id"`
}

// readingsBody is either one reading or {"readings": [...]}. The reading's
// fields are spelled out rather than embedded so that type errors name the
// field as the client wrote it.
type readingsBody struct {
	Kind       string        `json:"kind"`
	Value      *float64      `json:"value"`
	Systolic   *float64      `json:"systolic"`
	Diastolic  *float64      `json:"diastolic"`
	Unit       string        `json:"unit"`
	ObservedAt string        `json:"observed_at"`
	SourceID   string        `json:"source_id"`
	Readings   []readingJSON `json:"readings"`
}

func (s *Server) postReadings(w http.ResponseWriter, r *http.Request) {
	withBody(s, w, r, func(id uuid.UUID, body *readingsBody) (any, int, error) {
		req, v, err := body.request(id, r.URL.Query().Get("backfill"))
		if err != nil {
			return nil, 0, err
		}
		if len(v.Fields) > 0 {
			return nil, 0, mergeValidation(&v, s.eng.ValidateReadings(req))
		}
		res, err := s.eng.Ingest(r.Context(), actor(r), req)
		if err != nil {
			return nil, 0, err
		}
		if res.Alerts == nil {
			res.Alerts = []engine.AlertRef{}
		}
		// Every reading a duplicate: nothing new was created.
		return res, createdOr200(anyCreated(res.Readings)), nil
	})
}

// request turns the body into the engine's request for patient id: one
// reading, or a batch; backfill is the query parameter of that name. v
// holds the times that do not parse (the engine checks the rest); err a
// request malformed as a whole.
func (body *readingsBody) request(id uuid.UUID, backfill string) (req engine.IngestRequest, v rpm.ValidationError, err error) {
	req = engine.IngestRequest{PatientID: id}
	var items []readingJSON
	if body.Readings != nil {
		if body.single() != (readingJSON{}) {
			return req, v, &badRequest{status: http.StatusBadRequest, title: "Malformed request",
				detail: "send either one reading or {\"readings\": [...]}, not both"}
		}
		req.Batch, items = true, body.Readings
	} else {
		items = []readingJSON{body.single()}
	}
	if len(items) > engine.MaxBatch {
		return req, v, &rpm.ValidationError{Fields: []rpm.FieldError{{Field: "readings",
			Reason: fmt.Sprintf("at most %d readings per request", engine.MaxBatch)}}}
	}
	switch backfill {
	case "", "false":
	case "true":
		req.Backfill = true
	default:
		return req, v, &rpm.ValidationError{Fields: []rpm.FieldError{{Field: "backfill", Reason: "must be true or false"}}}
	}
	// Every field is checked before anything is ingested: a request with any
	// problem stores, audits and queues nothing.
	req.Readings = make([]rpm.Reading, len(items))
	for i, it := range items {
		rd := rpm.Reading{Kind: rpm.Kind(it.Kind), Value: it.Value, Systolic: it.Systolic, Diastolic: it.Diastolic,
			Unit: it.Unit, SourceID: it.SourceID}
		if it.ObservedAt != "" {
			t, err := time.Parse(time.RFC3339Nano, it.ObservedAt)
			if err != nil {
				field := "observed_at"
				if req.Batch {
					field = fmt.Sprintf("readings[%d].observed_at", i)
				}
				v.Add(field, "must be an RFC 3339 time such as 2026-11-22T08:00:00Z")
			}
			rd.ObservedAt = t
		}
		req.Readings[i] = rd
	}
	return req, v, nil
}

// mergeValidation combines the API's own field errors with the engine's, so
// the client sees every problem at once; for a field the API already
// reported, the API's reason wins.
func mergeValidation(v *rpm.ValidationError, err error) error {
	if len(v.Fields) == 0 {
		return err
	}
	var ev *rpm.ValidationError
	if errors.As(err, &ev) {
		seen := map[string]bool{}
		for _, f := range v.Fields {
			seen[f.Field] = true
		}
		for _, f := range ev.Fields {
			if !seen[f.Field] {
				v.Fields = append(v.Fields, f)
			}
		}
	}
	return v
}

func anyCreated(rs []engine.ReadingStatus) bool {
	for _, r := range rs {
		if r.Status == "created" {
			return true
		}
	}
	return false
}

func (s *Server) listReadings(w http.ResponseWriter, r *http.Request) {
	withID(s, w, r, func(id uuid.UUID) (any, int, error) {
		q := r.URL.Query()
		var v rpm.ValidationError
		f := engine.ReadingFilter{PatientID: id, Kind: rpm.Kind(q.Get("kind")), Cursor: q.Get("cursor")}
		f.Since = queryTime(&v, q.Get("since"), "since")
		f.Until = queryTime(&v, q.Get("until"), "until")
		f.Limit = queryLimit(&v, q.Get("limit"))
		if err := v.OrNil(); err != nil {
			return nil, 0, err
		}
		items, next, err := s.eng.ListReadings(r.Context(), actor(r), f)
		return newList(items, next), http.StatusOK, err
	})
}
