package rpm

import (
	"time"
)

// Urgency is how quickly a care team must look at something.
type Urgency string

// Urgency levels, highest first.
const (
	Critical Urgency = "critical"
	High     Urgency = "high"
	Medium   Urgency = "medium"
	Low      Urgency = "low"
)

// Urgencies lists the levels highest first.
func Urgencies() []Urgency { return []Urgency{Critical, High, Medium, Low} }

// Rank orders urgencies: critical is 4, low is 1, unknown is 0.
func (u Urgency) Rank() int {
	switch u {
	case Critical:
		return 4
	case High:
		return 3
	case Medium:
		return 2
	case Low:
		return 1
	}
	return 0
}

// Valid reports whether u is a known level.
func (u Urgency) Valid() bool { return u.Rank() > 0 }

// AckDeadline is the default time to acknowledge before escalation; 0 means
// the level does not escalate.
func (u Urgency) AckDeadline() time.Duration {
	switch u {
	case Critical:
		return 5 * time.Minute
	case High:
		return 30 * time.Minute
	case Medium:
		return 4 * time.Hour
	}
	return 0
}

// RepeatInterval is how long an open alert stays quiet after notifying before
// a new occurrence notifies again.
func (u Urgency) RepeatInterval() time.Duration {
	switch u {
	case Critical:
		return 15 * time.Minute
	case High:
		return time.Hour
	case Medium:
		return 4 * time.Hour
	}
	return 24 * time.Hour
}
