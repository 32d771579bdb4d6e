package rpm_test

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/tendhealth/tend/rpm"
)

// fuzzZones have the awkward transitions: half-hour DST (Lord Howe), a
// skipped calendar day (Apia, 2011-12-30), midnight changes (Santiago,
// Havana), negative DST (Dublin), Ramadan suspensions (Casablanca), odd
// offsets (Chatham, Kathmandu) and no DST at all.
var fuzzZones = []string{
	"America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe", "Pacific/Apia",
	"America/Santiago", "America/Havana", "Europe/Dublin", "Africa/Casablanca", "Pacific/Chatham",
	"Asia/Kathmandu", "America/St_Johns", "Asia/Tehran", "Australia/Adelaide", "UTC", "America/Sao_Paulo",
}

// reference finds, by scanning the clock minute by minute, the first instant
// at which loc's wall clock reaches each local slot, and keeps those in
// [from, to). It shares no code with rpm.Occurrences.
func reference(s rpm.Schedule, loc *time.Location, from, to time.Time, eligible func(civil time.Time) bool) map[string]time.Time {
	wall := func(t time.Time) time.Time { // the local clock reading, as a UTC time
		l := t.In(loc)
		return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), 0, 0, time.UTC)
	}
	type slot struct {
		wall time.Time
		key  string
	}
	// Every eligible local slot that could fire in the scan, by wall time.
	var slots []slot
	start := from.Add(-26 * time.Hour).Truncate(time.Minute) // a repeated hour comes back within hours of the first
	first, last := wall(start).AddDate(0, 0, -2), wall(to).AddDate(0, 0, 2)
	for d := first.Truncate(24 * time.Hour); !d.After(last); d = d.AddDate(0, 0, 1) {
		if !eligible(d) {
			continue
		}
		for _, hm := range s.Times {
			c, _ := time.Parse("15:04", hm)
			w := d.Add(time.Duration(c.Hour())*time.Hour + time.Duration(c.Minute())*time.Minute)
			slots = append(slots, slot{w, rpm.OccurrenceKey(s.ID, d.Format(time.DateOnly), hm)})
		}
	}
	slices.SortFunc(slots, func(a, b slot) int { return a.wall.Compare(b.wall) })
	fired := map[string]time.Time{}
	prev := wall(start)
	for m := start.Add(time.Minute); m.Before(to); m = m.Add(time.Minute) {
		cur := wall(m)
		// Slots the clock reached in this minute: prev < wall <= cur.
		i, _ := slices.BinarySearchFunc(slots, prev, func(s slot, t time.Time) int {
			if s.wall.After(t) {
				return 1
			}
			return -1
		})
		for ; i < len(slots) && !slots[i].wall.After(cur); i++ {
			if _, done := fired[slots[i].key]; !done {
				fired[slots[i].key] = m
			}
		}
		prev = cur
	}
	for k, at := range fired {
		if at.Before(from) || !at.Before(to) {
			delete(fired, k)
		}
	}
	return fired
}

// checkOccurrences compares rpm.Occurrences with the reference and checks
// order and uniqueness.
func checkOccurrences(t *testing.T, zoneIdx uint8, fromUnix int64, hours uint8, minutes [3]uint16, daysMask uint8, startOff, endLen int8) {
	t.Helper()
	loc := zone(t, fuzzZones[int(zoneIdx)%len(fuzzZones)])
	// 1990–2040, on a whole minute: zone data there has minute-aligned transitions.
	from := time.Unix(631152000+(fromUnix%1577836800+1577836800)%1577836800, 0).Truncate(time.Minute)
	to := from.Add(time.Duration(int(hours)%96+1) * time.Hour)
	s := rpm.Schedule{ID: "f", Type: rpm.MeasurementSchedule, Kind: rpm.SpO2}
	seen := map[uint16]bool{}
	for _, m := range minutes {
		m %= 1440
		if !seen[m] {
			seen[m] = true
			s.Times = append(s.Times, time.Date(0, 1, 1, int(m/60), int(m%60), 0, 0, time.UTC).Format("15:04"))
		}
	}
	var days [7]bool
	if daysMask&0x7f != 0 {
		s.DaysOfWeek = []string{}
		for i, name := range []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"} {
			if daysMask&(1<<i) != 0 {
				s.DaysOfWeek, days[i] = append(s.DaysOfWeek, name), true
			}
		}
	}
	fl := from.In(loc)
	startDay := time.Date(fl.Year(), fl.Month(), fl.Day()+int(startOff)%4, 0, 0, 0, 0, time.UTC)
	s.StartDate = startDay.Format(time.DateOnly)
	var endDay time.Time
	if endLen >= 0 {
		endDay = startDay.AddDate(0, 0, int(endLen)%5)
		s.EndDate = endDay.Format(time.DateOnly)
	}
	eligible := func(civil time.Time) bool {
		return !civil.Before(startDay) && (endDay.IsZero() || !civil.After(endDay)) && (s.DaysOfWeek == nil || days[civil.Weekday()])
	}

	got, err := rpm.Occurrences(s, loc, from, to)
	if err != nil {
		t.Fatalf("schedule %+v: %v", s, err)
	}
	want := reference(s, loc, from, to, eligible)
	if len(got) != len(want) {
		t.Errorf("%s from %s: %d occurrences, reference has %d", loc, from.UTC(), len(got), len(want))
	}
	keys := map[string]bool{}
	for i, o := range got {
		if keys[o.Key] {
			t.Errorf("key %s repeats", o.Key)
		}
		keys[o.Key] = true
		if w, ok := want[o.Key]; !ok || !w.Equal(o.At) {
			t.Errorf("%s at %s, reference %s (present %v)", o.Key, o.At.UTC(), w.UTC(), ok)
		}
		if o.At.Before(from) || !o.At.Before(to) {
			t.Errorf("%s at %s outside [%s, %s)", o.Key, o.At.UTC(), from.UTC(), to.UTC())
		}
		if i == 0 {
			continue
		}
		// Strictly increasing, except several slots in one DST gap, which
		// all fire when the gap ends.
		p := got[i-1]
		shifted := func(o rpm.Occurrence) bool { return o.At.In(loc).Format("15:04") != o.Time }
		if !p.At.Before(o.At) && !(p.At.Equal(o.At) && (shifted(p) || shifted(o))) {
			t.Errorf("%s at %s does not follow %s at %s", o.Key, o.At.UTC(), p.Key, p.At.UTC())
		}
	}
}

func FuzzOccurrences(f *testing.F) {
	f.Add(uint8(0), int64(1772755200), uint8(72), uint16(150), uint16(480), uint16(1200), uint8(0), int8(0), int8(-1)) // NY spring forward
	f.Add(uint8(0), int64(1793246400), uint8(48), uint16(90), uint16(60), uint16(120), uint8(0), int8(-1), int8(-1))   // NY fall back
	f.Add(uint8(4), int64(1325073600), uint8(72), uint16(480), uint16(0), uint16(1439), uint8(0), int8(-3), int8(-1))  // Apia skips a day
	f.Add(uint8(3), int64(1775318400), uint8(48), uint16(105), uint16(120), uint16(135), uint8(0), int8(-1), int8(2))  // Lord Howe half hour
	f.Add(uint8(5), int64(1775361600), uint8(60), uint16(0), uint16(30), uint16(1410), uint8(0x2a), int8(-1), int8(3)) // Santiago midnight
	f.Fuzz(func(t *testing.T, zoneIdx uint8, fromUnix int64, hours uint8, m1, m2, m3 uint16, daysMask uint8, startOff, endLen int8) {
		checkOccurrences(t, zoneIdx, fromUnix, hours, [3]uint16{m1, m2, m3}, daysMask, startOff, endLen)
	})
}

// TestOccurrencesProperties runs the fuzz check over a fixed pseudo-random
// sample and, for every zone, over the week around each of its transitions
// in 2026 and 2011.
func TestOccurrencesProperties(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		checkOccurrences(t, uint8(r.UintN(256)), r.Int64(), uint8(r.UintN(256)),
			[3]uint16{uint16(r.UintN(1440)), uint16(r.UintN(1440)), uint16(r.UintN(1440))},
			uint8(r.UintN(256)), int8(r.IntN(8)-4), int8(r.IntN(10)-5))
	}
	for zi, name := range fuzzZones {
		loc := zone(t, name)
		for _, year := range []int{2011, 2026} {
			t0 := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC)
			for t0.Year() == year {
				_, end := t0.In(loc).ZoneBounds()
				if end.IsZero() || end.Year() != year {
					break
				}
				for _, m := range [][3]uint16{{0, 60, 120}, {150, 30, 1410}, {480, 1200, 1439}} {
					checkOccurrences(t, uint8(zi), end.Add(-24*time.Hour).Unix()-631152000, 47, m, 0, -3, -1)
				}
				t0 = end
			}
		}
	}
}
