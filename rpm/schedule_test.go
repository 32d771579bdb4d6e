package rpm_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the same zone rules on every machine

	"github.com/tendhealth/tend/rpm"
)

func intp(v int) *int { return &v }

func zone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := rpm.ValidateZone(name)
	if err != nil {
		t.Fatalf("zone %s: %v", name, err)
	}
	return loc
}

func twiceDaily(id string) rpm.Schedule {
	return rpm.Schedule{ID: id, Type: rpm.MedicationSchedule, Medication: "furosemide", Dose: "40 mg",
		Times: []string{"20:00", "08:00"}, StartDate: "2026-01-01"}
}

func fieldsOf(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var v *rpm.ValidationError
	if !errors.As(err, &v) {
		t.Fatalf("err = %v, want *rpm.ValidationError", err)
	}
	var out []string
	for _, f := range v.Fields {
		out = append(out, f.Field)
	}
	return out
}

func TestScheduleValidate(t *testing.T) {
	t.Parallel()
	med := twiceDaily("s1")
	meas := rpm.Schedule{Type: rpm.MeasurementSchedule, Kind: rpm.BodyWeight, Times: []string{"07:30"}, StartDate: "2026-03-01", EndDate: "2026-03-01"}
	tests := []struct {
		name   string
		edit   func(s *rpm.Schedule)
		base   rpm.Schedule
		fields []string
	}{
		{name: "medication ok", base: med},
		{name: "measurement ok, one-day range", base: meas},
		{name: "every optional field", base: med, edit: func(s *rpm.Schedule) {
			s.DaysOfWeek = []string{"mon", "sun"}
			s.EndDate = "2026-12-31"
			s.GraceMinutes = intp(1440)
			s.RemindAgainMinutes = intp(1439)
		}},
		{name: "no type", base: med, edit: func(s *rpm.Schedule) { s.Type = "" }, fields: []string{"type"}},
		{name: "unknown type", base: med, edit: func(s *rpm.Schedule) { s.Type = "exercise" }, fields: []string{"type"}},
		{name: "medication missing", base: med, edit: func(s *rpm.Schedule) { s.Medication = "" }, fields: []string{"medication"}},
		{name: "medication too long", base: med, edit: func(s *rpm.Schedule) { s.Medication = strings.Repeat("é", 201) }, fields: []string{"medication"}},
		{name: "medication control character", base: med, edit: func(s *rpm.Schedule) { s.Medication = "a\nb" }, fields: []string{"medication"}},
		{name: "dose invalid utf-8", base: med, edit: func(s *rpm.Schedule) { s.Dose = "\xff" }, fields: []string{"dose"}},
		{name: "kind on medication", base: med, edit: func(s *rpm.Schedule) { s.Kind = rpm.SpO2 }, fields: []string{"kind"}},
		{name: "measurement without kind", base: meas, edit: func(s *rpm.Schedule) { s.Kind = "" }, fields: []string{"kind"}},
		{name: "measurement unknown kind", base: meas, edit: func(s *rpm.Schedule) { s.Kind = "mood" }, fields: []string{"kind"}},
		{name: "measurement with medication and dose", base: meas, edit: func(s *rpm.Schedule) { s.Medication, s.Dose = "x", "y" }, fields: []string{"medication", "dose"}},
		{name: "no times", base: med, edit: func(s *rpm.Schedule) { s.Times = nil }, fields: []string{"times"}},
		{name: "too many times", base: med, edit: func(s *rpm.Schedule) {
			s.Times = nil
			for h := range 25 {
				s.Times = append(s.Times, time.Date(0, 1, 1, h%24, h/24, 0, 0, time.UTC).Format("15:04"))
			}
		}, fields: []string{"times"}},
		{name: "bad times", base: med, edit: func(s *rpm.Schedule) {
			s.Times = []string{"24:00", "8:00", "08:60", "08:00", "08-00", "+1:00", "08:00 ", "ab:cd"}
		}, fields: []string{"times[0]", "times[1]", "times[2]", "times[4]", "times[5]", "times[6]", "times[7]"}},
		{name: "repeated time", base: med, edit: func(s *rpm.Schedule) { s.Times = []string{"08:00", "20:00", "08:00"} }, fields: []string{"times[2]"}},
		{name: "empty days", base: med, edit: func(s *rpm.Schedule) { s.DaysOfWeek = []string{} }, fields: []string{"days_of_week"}},
		{name: "bad and repeated days", base: med, edit: func(s *rpm.Schedule) { s.DaysOfWeek = []string{"mon", "Monday", "mon", "7"} },
			fields: []string{"days_of_week[1]", "days_of_week[2]", "days_of_week[3]"}},
		{name: "no start", base: med, edit: func(s *rpm.Schedule) { s.StartDate = "" }, fields: []string{"start_date"}},
		{name: "bad start", base: med, edit: func(s *rpm.Schedule) { s.StartDate = "2026-02-30" }, fields: []string{"start_date"}},
		{name: "start not zero-padded", base: med, edit: func(s *rpm.Schedule) { s.StartDate = "2026-2-3" }, fields: []string{"start_date"}},
		{name: "bad end", base: med, edit: func(s *rpm.Schedule) { s.EndDate = "tomorrow" }, fields: []string{"end_date"}},
		{name: "end before start", base: med, edit: func(s *rpm.Schedule) { s.EndDate = "2025-12-31" }, fields: []string{"end_date"}},
		{name: "grace zero", base: med, edit: func(s *rpm.Schedule) { s.GraceMinutes = intp(0) }, fields: []string{"grace_minutes"}},
		{name: "grace over a day", base: med, edit: func(s *rpm.Schedule) { s.GraceMinutes = intp(1441) }, fields: []string{"grace_minutes"}},
		{name: "remind again after default grace", base: med, edit: func(s *rpm.Schedule) { s.RemindAgainMinutes = intp(60) }, fields: []string{"remind_again_minutes"}},
		{name: "remind again zero", base: med, edit: func(s *rpm.Schedule) { s.RemindAgainMinutes = intp(0) }, fields: []string{"remind_again_minutes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.base
			s.Times = slices.Clone(s.Times)
			if tt.edit != nil {
				tt.edit(&s)
			}
			err := s.Validate()
			if got := fieldsOf(t, err); !slices.Equal(got, tt.fields) {
				t.Fatalf("invalid fields = %v, want %v (err %v)", got, tt.fields, err)
			}
			if err != nil && (strings.Contains(err.Error(), "furosemide") || strings.Contains(err.Error(), "40 mg")) {
				t.Errorf("error echoes the medication or dose: %v", err)
			}
		})
	}
}

func TestScheduleDefaults(t *testing.T) {
	t.Parallel()
	med := twiceDaily("s")
	if med.Grace() != time.Hour || med.RemindAgain() != 0 || !med.ThroughQuiet() {
		t.Errorf("medication defaults: grace %v, remind again %v, through quiet %v", med.Grace(), med.RemindAgain(), med.ThroughQuiet())
	}
	no := false
	med.GraceMinutes, med.RemindAgainMinutes, med.ThroughQuietHours = intp(90), intp(30), &no
	if med.Grace() != 90*time.Minute || med.RemindAgain() != 30*time.Minute || med.ThroughQuiet() {
		t.Errorf("medication explicit: grace %v, remind again %v, through quiet %v", med.Grace(), med.RemindAgain(), med.ThroughQuiet())
	}
	meas := rpm.Schedule{Type: rpm.MeasurementSchedule}
	if meas.ThroughQuiet() {
		t.Error("measurement reminders go through quiet hours by default")
	}
}

func TestValidateZone(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"", "Local", "Mars/Olympus", "../../etc/passwd", strings.Repeat("A", 65)} {
		_, err := rpm.ValidateZone(name)
		if got := fieldsOf(t, err); !slices.Equal(got, []string{"timezone"}) {
			t.Errorf("ValidateZone(%q) fields = %v, want [timezone]", name, got)
		}
	}
	if loc, err := rpm.ValidateZone("Asia/Kolkata"); err != nil || loc.String() != "Asia/Kolkata" {
		t.Errorf("ValidateZone(Asia/Kolkata) = %v, %v", loc, err)
	}
}

// TestOccurrencesWeekAcrossDST expands a twice-daily schedule over a local
// week that contains a DST change and checks all 14 instants against offsets
// written out by hand.
func TestOccurrencesWeekAcrossDST(t *testing.T) {
	t.Parallel()
	h := time.Hour
	tests := []struct {
		zone     string
		firstDay time.Time // local midnight of the first day, as a civil date
		change   time.Time // first civil date on the new offset (zero: no change)
		before   time.Duration
		after    time.Duration
	}{
		{zone: "America/New_York", firstDay: day(2026, 3, 5), change: day(2026, 3, 8), before: -5 * h, after: -4 * h},
		{zone: "America/New_York", firstDay: day(2026, 10, 29), change: day(2026, 11, 1), before: -4 * h, after: -5 * h},
		{zone: "Europe/Berlin", firstDay: day(2026, 3, 26), change: day(2026, 3, 29), before: 1 * h, after: 2 * h},
		{zone: "Europe/Berlin", firstDay: day(2026, 10, 22), change: day(2026, 10, 25), before: 2 * h, after: 1 * h},
		{zone: "Asia/Kolkata", firstDay: day(2026, 3, 5), before: 5*h + 30*time.Minute, after: 5*h + 30*time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.zone+" "+tt.firstDay.Format(time.DateOnly), func(t *testing.T) {
			t.Parallel()
			loc := zone(t, tt.zone)
			y, m, d := tt.firstDay.Date()
			from := time.Date(y, m, d, 0, 0, 0, 0, loc)
			to := time.Date(y, m, d+7, 0, 0, 0, 0, loc)
			occ, err := rpm.Occurrences(twiceDaily("s1"), loc, from, to)
			if err != nil {
				t.Fatal(err)
			}
			var want []time.Time
			for i := range 7 {
				civil := tt.firstDay.AddDate(0, 0, i)
				off := tt.before
				if !tt.change.IsZero() && !civil.Before(tt.change) {
					off = tt.after
				}
				for _, hour := range []int{8, 20} {
					want = append(want, civil.Add(time.Duration(hour)*h-off))
				}
			}
			if len(occ) != 14 {
				t.Fatalf("got %d occurrences, want 14: %v", len(occ), occ)
			}
			for i, o := range occ {
				if !o.At.Equal(want[i]) {
					t.Errorf("occurrence %d (%s %s) at %s, want %s", i, o.Date, o.Time, o.At.UTC(), want[i].UTC())
				}
				if local := o.At.In(loc).Format("15:04"); local != o.Time {
					t.Errorf("occurrence %d reads %s on the local clock, scheduled %s", i, local, o.Time)
				}
				if wantKey := "s1/" + o.At.In(loc).Format(time.DateOnly) + "/" + o.Time; o.Key != wantKey {
					t.Errorf("key = %q, want %q", o.Key, wantKey)
				}
			}
		})
	}
}

// day is a civil date, represented at UTC midnight.
func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func TestOccurrencesSpringForwardGap(t *testing.T) {
	t.Parallel()
	loc := zone(t, "America/New_York")
	s := rpm.Schedule{ID: "g", Type: rpm.MeasurementSchedule, Kind: rpm.BloodPressure, Times: []string{"02:30"}, StartDate: "2026-03-07"}
	occ, err := rpm.Occurrences(s, loc, day(2026, 3, 7), day(2026, 3, 10))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		date string
		at   time.Time
	}{
		{"2026-03-07", time.Date(2026, 3, 7, 7, 30, 0, 0, time.UTC)}, // 02:30 EST
		{"2026-03-08", time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC)},  // 02:30 does not exist: 03:00 EDT
		{"2026-03-09", time.Date(2026, 3, 9, 6, 30, 0, 0, time.UTC)}, // 02:30 EDT
	}
	if len(occ) != len(want) {
		t.Fatalf("got %v, want %d occurrences", occ, len(want))
	}
	for i, w := range want {
		if occ[i].Date != w.date || occ[i].Time != "02:30" || !occ[i].At.Equal(w.at) {
			t.Errorf("occurrence %d = %s %s at %s, want %s 02:30 at %s", i, occ[i].Date, occ[i].Time, occ[i].At.UTC(), w.date, w.at)
		}
	}
	if got := occ[1].At.In(loc).Format("15:04 MST"); got != "03:00 EDT" {
		t.Errorf("gap occurrence reads %s locally, want 03:00 EDT", got)
	}

	// Two times in and at the end of the gap are two doses at one instant.
	s.Times = []string{"03:00", "02:00", "02:59"}
	occ, err = rpm.Occurrences(s, loc, time.Date(2026, 3, 8, 0, 0, 0, 0, loc), time.Date(2026, 3, 8, 12, 0, 0, 0, loc))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range occ {
		keys = append(keys, o.Key)
		if !o.At.Equal(time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC)) {
			t.Errorf("%s at %s, want the end of the gap", o.Key, o.At.UTC())
		}
	}
	if want := []string{"g/2026-03-08/02:00", "g/2026-03-08/02:59", "g/2026-03-08/03:00"}; !slices.Equal(keys, want) {
		t.Errorf("keys = %v, want %v", keys, want)
	}
}

func TestOccurrencesFallBackRepeat(t *testing.T) {
	t.Parallel()
	loc := zone(t, "America/New_York")
	s := rpm.Schedule{ID: "r", Type: rpm.MedicationSchedule, Medication: "m", Times: []string{"01:30", "01:00", "02:00"}, StartDate: "2026-10-01"}
	occ, err := rpm.Occurrences(s, loc, time.Date(2026, 11, 1, 0, 0, 0, 0, loc), time.Date(2026, 11, 2, 0, 0, 0, 0, loc))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Time{
		"01:00": time.Date(2026, 11, 1, 5, 0, 0, 0, time.UTC),  // the first 01:00, EDT
		"01:30": time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC), // the first 01:30, EDT; not again at 06:30
		"02:00": time.Date(2026, 11, 1, 7, 0, 0, 0, time.UTC),  // 02:00 EST happens once
	}
	if len(occ) != 3 {
		t.Fatalf("got %d occurrences, want 3: %v", len(occ), occ)
	}
	for _, o := range occ {
		if !o.At.Equal(want[o.Time]) {
			t.Errorf("%s at %s, want %s", o.Key, o.At.UTC(), want[o.Time])
		}
	}
}

func TestOccurrencesDaysOfWeek(t *testing.T) {
	t.Parallel()
	loc := zone(t, "Europe/Berlin")
	s := twiceDaily("w")
	s.DaysOfWeek = []string{"fri", "mon", "wed"}
	// 2026-03-23 is a Monday; two weeks, crossing the EU change on Sunday 29th.
	occ, err := rpm.Occurrences(s, loc, time.Date(2026, 3, 23, 0, 0, 0, 0, loc), time.Date(2026, 4, 6, 0, 0, 0, 0, loc))
	if err != nil {
		t.Fatal(err)
	}
	var dates []string
	for _, o := range occ {
		if o.Time == "08:00" {
			dates = append(dates, o.Date+" "+o.At.In(loc).Weekday().String()[:3])
		}
	}
	want := []string{"2026-03-23 Mon", "2026-03-25 Wed", "2026-03-27 Fri", "2026-03-30 Mon", "2026-04-01 Wed", "2026-04-03 Fri"}
	if !slices.Equal(dates, want) || len(occ) != 12 {
		t.Errorf("08:00 dates = %v (of %d occurrences), want %v (of 12)", dates, len(occ), want)
	}
}

func TestOccurrencesDateRangeInclusive(t *testing.T) {
	t.Parallel()
	loc := zone(t, "Asia/Kolkata")
	s := twiceDaily("d")
	s.StartDate, s.EndDate = "2026-05-10", "2026-05-12"
	occ, err := rpm.Occurrences(s, loc, day(2026, 5, 1), day(2026, 6, 1))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range occ {
		keys = append(keys, o.Key)
	}
	want := []string{"d/2026-05-10/08:00", "d/2026-05-10/20:00", "d/2026-05-11/08:00", "d/2026-05-11/20:00", "d/2026-05-12/08:00", "d/2026-05-12/20:00"}
	if !slices.Equal(keys, want) {
		t.Errorf("keys = %v, want %v", keys, want)
	}
}

func TestOccurrencesWindowHalfOpen(t *testing.T) {
	t.Parallel()
	loc := zone(t, "UTC")
	s := twiceDaily("h")
	from := time.Date(2026, 6, 1, 8, 0, 0, 0, loc)
	occ, err := rpm.Occurrences(s, loc, from, from.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(occ) != 2 || !occ[0].At.Equal(from) || occ[1].Time != "20:00" {
		t.Errorf("[08:00, next 08:00) = %v, want 08:00 and 20:00 of one day", occ)
	}
	if occ, _ := rpm.Occurrences(s, loc, from, from); occ != nil {
		t.Errorf("empty window gave %v", occ)
	}
}

// TestOccurrencesZoneChange moves a patient from New York to London: future
// occurrences follow London's clock, and a local slot keeps its key.
func TestOccurrencesZoneChange(t *testing.T) {
	t.Parallel()
	ny, london := zone(t, "America/New_York"), zone(t, "Europe/London")
	s := twiceDaily("z")
	moved := time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC) // 08:00 in New York, 13:00 in London
	before, err := rpm.Occurrences(s, ny, moved.Add(-24*time.Hour), moved.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	after, err := rpm.Occurrences(s, london, moved, moved.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range after {
		got = append(got, o.At.UTC().Format("01-02 15:04"))
		if o.At.In(london).Format("15:04") != o.Time {
			t.Errorf("%s fires at %s London time", o.Key, o.At.In(london).Format("15:04"))
		}
	}
	// 20:00 BST is 19:00 UTC; 08:00 BST is 07:00 UTC.
	if want := []string{"06-10 19:00", "06-11 07:00", "06-11 19:00", "06-12 07:00"}; !slices.Equal(got, want) {
		t.Errorf("after the move = %v, want %v", got, want)
	}
	keysBefore := map[string]bool{}
	for _, o := range before {
		keysBefore[o.Key] = true
	}
	if !keysBefore[after[0].Key] {
		t.Errorf("key %s of the new zone differs from the old zone's key for the same local slot", after[0].Key)
	}
}

func TestOccurrencesRejects(t *testing.T) {
	t.Parallel()
	if _, err := rpm.Occurrences(twiceDaily("x"), nil, day(2026, 1, 1), day(2026, 1, 2)); err == nil {
		t.Error("nil zone accepted")
	}
	bad := twiceDaily("x")
	bad.Times = []string{"25:00"}
	if got := fieldsOf(t, func() error { _, err := rpm.Occurrences(bad, time.UTC, day(2026, 1, 1), day(2026, 1, 2)); return err }()); !slices.Equal(got, []string{"times[0]"}) {
		t.Errorf("invalid schedule fields = %v, want [times[0]]", got)
	}
}

// TestOccurrencesSkippedDay: Samoa skipped 30 December 2011 entirely; that
// day's doses fire when the clock jumps to 31 December, even for a window
// that starts at the jump.
func TestOccurrencesSkippedDay(t *testing.T) {
	t.Parallel()
	apia := zone(t, "Pacific/Apia")
	jump := time.Date(2011, 12, 30, 10, 0, 0, 0, time.UTC) // 29 Dec 24:00 (-10) becomes 31 Dec 00:00 (+14)
	s := twiceDaily("a")
	s.StartDate = "2011-12-01"
	occ, err := rpm.Occurrences(s, apia, jump, jump.Add(12*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range occ {
		got = append(got, o.Key+" "+o.At.UTC().Format("02 15:04"))
	}
	want := []string{"a/2011-12-30/08:00 30 10:00", "a/2011-12-30/20:00 30 10:00", "a/2011-12-31/08:00 30 18:00"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
