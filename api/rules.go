package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/rules"
)

// ruleProblem is the problem+json body of an invalid rule: each error also
// carries the line of the request body it is on (when known) and the rule.
type ruleProblem struct {
	Type      string           `json:"type"`
	Title     string           `json:"title"`
	Status    int              `json:"status"`
	Detail    string           `json:"detail,omitempty"`
	Instance  string           `json:"instance,omitempty"`
	RequestID string           `json:"request_id,omitempty"`
	Errors    []ruleFieldError `json:"errors"`
}

type ruleFieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
	Line   int    `json:"line,omitempty"`
	Rule   string `json:"rule,omitempty"`
}

// writeRuleError answers an invalid rule (a *rules.LoadError) with a 422
// listing every problem; fields are prefixed with prefix ("rule." when the
// rule is nested in the body) and lines shifted by lineOffset. Any other
// error goes to writeError.
func (s *Server) writeRuleError(w http.ResponseWriter, r *http.Request, err error, prefix string, lineOffset int) {
	var le *rules.LoadError
	if !errors.As(err, &le) {
		s.writeError(w, r, err)
		return
	}
	p := ruleProblem{Type: problemTypes[http.StatusUnprocessableEntity], Title: "Invalid rule", Status: http.StatusUnprocessableEntity,
		Detail: fmt.Sprintf("the rule has %d problem(s)", len(le.Problems)), Instance: r.URL.Path}
	p.RequestID, _ = r.Context().Value(requestIDKey).(string)
	for _, pr := range le.Problems {
		field := prefix + pr.Field
		if pr.Field == "" {
			field = strings.TrimSuffix(prefix, ".")
			if field == "" {
				field = "rule"
			}
		}
		line := pr.Line
		if line > 0 {
			line += lineOffset
		}
		p.Errors = append(p.Errors, ruleFieldError{Field: field, Reason: pr.Reason, Line: line, Rule: pr.Rule})
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusUnprocessableEntity)
	_ = json.NewEncoder(w).Encode(p)
}

// readJSONObject reads a JSON object body as raw bytes (at most
// MaxBodyBytes), for endpoints whose body the rules package reads itself so
// that problems carry line numbers.
func (s *Server) readJSONObject(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if err := checkContentType(r, "application/json"); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		return nil, decodeError(err, s.cfg.MaxBodyBytes, nil)
	}
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) == 0:
		return nil, &badRequest{status: http.StatusBadRequest, title: "Malformed JSON", detail: "the request body is empty"}
	case !json.Valid(trimmed):
		return nil, &badRequest{status: http.StatusBadRequest, title: "Malformed JSON", detail: "the request body is not valid JSON"}
	case trimmed[0] != '{':
		return nil, &badRequest{status: http.StatusBadRequest, title: "Malformed JSON", detail: "the body must be a JSON object"}
	}
	if _, err := sanitizeJSON(body); err != nil {
		return nil, err
	}
	return body, nil
}

// checkRuleTypes rejects a rule whose values have the wrong JSON type (a
// number or boolean where text belongs, say), which the rule parser would
// otherwise read as text. Unknown fields are left to the parser, which names
// them with their line.
func checkRuleTypes(raw []byte, prefix string) error {
	clean, err := sanitizeJSON(raw)
	if err != nil {
		return err
	}
	var rule rules.Rule
	if err := json.Unmarshal(raw, &rule); err != nil {
		err = decodeError(err, 0, clean)
		var bad *badRequest
		if errors.As(err, &bad) {
			for i := range bad.fields {
				bad.fields[i].Field = prefix + bad.fields[i].Field
			}
		}
		return err
	}
	return nil
}

func (s *Server) listRules(w http.ResponseWriter, r *http.Request) {
	items, err := s.eng.ListRules(r.Context(), actor(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newList(items, ""))
}

func (s *Server) getRule(w http.ResponseWriter, r *http.Request) {
	rule, err := s.eng.GetRule(r.Context(), actor(r), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rule)
}

func (s *Server) createRule(w http.ResponseWriter, r *http.Request) {
	body, err := s.readJSONObject(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := checkRuleTypes(body, ""); err != nil {
		s.writeError(w, r, err)
		return
	}
	rule, err := s.eng.CreateRule(r.Context(), actor(r), body)
	if err != nil {
		s.writeRuleError(w, r, err, "", 0)
		return
	}
	w.Header().Set("Location", "/v1/rules/"+rule.ID)
	writeJSON(w, http.StatusCreated, rule)
}

func (s *Server) updateRule(w http.ResponseWriter, r *http.Request) {
	body, err := s.readJSONObject(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := checkRuleTypes(body, ""); err != nil {
		s.writeError(w, r, err)
		return
	}
	rule, _, err := s.eng.UpdateRule(r.Context(), actor(r), r.PathValue("id"), body)
	if err != nil {
		s.writeRuleError(w, r, err, "", 0)
		return
	}
	writeJSON(w, http.StatusOK, rule)
}

func (s *Server) listRuleErrors(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var v rpm.ValidationError
	f := engine.RuleErrorFilter{RuleID: q.Get("rule_id"), Cursor: q.Get("cursor"), Limit: queryLimit(&v, q.Get("limit"))}
	if len(f.RuleID) > 64 {
		v.Add("rule_id", "is longer than 64 characters")
	}
	if err := v.OrNil(); err != nil {
		s.writeError(w, r, err)
		return
	}
	items, next, err := s.eng.ListRuleErrors(r.Context(), actor(r), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newList(items, next))
}

// backtestBody is the body of POST /v1/rules/backtest.
type backtestBody struct {
	Rule       json.RawMessage `json:"rule"`
	RuleID     string          `json:"rule_id"`
	Since      string          `json:"since"`
	Until      string          `json:"until"`
	PatientIDs []string        `json:"patient_ids"`
	Programs   []string        `json:"programs"`
	Examples   int             `json:"examples"`
}

func (s *Server) backtest(w http.ResponseWriter, r *http.Request) {
	body, err := s.readJSONObject(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in backtestBody
	if err := decodeBody(body, &in, s.cfg.MaxBodyBytes); err != nil {
		s.writeError(w, r, err)
		return
	}
	var v rpm.ValidationError
	req := engine.BacktestRequest{RuleID: in.RuleID, Programs: in.Programs, Examples: in.Examples}
	if raw := bytes.TrimSpace(in.Rule); len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		if raw[0] != '{' {
			v.Add("rule", "must be a rule object")
		} else if err := checkRuleTypes(raw, "rule."); err != nil {
			s.writeError(w, r, err)
			return
		}
		req.Rule = raw
	}
	req.Since = queryTime(&v, in.Since, "since")
	req.Until = queryTime(&v, in.Until, "until")
	for i, p := range in.PatientIDs {
		id, err := uuid.Parse(p)
		if err != nil {
			v.Add(fmt.Sprintf("patient_ids[%d]", i), "must be a UUID")
		}
		req.PatientIDs = append(req.PatientIDs, id)
	}
	if err := v.OrNil(); err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.eng.Backtest(r.Context(), actor(r), req)
	if err != nil {
		// Problem lines are counted from the rule object: shift them to
		// the body's lines.
		offset := 0
		if i := bytes.Index(body, req.Rule); i >= 0 && len(req.Rule) > 0 {
			offset = bytes.Count(body[:i], []byte("\n"))
		}
		s.writeRuleError(w, r, err, "rule.", offset)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// simulateBody is the body of POST /v1/rules/simulate.
type simulateBody struct {
	Rules       []json.RawMessage             `json:"rules"`
	Params      map[string]map[string]float64 `json:"params"`
	Patients    int                           `json:"patients"`
	Weeks       int                           `json:"weeks"`
	Seeds       []uint64                      `json:"seeds"`
	Profiles    []string                      `json:"profiles"`
	AnswerRates []float64                     `json:"answer_rates"`
}

// simulate answers the simulator's figures for a proposed change to the
// active pack next to the active pack's own.
func (s *Server) simulate(w http.ResponseWriter, r *http.Request) {
	body, err := s.readJSONObject(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in simulateBody
	if err := decodeBody(body, &in, s.cfg.MaxBodyBytes); err != nil {
		s.writeError(w, r, err)
		return
	}
	var v rpm.ValidationError
	for i, raw := range in.Rules {
		if raw = bytes.TrimSpace(raw); len(raw) == 0 || raw[0] != '{' {
			v.Add(fmt.Sprintf("rules[%d]", i), "must be a rule object")
		} else if err := checkRuleTypes(raw, fmt.Sprintf("rules[%d].", i)); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if err := v.OrNil(); err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.eng.Simulate(r.Context(), actor(r), engine.SimulateRequest{Rules: in.Rules, Params: in.Params, Patients: in.Patients,
		Weeks: in.Weeks, Seeds: in.Seeds, Profiles: in.Profiles, AnswerRates: in.AnswerRates})
	if err != nil {
		s.writeRuleError(w, r, err, "", 0)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
