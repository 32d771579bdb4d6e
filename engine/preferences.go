package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/rpm"
)

// Preferences are a user's notification settings.
type Preferences struct {
	// Timezone is an IANA zone name ("America/Chicago"); empty when unset.
	// Quiet hours are read in it.
	Timezone string
	// QuietHours is the daily window in which medium and low notifications
	// wait; nil when the user has none.
	QuietHours *QuietHours
}

// QuietHours is a daily window of local wall-clock times, "HH:MM". A window
// whose end is earlier than its start spans midnight ("22:00"–"07:00").
// Critical and high notifications are never held.
type QuietHours struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// GetPreferences returns the calling user's preferences.
func (e *Engine) GetPreferences(ctx context.Context, a Actor) (Preferences, error) {
	if a.UserID == uuid.Nil {
		return Preferences{}, fmt.Errorf("preferences need a user: %w", ErrForbidden)
	}
	var p Preferences
	var tz, start, end *string
	err := e.pool.QueryRow(ctx, `SELECT timezone, quiet_start, quiet_end FROM users WHERE id = $1 AND disabled_at IS NULL`, a.UserID).
		Scan(&tz, &start, &end)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, fmt.Errorf("user: %w", ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("get preferences: %w", err)
	}
	p.Timezone = deref(tz)
	if start != nil && end != nil {
		p.QuietHours = &QuietHours{Start: *start, End: *end}
	}
	return p, nil
}

// SetPreferences replaces the calling user's preferences. Quiet hours need a
// time zone. Notifications already held are rescheduled to the end of the
// new window, or released at once when the user is no longer in one.
func (e *Engine) SetPreferences(ctx context.Context, a Actor, p Preferences) (Preferences, error) {
	if a.UserID == uuid.Nil {
		return Preferences{}, fmt.Errorf("preferences need a user: %w", ErrForbidden)
	}
	if err := p.validate(); err != nil {
		return Preferences{}, err
	}
	var tz, start, end *string
	if p.Timezone != "" {
		tz = &p.Timezone
	}
	if p.QuietHours != nil {
		start, end = &p.QuietHours.Start, &p.QuietHours.End
	}
	err := e.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET timezone = $2, quiet_start = $3, quiet_end = $4 WHERE id = $1 AND disabled_at IS NULL`,
			a.UserID, tz, start, end)
		if err != nil {
			return fmt.Errorf("set preferences: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("user: %w", ErrNotFound)
		}
		if err := e.rescheduleHeld(ctx, tx, a.UserID, p.quiet(), e.now()); err != nil {
			return err
		}
		return e.audit(ctx, tx, a, Audit{Action: "preferences.update", ObjectType: "user", ObjectID: a.UserID.String()})
	})
	if err != nil {
		return Preferences{}, err
	}
	return p, nil
}

// validate checks p; all problems are reported together.
func (p Preferences) validate() error {
	var v rpm.ValidationError
	if p.Timezone != "" {
		if _, err := loadZone(p.Timezone); err != nil {
			v.Add("timezone", "must be an IANA time zone such as America/Chicago")
		}
	}
	if q := p.QuietHours; q != nil {
		s, sok := parseClock(q.Start)
		if !sok {
			v.Add("quiet_hours.start", "must be a time of day as HH:MM, 00:00 to 23:59")
		}
		en, eok := parseClock(q.End)
		if !eok {
			v.Add("quiet_hours.end", "must be a time of day as HH:MM, 00:00 to 23:59")
		}
		if sok && eok && s == en {
			v.Add("quiet_hours.end", "must differ from quiet_hours.start")
		}
		if p.Timezone == "" {
			v.Add("timezone", "is required when quiet_hours is set")
		}
	}
	return v.OrNil()
}

// quiet returns p's window, or nil when it has none (or it is invalid).
func (p Preferences) quiet() *quietWindow {
	if p.QuietHours == nil || p.Timezone == "" {
		return nil
	}
	return newQuietWindow(p.Timezone, p.QuietHours.Start, p.QuietHours.End)
}

// loadZone loads an IANA zone, refusing the names that mean "wherever this
// server is" ("", "Local").
func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" || len(name) > 64 {
		return nil, errors.New("not an IANA time zone")
	}
	return time.LoadLocation(name)
}

// parseClock parses "HH:MM" into minutes after midnight.
func parseClock(s string) (int, bool) {
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
	loc, err := loadZone(zone)
	if err != nil {
		return nil
	}
	s, ok1 := parseClock(start)
	en, ok2 := parseClock(end)
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
