package api_test

import (
	"net/http"
	"testing"
)

// A care team's escalation policy is typed and validated: a bad one is a
// 422 naming each field, a good one is stored and answered back.
func TestEscalationPolicyIsValidated(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	r := w.admin.do("POST", "/v1/care-teams", map[string]any{"name": "Night", "escalation": map[string]any{
		"ack_deadlines": map[string]any{"critical": "soon", "high": "10s", "urgentish": "5m"},
		"levels":        []string{"on_call", "nurses", "on_call"}}})
	wantProblem(t, r, http.StatusUnprocessableEntity, "escalation.ack_deadlines.critical", "escalation.ack_deadlines.high",
		"escalation.ack_deadlines", "escalation.levels[1]", "escalation.levels[2]")
	wantProblem(t, w.admin.do("POST", "/v1/care-teams", map[string]any{"name": "Night", "escalation": map[string]any{
		"ack_deadlines": map[string]any{"critical": "5m"}}}), http.StatusUnprocessableEntity, "escalation.levels")
	wantProblem(t, w.admin.do("POST", "/v1/care-teams", map[string]any{"name": "Night", "escalation": map[string]any{
		"repeat_intervals": map[string]any{"critical": "10s", "loud": "5m"}}}), http.StatusUnprocessableEntity,
		"escalation.repeat_intervals.critical", "escalation.repeat_intervals")
	wantProblem(t, w.admin.do("POST", "/v1/care-teams", map[string]any{"name": "Night", "escalation": map[string]any{
		"ack_deadlines": map[string]any{"critical": 5}}}), http.StatusUnprocessableEntity, "escalation.ack_deadlines.critical")

	r = w.admin.do("POST", "/v1/care-teams", map[string]any{"name": "Night", "escalation": map[string]any{
		"ack_deadlines": map[string]any{"critical": "5m", "high": "30m", "medium": "4h"},
		"levels":        []string{"on_call", "leads", "all"}}})
	if r.status != http.StatusCreated {
		t.Fatalf("valid policy: %d %s", r.status, r.body)
	}
	var team struct {
		Escalation struct {
			AckDeadlines map[string]string `json:"ack_deadlines"`
			Levels       []string
		}
	}
	r.decode(t, &team)
	if team.Escalation.AckDeadlines["critical"] != "5m" || len(team.Escalation.Levels) != 3 {
		t.Fatalf("escalation = %+v", team.Escalation)
	}
}
