package rpm_test

import (
	"testing"
	"time"

	"github.com/tendhealth/tend/rpm"
)

func TestAdherence(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return now.Add(time.Duration(h) * time.Hour) }
	doses := []rpm.Dose{
		{ScheduleID: "b", Status: rpm.DoseTaken, DueAt: at(-50)},
		{ScheduleID: "b", Status: rpm.DoseTaken, DueAt: at(-38)},
		{ScheduleID: "b", Status: rpm.DoseMissed, DueAt: at(-26)},
		{ScheduleID: "b", Status: rpm.DoseSkipped, DueAt: at(-14)},
		{ScheduleID: "b", Status: rpm.DoseTaken, DueAt: at(-2)},
		{ScheduleID: "b", Status: rpm.DosePending, DueAt: now},    // due right now: counts, undecided
		{ScheduleID: "b", Status: rpm.DosePending, DueAt: at(10)}, // not due yet
		{ScheduleID: "a", Status: rpm.DosePending, DueAt: at(-1)},
		{ScheduleID: "a", Status: "lost", DueAt: at(-3)}, // unknown status: ignored
		{ScheduleID: "c", Status: rpm.DoseTaken, DueAt: at(-5)},
		{ScheduleID: "c", Status: rpm.DoseTaken, DueAt: at(-4)},
		{ScheduleID: "c", Status: rpm.DoseMissed, DueAt: at(-3)},
	}
	per, total := rpm.Adherence(doses, now)
	pct := func(p *float64) float64 {
		if p == nil {
			return -1
		}
		return *p
	}
	want := []struct {
		id                                   string
		due, taken, skipped, missed, pending int
		pct                                  float64
	}{
		{"a", 1, 0, 0, 0, 1, -1},
		{"b", 6, 3, 1, 1, 1, 60},
		{"c", 3, 2, 0, 1, 0, 66.7},
	}
	if len(per) != len(want) {
		t.Fatalf("got %d schedules, want %d: %+v", len(per), len(want), per)
	}
	for i, w := range want {
		g := per[i]
		if g.ScheduleID != w.id || g.Due != w.due || g.Taken != w.taken || g.Skipped != w.skipped || g.Missed != w.missed || g.Pending != w.pending || pct(g.Percentage) != w.pct {
			t.Errorf("schedule %d = %+v (percentage %v), want %+v", i, g, pct(g.Percentage), w)
		}
	}
	if total.Due != 10 || total.Taken != 5 || total.Skipped != 1 || total.Missed != 2 || total.Pending != 2 || pct(total.Percentage) != 62.5 {
		t.Errorf("total = %+v (percentage %v)", total, pct(total.Percentage))
	}
	if per, total := rpm.Adherence(nil, now); per != nil || total.Due != 0 || total.Percentage != nil {
		t.Errorf("no doses = %+v, %+v", per, total)
	}
}
