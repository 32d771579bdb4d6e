package rules

import (
	"time"

	"github.com/tendhealth/tend/rpm"
)

// MissingInput is what a periodic job knows about one patient's data.
type MissingInput struct {
	// Programs are the patient's enrolled programs.
	Programs []string
	// EnrolledAt is when monitoring started: no finding before EnrolledAt
	// plus the rule's duration.
	EnrolledAt time.Time
	// LastObserved is the observed_at of the patient's newest reading per
	// kind; a kind without readings is absent.
	LastObserved map[rpm.Kind]time.Time
	// Now is the time of the check.
	Now time.Time
	// Since, when set, makes the check edge-triggered: data that became
	// missing at or before Since is not reported again. The job passes the
	// time of its previous successful run, so each gap fires once. Zero:
	// every gap still open fires.
	Since time.Time
}

// EvaluateMissing reports the enabled missing-data rules whose kind has had
// no reading for the rule's duration: since the last reading, or since
// enrolment when that is later (or there is no reading). Finding.At is the
// moment the data became missing.
func (p *Pack) EvaluateMissing(in MissingInput) []Finding {
	var out []Finding
	for _, r := range p.missing {
		if !r.appliesTo(in.Programs) {
			continue
		}
		due, ok := missingSince(r, in.EnrolledAt, in.LastObserved[r.kind])
		if !ok || in.Now.Before(due) {
			continue
		}
		if !in.Since.IsZero() && !due.After(in.Since) {
			continue
		}
		out = append(out, Finding{
			RuleID: r.id, Version: r.version, Urgency: r.urgency, Title: r.title,
			Kind: r.kind, At: due,
		})
	}
	sortFindings(out)
	return out
}

// missingSince returns when data of the rule's kind becomes missing, given
// the enrolment and the newest reading; false when neither is known.
func missingSince(r *rule, enrolled, last time.Time) (time.Time, bool) {
	ref := enrolled
	if last.After(ref) {
		ref = last
	}
	if ref.IsZero() {
		return time.Time{}, false
	}
	return ref.Add(r.missing), true
}
