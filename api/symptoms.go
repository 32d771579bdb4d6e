package api

import (
	"fmt"
	"math"
	"net/http"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/rpm"
)

// symptomReportBody is the body of POST /v1/patients/{id}/symptom-reports.
// severity is read as a number so that a missing or fractional one is a 422
// naming symptoms[i].severity.
type symptomReportBody struct {
	Symptoms []struct {
		Code     string   `json:"code"`
		Severity *float64 `json:"severity"`
		Text     string   `json:"text"`
	} `json:"symptoms"`
	Note string `json:"note"`
}

func (s *Server) postSymptomReport(w http.ResponseWriter, r *http.Request) {
	withBody(s, w, r, func(id uuid.UUID, in *symptomReportBody) (any, int, error) {
		req := engine.NewSymptomReport{PatientID: id, Note: in.Note, IdempotencyKey: r.Header.Get("Idempotency-Key")}
		var v rpm.ValidationError
		for i, sy := range in.Symptoms {
			sev := 0
			switch {
			case sy.Severity == nil:
				v.Add(fmt.Sprintf("symptoms[%d].severity", i), "is required")
			case *sy.Severity != math.Trunc(*sy.Severity) || *sy.Severity < rpm.MinSeverity || *sy.Severity > rpm.MaxSeverity:
				v.Add(fmt.Sprintf("symptoms[%d].severity", i), "must be a whole number from 0 to 10")
			default:
				sev = int(*sy.Severity)
			}
			req.Symptoms = append(req.Symptoms, rpm.Symptom{Code: rpm.SymptomCode(sy.Code), Severity: sev, Text: sy.Text})
		}
		if len(v.Fields) > 0 {
			// Report every problem at once, without storing anything.
			return nil, 0, mergeValidation(&v, req.Validate())
		}
		res, err := s.eng.ReportSymptoms(r.Context(), actor(r), req)
		return res, createdOr200(res.Status != "duplicate"), err
	})
}

func (s *Server) listSymptomReports(w http.ResponseWriter, r *http.Request) {
	withID(s, w, r, func(id uuid.UUID) (any, int, error) {
		q := r.URL.Query()
		var v rpm.ValidationError
		f := engine.SymptomReportFilter{PatientID: id, Cursor: q.Get("cursor"), Limit: queryLimit(&v, q.Get("limit"))}
		if err := v.OrNil(); err != nil {
			return nil, 0, err
		}
		items, next, err := s.eng.ListSymptomReports(r.Context(), actor(r), f)
		return newList(items, next), http.StatusOK, err
	})
}
