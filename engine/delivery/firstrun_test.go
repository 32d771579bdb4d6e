package delivery

import (
	"testing"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// TestFirstRun: only a job River has fetched once skips loading its
// delivery's history. River appends its client id to attempted_by on every
// fetch, so a retry, a snoozed job coming back (whose attempt River puts
// back) and a job rescued after a crash all show more than one; a job row
// read without being fetched (Service.Work's callers) shows none.
func TestFirstRun(t *testing.T) {
	for _, c := range []struct {
		name    string
		attempt int
		by      []string
		want    bool
	}{
		{"first fetch", 1, []string{"a"}, true},
		{"snoozed and fetched again", 1, []string{"a", "a"}, false},
		{"retry", 2, []string{"a", "b"}, false},
		{"rescued after a crash", 2, []string{"a", "b"}, false},
		{"never fetched", 0, nil, false},
	} {
		job := &river.Job[deliverArgs]{JobRow: &rivertype.JobRow{Attempt: c.attempt, AttemptedBy: c.by}}
		if got := firstRun(job); got != c.want {
			t.Errorf("%s: firstRun = %v, want %v", c.name, got, c.want)
		}
	}
}
