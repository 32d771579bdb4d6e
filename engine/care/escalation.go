package care

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/tendhealth/tend/internal/text"
	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/rules"
)

// EscalationPolicy says how a care team's unacknowledged alerts escalate:
// how long each urgency may wait for an acknowledgement, and who is notified
// at each level in turn.
type EscalationPolicy struct {
	// AckDeadlines is the time to acknowledge per urgency ("critical",
	// "high", "medium", "low"); an urgency without one does not escalate.
	AckDeadlines map[rpm.Urgency]rules.Duration `json:"ack_deadlines,omitempty"`
	// Levels are notified in order: "on_call", "leads", "all".
	Levels []string `json:"levels,omitempty"`
	// RepeatIntervals override, per urgency, how long an open alert that
	// keeps firing waits before it pages again (rpm.Urgency.RepeatInterval
	// by default).
	RepeatIntervals map[rpm.Urgency]rules.Duration `json:"repeat_intervals,omitempty"`
	// SkipOfflineFirstStep makes the first page of an alert that escalates
	// reach only those of its recipients who are online (by presence);
	// when none is, it reaches them all, as without the setting. Escalation
	// step 1 pages whoever it left out. Off by default.
	SkipOfflineFirstStep bool `json:"skip_offline_first_step,omitempty"`
}

// EscalationInput is a policy as a client sends it: deadlines as durations
// such as "5m" or "4h".
type EscalationInput struct {
	AckDeadlines    map[string]string `json:"ack_deadlines"`
	Levels          []string          `json:"levels"`
	RepeatIntervals map[string]string `json:"repeat_intervals"`
	// SkipOfflineFirstStep: see EscalationPolicy.
	SkipOfflineFirstStep bool `json:"skip_offline_first_step"`
}

// Policy checks in and returns the policy it describes; every problem is
// a field error under field (e.g. "escalation.ack_deadlines.critical").
func (in *EscalationInput) Policy(v *rpm.ValidationError, field string) *EscalationPolicy {
	if in == nil {
		return nil
	}
	p := &EscalationPolicy{Levels: in.Levels, SkipOfflineFirstStep: in.SkipOfflineFirstStep,
		AckDeadlines:    durations(v, field+".ack_deadlines", in.AckDeadlines),
		RepeatIntervals: durations(v, field+".repeat_intervals", in.RepeatIntervals)}
	p.validate(v, field)
	return p
}

// durations parses a map of urgency → duration text, adding a field error
// (under field) for every bad urgency or duration.
func durations(v *rpm.ValidationError, field string, in map[string]string) map[rpm.Urgency]rules.Duration {
	if in == nil {
		return nil
	}
	out := make(map[rpm.Urgency]rules.Duration, len(in))
	for _, u := range slices.Sorted(maps.Keys(in)) {
		urg := rpm.Urgency(u)
		if !urg.Valid() {
			v.Add(field, fmt.Sprintf("%q is not an urgency: use critical, high, medium or low", text.Truncate(u, 40)))
			continue
		}
		d, err := rules.ParseDuration(in[u])
		if err != nil {
			v.Add(field+"."+u, "must be a duration such as 5m, 30m or 4h")
			continue
		}
		out[urg] = d
	}
	return out
}

// EscalationLevels are the levels a policy may name.
var EscalationLevels = []string{"on_call", "leads", "all"}

// maxAckDeadline bounds a deadline: beyond a week, an alert is not being
// triaged.
const maxAckDeadline = 7 * 24 * time.Hour

// validate adds a field error (under field) to v for every problem of p.
func (p *EscalationPolicy) validate(v *rpm.ValidationError, field string) {
	for _, u := range slices.Sorted(maps.Keys(p.AckDeadlines)) {
		if d := p.AckDeadlines[u].Std(); d < time.Minute || d > maxAckDeadline {
			v.Add(fmt.Sprintf("%s.ack_deadlines.%s", field, u), "must be a duration from 1m to 168h")
		}
	}
	for _, u := range slices.Sorted(maps.Keys(p.RepeatIntervals)) {
		if d := p.RepeatIntervals[u].Std(); d < time.Minute || d > maxAckDeadline {
			v.Add(fmt.Sprintf("%s.repeat_intervals.%s", field, u), "must be a duration from 1m to 168h")
		}
	}
	if p.AckDeadlines != nil && len(p.Levels) == 0 {
		v.Add(field+".levels", "is required with ack_deadlines: who is notified at each level (on_call, leads, all)")
	}
	seen := map[string]bool{}
	for i, l := range p.Levels {
		f := fmt.Sprintf("%s.levels[%d]", field, i)
		switch {
		case !slices.Contains(EscalationLevels, l):
			v.Add(f, "must be on_call, leads or all")
		case seen[l]:
			v.Add(f, "is listed twice")
		}
		seen[l] = true
	}
}
