package rpm

import (
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tendhealth/tend/internal/text"
)

// ScheduleType says what a reminder schedule is for.
type ScheduleType string

// The schedule types.
const (
	MedicationSchedule  ScheduleType = "medication"
	MeasurementSchedule ScheduleType = "measurement"
)

// Limits of a schedule's fields.
const (
	// DefaultGraceMinutes is how long a dose may stay unconfirmed before it
	// counts as missed, when the schedule does not say.
	DefaultGraceMinutes = 60
	// MaxGraceMinutes bounds grace_minutes (one day).
	MaxGraceMinutes = 24 * 60
	// MaxScheduleTimes bounds how many times of day one schedule lists.
	MaxScheduleTimes = 24
	// MaxMedicationLen and MaxDoseLen bound the free-text fields (in characters).
	MaxMedicationLen = 200
	MaxDoseLen       = 100
)

// weekdays are the accepted days_of_week values, indexed by time.Weekday.
var weekdays = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// Schedule is a medication or measurement reminder schedule, as a scheduler
// writes it. Times of day and dates are local to the patient's IANA time zone,
// which is not part of the schedule: a patient who moves keeps their schedule
// at the same local times.
type Schedule struct {
	// ID identifies the schedule; it prefixes every occurrence key.
	ID   string       `json:"id,omitempty"`
	Type ScheduleType `json:"type"`
	// Medication and Dose are free text (PHI), medication schedules only.
	Medication string `json:"medication,omitempty"`
	Dose       string `json:"dose,omitempty"`
	// Kind is the vital to measure, measurement schedules only.
	Kind Kind `json:"kind,omitempty"`
	// Times are local times of day, "HH:MM" (24-hour).
	Times []string `json:"times"`
	// DaysOfWeek limits the schedule to some weekdays ("mon" … "sun").
	// Omitted means every day; an empty list is rejected.
	DaysOfWeek []string `json:"days_of_week,omitempty"`
	// StartDate and EndDate ("YYYY-MM-DD", local) bound the schedule,
	// inclusive. EndDate is optional.
	StartDate string `json:"start_date"`
	EndDate   string `json:"end_date,omitempty"`
	// GraceMinutes is how long after its time an unconfirmed dose becomes
	// missed. Defaults to 60 when nil; 1 to 1440.
	GraceMinutes *int `json:"grace_minutes,omitempty"`
	// RemindAgainMinutes, when set, sends one more reminder that many minutes
	// after the first, which must fall before the grace period ends.
	RemindAgainMinutes *int `json:"remind_again_minutes,omitempty"`
	// ThroughQuietHours says whether reminders ignore the patient's quiet
	// hours. Defaults to true for medication and false for measurement.
	ThroughQuietHours *bool `json:"through_quiet_hours,omitempty"`
}

// Grace returns the schedule's grace period, applying the default.
func (s Schedule) Grace() time.Duration {
	if s.GraceMinutes == nil {
		return DefaultGraceMinutes * time.Minute
	}
	return time.Duration(*s.GraceMinutes) * time.Minute
}

// RemindAgain returns the delay of the optional second reminder, or 0 when
// the schedule has none.
func (s Schedule) RemindAgain() time.Duration {
	if s.RemindAgainMinutes == nil {
		return 0
	}
	return time.Duration(*s.RemindAgainMinutes) * time.Minute
}

// ThroughQuiet reports whether the schedule's reminders ignore quiet hours,
// applying the per-type default.
func (s Schedule) ThroughQuiet() bool {
	if s.ThroughQuietHours != nil {
		return *s.ThroughQuietHours
	}
	return s.Type == MedicationSchedule
}

// Validate checks every field and reports all problems at once as a
// *ValidationError. Reasons never echo the medication or dose.
func (s Schedule) Validate() error {
	var v ValidationError
	s.validateWhat(&v)
	s.validateWhen(&v)

	start, startOK := parseDate(s.StartDate)
	switch {
	case s.StartDate == "":
		v.Add("start_date", "is required (YYYY-MM-DD)")
	case !startOK:
		v.Add("start_date", "must be a date YYYY-MM-DD")
	}
	if s.EndDate != "" {
		end, ok := parseDate(s.EndDate)
		switch {
		case !ok:
			v.Add("end_date", "must be a date YYYY-MM-DD")
		case startOK && end.before(start):
			v.Add("end_date", "must not be before start_date")
		}
	}

	if g := s.GraceMinutes; g != nil && (*g < 1 || *g > MaxGraceMinutes) {
		v.Add("grace_minutes", fmt.Sprintf("must be between 1 and %d", MaxGraceMinutes))
	}
	if r := s.RemindAgainMinutes; r != nil {
		if *r < 1 || time.Duration(*r)*time.Minute >= s.Grace() {
			v.Add("remind_again_minutes", "must be at least 1 and less than grace_minutes")
		}
	}
	return v.OrNil()
}

// validateWhat checks what the schedule is for: a medication and its dose,
// or a vital to measure.
func (s Schedule) validateWhat(v *ValidationError) {
	switch s.Type {
	case MedicationSchedule:
		switch {
		case s.Medication == "":
			v.Add("medication", "is required for a medication schedule")
		case !plainText(s.Medication, MaxMedicationLen):
			v.Add("medication", fmt.Sprintf("must be at most %d characters of text without control characters", MaxMedicationLen))
		}
		if s.Dose != "" && !plainText(s.Dose, MaxDoseLen) {
			v.Add("dose", fmt.Sprintf("must be at most %d characters of text without control characters", MaxDoseLen))
		}
		if s.Kind != "" {
			v.Add("kind", "is only for measurement schedules")
		}
	case MeasurementSchedule:
		switch {
		case s.Kind == "":
			v.Add("kind", "is required for a measurement schedule")
		case !s.Kind.Valid():
			v.Add("kind", fmt.Sprintf("unknown vital kind %q", text.Truncate(string(s.Kind), 40)))
		}
		if s.Medication != "" {
			v.Add("medication", "is only for medication schedules")
		}
		if s.Dose != "" {
			v.Add("dose", "is only for medication schedules")
		}
	case "":
		v.Add("type", "is required (medication or measurement)")
	default:
		v.Add("type", "must be medication or measurement")
	}
}

// validateWhen checks the times of day and days of the week.
func (s Schedule) validateWhen(v *ValidationError) {
	switch {
	case len(s.Times) == 0:
		v.Add("times", "must list at least one time of day")
	case len(s.Times) > MaxScheduleTimes:
		v.Add("times", fmt.Sprintf("must list at most %d times", MaxScheduleTimes))
	default:
		seen := map[int]int{}
		for i, t := range s.Times {
			field := fmt.Sprintf("times[%d]", i)
			m, ok := parseClock(t)
			if !ok {
				v.Add(field, "must be a 24-hour local time HH:MM")
				continue
			}
			if j, dup := seen[m]; dup {
				v.Add(field, fmt.Sprintf("repeats times[%d]", j))
				continue
			}
			seen[m] = i
		}
	}

	if s.DaysOfWeek != nil {
		if len(s.DaysOfWeek) == 0 {
			v.Add("days_of_week", "must list at least one day, or be omitted for every day")
		}
		var seen [7]bool
		for i, d := range s.DaysOfWeek {
			field := fmt.Sprintf("days_of_week[%d]", i)
			w, ok := parseWeekday(d)
			switch {
			case !ok:
				v.Add(field, "must be one of mon, tue, wed, thu, fri, sat, sun")
			case seen[w]:
				v.Add(field, "repeats a day")
			default:
				seen[w] = true
			}
		}
	}
}

// plainText reports whether s is valid UTF-8 of at most max characters with
// no control characters.
func plainText(s string, max int) bool {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// ValidateZone loads an IANA time zone name for a patient, refusing the names
// that mean "wherever the server is" ("" and "Local"). A bad name is a
// *ValidationError on field "timezone". It reads the time zone database that
// the time package uses (embedded in the tend binary), and nothing else.
func ValidateZone(name string) (*time.Location, error) {
	bad := func() error {
		return &ValidationError{Fields: []FieldError{{Field: "timezone", Reason: "must be an IANA time zone such as Europe/Berlin"}}}
	}
	if name == "" || name == "Local" || len(name) > 64 {
		return nil, bad()
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, bad()
	}
	return loc, nil
}

// parseClock parses "HH:MM" into minutes after midnight.
func parseClock(s string) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	h, err1 := strconv.Atoi(s[:2])
	m, err2 := strconv.Atoi(s[3:])
	if err1 != nil || err2 != nil || s[0] == '+' || s[0] == '-' || s[3] == '+' || s[3] == '-' ||
		h < 0 || h > 23 || m < 0 || m > 59 {
		return 0, false
	}
	return h*60 + m, true
}

func parseWeekday(s string) (time.Weekday, bool) {
	i := slices.Index(weekdays[:], s)
	return time.Weekday(i), i >= 0
}

// date is a civil date, independent of any zone.
type date struct {
	y int
	m time.Month
	d int
}

func parseDate(s string) (date, bool) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil || t.Format(time.DateOnly) != s {
		return date{}, false
	}
	return date{t.Year(), t.Month(), t.Day()}, true
}

func (a date) before(b date) bool {
	if a.y != b.y {
		return a.y < b.y
	}
	if a.m != b.m {
		return a.m < b.m
	}
	return a.d < b.d
}

// addDays returns a shifted by n days (calendar arithmetic, in UTC).
func (a date) addDays(n int) date {
	t := time.Date(a.y, a.m, a.d+n, 0, 0, 0, 0, time.UTC)
	return date{t.Year(), t.Month(), t.Day()}
}

func (a date) weekday() time.Weekday {
	return time.Date(a.y, a.m, a.d, 0, 0, 0, 0, time.UTC).Weekday()
}

func (a date) String() string {
	return time.Date(a.y, a.m, a.d, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
}
