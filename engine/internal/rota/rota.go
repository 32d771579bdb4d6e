// Package rota is a care team's weekly on-call rota: slots of wall-clock
// time in the team's time zone, and who is on call at an instant. Wall
// clock, not fixed offsets, decides: a slot from 08:00 to 20:00 covers
// 08:00 to 20:00 local time on both sides of a daylight-saving change.
package rota

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/rpm"
)

// Slot is one weekly on-call slot. Start and End are "HH:MM" in the team's
// zone; an End at or before Start runs past midnight into the next day
// ("22:00"–"08:00"), and End may be "24:00".
type Slot struct {
	UserID  uuid.UUID `json:"user_id"`
	Weekday string    `json:"weekday"` // monday … sunday
	Start   string    `json:"start"`
	End     string    `json:"end"`
}

// MaxSlots bounds a rota.
const MaxSlots = 500

// weekdays are the accepted weekday names, in time.Weekday order.
var weekdays = []string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}

// parseClock reads "HH:MM" as minutes after midnight; "24:00" only when
// allow24.
func parseClock(s string, allow24 bool) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	var h, m int
	if _, err := fmt.Sscanf(s, "%2d:%2d", &h, &m); err != nil {
		return 0, false
	}
	if h == 24 && m == 0 && allow24 {
		return 24 * 60, true
	}
	if h < 0 || h > 23 || m < 0 || m > 59 {
		return 0, false
	}
	return h*60 + m, true
}

// Check adds a field error under field ("on_call") for every malformed
// slot of slots. member tells whether a user may be on call (a clinician or
// lead of the team); nil skips that check.
func Check(v *rpm.ValidationError, field string, slots []Slot, member func(uuid.UUID) bool) {
	if len(slots) > MaxSlots {
		v.Add(field, fmt.Sprintf("a rota has at most %d slots", MaxSlots))
		return
	}
	for i, s := range slots {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case s.UserID == uuid.Nil:
			v.Add(f+".user_id", "is required")
		case member != nil && !member(s.UserID):
			v.Add(f+".user_id", "is not a clinician or lead of the team")
		}
		if !slices.Contains(weekdays, strings.ToLower(s.Weekday)) {
			v.Add(f+".weekday", "must be monday, tuesday, wednesday, thursday, friday, saturday or sunday")
		}
		start, okStart := parseClock(s.Start, false)
		if !okStart {
			v.Add(f+".start", "must be a time of day HH:MM (00:00 to 23:59)")
		}
		end, okEnd := parseClock(s.End, true)
		if !okEnd {
			v.Add(f+".end", "must be a time of day HH:MM (00:00 to 24:00)")
		}
		if okStart && okEnd && start == end {
			v.Add(f+".end", "must differ from start")
		}
	}
}

// Normalize returns slots with lower-case weekday names.
func Normalize(slots []Slot) []Slot {
	out := make([]Slot, len(slots))
	for i, s := range slots {
		s.Weekday = strings.ToLower(s.Weekday)
		out[i] = s
	}
	return out
}

// OnCall returns who is on call at instant at, in zone loc, in slot order
// without repeats. Slots that do not parse are ignored.
func OnCall(slots []Slot, loc *time.Location, at time.Time) []uuid.UUID {
	local := at.In(loc)
	day := int(local.Weekday())
	minute := local.Hour()*60 + local.Minute()
	var out []uuid.UUID
	for _, s := range slots {
		wd := slices.Index(weekdays, strings.ToLower(s.Weekday))
		start, ok1 := parseClock(s.Start, false)
		end, ok2 := parseClock(s.End, true)
		if wd < 0 || !ok1 || !ok2 {
			continue
		}
		var on bool
		if start < end {
			on = day == wd && minute >= start && minute < end
		} else { // past midnight: the evening of wd and the morning after
			on = (day == wd && minute >= start) || (day == (wd+1)%7 && minute < end)
		}
		if on && !slices.Contains(out, s.UserID) {
			out = append(out, s.UserID)
		}
	}
	return out
}
