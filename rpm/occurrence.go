package rpm

import (
	"errors"
	"slices"
	"time"
)

// Occurrence is one reminder of a schedule: a scheduled local date and time
// and the instant it fires.
type Occurrence struct {
	ScheduleID string `json:"schedule_id"`
	// Date and Time are the scheduled local date ("YYYY-MM-DD") and time of
	// day ("HH:MM"), even when At differs from them because of a DST gap.
	Date string `json:"date"`
	Time string `json:"time"`
	// At is the instant the reminder fires, in the patient's zone.
	At time.Time `json:"at"`
	// Key identifies the occurrence for uniqueness: schedule id, local date
	// and local time. It does not depend on the zone, so re-expanding after a
	// patient changes zone never creates a second dose for the same local slot.
	Key string `json:"key"`
}

// OccurrenceKey builds the key of a schedule's occurrence at a local date
// ("YYYY-MM-DD") and time ("HH:MM").
func OccurrenceKey(scheduleID, localDate, localTime string) string {
	return scheduleID + "/" + localDate + "/" + localTime
}

// Occurrences expands a schedule into the occurrences whose instant lies in
// [from, to), in the patient's time zone loc, ordered by instant (then by
// local time). The rules, in the patient's local time:
//
//   - times are wall-clock times: an 08:00 dose is at 08:00 local on both
//     sides of a DST change;
//   - a time that does not exist that day (spring forward) fires at the
//     first valid instant after it, the end of the gap;
//   - a time that happens twice (fall back) fires once, the first time;
//   - start_date and end_date are inclusive local dates; days_of_week picks
//     local weekdays;
//   - expanding with a new zone gives the new zone's local times, with the
//     same keys for the same local slots.
//
// An invalid schedule returns its *ValidationError. The window should be
// short (the engine expands hours or days ahead); the result grows with it.
func Occurrences(s Schedule, loc *time.Location, from, to time.Time) ([]Occurrence, error) {
	if loc == nil {
		return nil, errors.New("occurrences: nil time zone")
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if !to.After(from) {
		return nil, nil
	}
	clocks := make([]int, len(s.Times))
	for i, t := range s.Times {
		clocks[i], _ = parseClock(t)
	}
	slices.Sort(clocks)
	var days [7]bool
	for _, d := range s.DaysOfWeek {
		w, _ := parseWeekday(d)
		days[w] = true
	}
	start, _ := parseDate(s.StartDate)
	end, hasEnd := parseDate(s.EndDate)

	// A local date's instants lie within a day of its midnight, and a gap
	// pushes an occurrence later by at most a day (Samoa skipped a whole
	// date): one extra local date on each side covers every zone.
	first := localDate(from.In(loc)).addDays(-1)
	last := localDate(to.In(loc)).addDays(1)
	if first.before(start) {
		first = start
	}
	if hasEnd && end.before(last) {
		last = end
	}
	var out []Occurrence
	for d := first; !last.before(d); d = d.addDays(1) {
		if s.DaysOfWeek != nil && !days[d.weekday()] {
			continue
		}
		ds := d.String()
		for _, c := range clocks {
			at := resolveLocal(d, c, loc)
			if at.Before(from) || !at.Before(to) {
				continue
			}
			hm := clockString(c)
			out = append(out, Occurrence{ScheduleID: s.ID, Date: ds, Time: hm, At: at, Key: OccurrenceKey(s.ID, ds, hm)})
		}
	}
	// Dates and times are generated in order and resolveLocal is monotonic,
	// so out is already sorted; the stable sort is a cheap guarantee.
	slices.SortStableFunc(out, func(a, b Occurrence) int { return a.At.Compare(b.At) })
	return out, nil
}

func localDate(t time.Time) date { return date{t.Year(), t.Month(), t.Day()} }

func clockString(minutes int) string {
	const digits = "0123456789"
	h, m := minutes/60, minutes%60
	return string([]byte{digits[h/10], digits[h%10], ':', digits[m/10], digits[m%10]})
}

// resolveLocal returns the first instant at which the wall clock in loc reads
// the given local date and minute of the day or later. For an ordinary time
// that is the time itself; for a repeated time, its first occurrence; for a
// time skipped by a transition, the transition.
func resolveLocal(d date, minute int, loc *time.Location) time.Time {
	// wall is the local date and time counted as if it were UTC seconds.
	wall := time.Date(d.y, d.m, d.d, minute/60, minute%60, 0, 0, time.UTC).Unix()
	// UTC offsets lie within ±15 hours, so every instant whose local clock
	// reads wall is in this window. Walk its zone periods in order.
	const span = 15 * 60 * 60
	lo, hi := wall-span, wall+span
	t := time.Unix(lo, 0).In(loc)
	for {
		_, off := t.Zone()
		zs, ze := t.ZoneBounds()
		start := max(lo, zs.Unix()) // a zero zs (no earlier transition) is far before lo
		// The clock jumped past wall when this period began: a gap.
		if start+int64(off) > wall {
			return time.Unix(start, 0).In(loc)
		}
		if u := wall - int64(off); u >= start && (ze.IsZero() || u < ze.Unix()) {
			return time.Unix(u, 0).In(loc)
		}
		if ze.IsZero() || ze.Unix() > hi {
			break
		}
		t = ze.In(loc)
	}
	// Unreachable for real zones; keep the standard library's answer.
	return time.Date(d.y, d.m, d.d, minute/60, minute%60, 0, 0, loc)
}
