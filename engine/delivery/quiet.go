package delivery

import (
	"time"

	"github.com/tendhealth/tend/engine/internal/check"
)

// ParseClock parses "HH:MM" into minutes after midnight.
func ParseClock(s string) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	digit := func(c byte) (int, bool) { return int(c - '0'), c >= '0' && c <= '9' }
	h1, ok1 := digit(s[0])
	h2, ok2 := digit(s[1])
	m1, ok3 := digit(s[3])
	m2, ok4 := digit(s[4])
	h, m := h1*10+h2, m1*10+m2
	if !ok1 || !ok2 || !ok3 || !ok4 || h > 23 || m > 59 {
		return 0, false
	}
	return h*60 + m, true
}

// quietWindow is a user's daily quiet window in their zone.
type quietWindow struct {
	loc        *time.Location
	start, end int // minutes after local midnight
}

// newQuietWindow returns the window, or nil when any part is missing or
// invalid (a stored value that no longer parses pages rather than holds).
func newQuietWindow(zone, start, end string) *quietWindow {
	loc, err := check.LoadZone(zone)
	if err != nil {
		return nil
	}
	s, ok1 := ParseClock(start)
	en, ok2 := ParseClock(end)
	if !ok1 || !ok2 || s == en {
		return nil
	}
	return &quietWindow{loc: loc, start: s, end: en}
}

// at reports whether t falls inside the window and, if so, the instant the
// window ends, in UTC so that job arguments built from it compare equal.
// Each boundary is the wall-clock time on its own local date, so a window
// spanning a DST change is an hour shorter or longer: "22:00–07:00" ends at
// 07:00 local either way.
func (q *quietWindow) at(t time.Time) (end time.Time, quiet bool) {
	if q == nil {
		return time.Time{}, false
	}
	l := t.In(q.loc)
	y, m, d := l.Date()
	// The window that may contain t started today or, when it spans
	// midnight, yesterday.
	for _, startDay := range []int{d, d - 1} {
		endDay := startDay
		if q.end < q.start {
			endDay++
		}
		s := wallClock(y, m, startDay, q.start, q.loc)
		e := wallClock(y, m, endDay, q.end, q.loc)
		if !t.Before(s) && t.Before(e) {
			return e.UTC(), true
		}
	}
	return time.Time{}, false
}

// wallClock is the instant the local clock of loc reads minutes after
// midnight on y-m-d (the day may overflow; it is normalised). A time that
// occurs twice (the clock is set back) is its first occurrence; one that
// does not occur (the clock jumps forward over it) is the first instant
// after the jump, as for reminders (SPEC §8). time.Date leaves both choices
// unspecified, so they are made here.
func wallClock(y int, m time.Month, d, minutes int, loc *time.Location) time.Time {
	naive := time.Date(y, m, d, 0, minutes, 0, 0, time.UTC)
	var best time.Time
	for _, probe := range []time.Time{naive.Add(-36 * time.Hour), naive.Add(36 * time.Hour)} {
		_, off := probe.In(loc).Zone()
		u := naive.Add(-time.Duration(off) * time.Second)
		if sameWall(u.In(loc), naive) && (best.IsZero() || u.Before(best)) {
			best = u
		}
	}
	if !best.IsZero() {
		return best
	}
	// In a gap: read with the offset before the jump, the instant lands
	// after it, in the zone period that starts at the jump.
	_, off := naive.Add(-36 * time.Hour).In(loc).Zone()
	start, _ := naive.Add(-time.Duration(off) * time.Second).In(loc).ZoneBounds()
	return start
}

func sameWall(a, naive time.Time) bool {
	ay, am, ad := a.Date()
	ny, nm, nd := naive.Date()
	return ay == ny && am == nm && ad == nd && a.Hour() == naive.Hour() && a.Minute() == naive.Minute()
}

// QuietUntil reports whether now falls inside the quiet window start–end
// ("HH:MM") of zone and, if so, the instant it ends. An invalid window is
// never quiet: it pages rather than holds.
func QuietUntil(zone, start, end string, now time.Time) (time.Time, bool) {
	q := newQuietWindow(zone, start, end)
	if q == nil {
		return time.Time{}, false
	}
	return q.at(now)
}
