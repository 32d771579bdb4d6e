package rules

import (
	"time"

	"github.com/tendhealth/tend/rpm"
)

// Event is a care event that event rules count, such as a missed dose.
type Event struct {
	ID   string
	Type EventType
	// Medication identifies the medication (or its schedule) of a dose
	// event; rules with per: medication count each medication apart.
	Medication string
	// Kind is the vital kind of a missed measurement; rules with per: kind
	// count each kind apart.
	Kind rpm.Kind
	// At is when the event happened (for a missed dose: when its grace
	// period ended).
	At time.Time
}

// EventInput is one new event to judge.
type EventInput struct {
	// Event is the new event.
	Event Event
	// History holds the patient's other events from Event.At minus
	// Pack.EventLookback() on, in any order.
	History []Event
	// Programs are the patient's enrolled programs.
	Programs []string
	// Params are the patient's overrides: rule id → param name → value.
	Params map[string]map[string]float64
}

// EvaluateEvents judges a new event against the enabled event rules. A rule
// fires when, counting this event, its group (all events of the type, or
// one medication, or one kind) holds at least count events within the
// window ending at this event — and did not already at the group's previous
// event, so that an episode of missed doses fires once; later events of the
// same episode are returned in Result.Suppressed. Events in History observed
// after Event make the findings Late.
func (p *Pack) EvaluateEvents(in EventInput) Result {
	var res Result
	var buf [maxParams]float64
	e := &in.Event
	for _, r := range p.events {
		if r.event.Type != e.Type || !r.appliesTo(in.Programs) {
			continue
		}
		params := r.params.resolve(buf[:0], in.Programs, in.Params[r.id])
		need := params[r.params.index["count"]]
		window := r.event.Window.Std()
		key := eventKey(r.event, e)
		n := 1
		var prev *Event
		late := false
		for i := range in.History {
			h := &in.History[i]
			if h.Type != e.Type || eventKey(r.event, h) != key || (e.ID != "" && h.ID == e.ID) {
				continue
			}
			if h.At.After(e.At) {
				late = true
				continue
			}
			if !h.At.Before(e.At.Add(-window)) {
				n++
			}
			if prev == nil || h.At.After(prev.At) {
				prev = h
			}
		}
		if float64(n) < need {
			continue
		}
		f := Finding{
			RuleID: r.id, Version: r.version, Urgency: r.urgency, Title: r.title, Late: late,
			Kind: e.Kind, ObservationID: e.ID, Key: key, At: e.At,
		}
		if prev != nil && float64(countBefore(in.History, r.event, key, prev, e, window)) >= need {
			res.Suppressed = append(res.Suppressed, f)
			continue
		}
		res.Findings = append(res.Findings, f)
	}
	sortFindings(res.Findings)
	sortFindings(res.Suppressed)
	return res
}

// countBefore counts the group's events in the window ending at prev,
// prev included, the new event excluded.
func countBefore(hist []Event, spec *EventSpec, key string, prev, cur *Event, window time.Duration) int {
	n := 0
	from := prev.At.Add(-window)
	for i := range hist {
		h := &hist[i]
		if h.Type != spec.Type || eventKey(spec, h) != key || (cur.ID != "" && h.ID == cur.ID) {
			continue
		}
		if h.At.After(prev.At) || h.At.Before(from) {
			continue
		}
		n++
	}
	return n
}

func eventKey(spec *EventSpec, e *Event) string {
	switch spec.Per {
	case PerMedication:
		return e.Medication
	case PerKind:
		return string(e.Kind)
	}
	return ""
}
