package identity

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/delivery"
	"github.com/tendhealth/tend/engine/internal/check"
	"github.com/tendhealth/tend/engine/internal/pg"
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
func (us *Service) GetPreferences(ctx context.Context, a access.Actor) (Preferences, error) {
	if a.UserID == uuid.Nil {
		return Preferences{}, fmt.Errorf("preferences need a user: %w", access.ErrForbidden)
	}
	var p Preferences
	var tz, start, end *string
	err := us.pool.QueryRow(ctx, getPreferencesSQL, a.UserID).
		Scan(&tz, &start, &end)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, fmt.Errorf("user: %w", access.ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("get preferences: %w", err)
	}
	p.Timezone = pg.Deref(tz)
	if start != nil && end != nil {
		p.QuietHours = &QuietHours{Start: *start, End: *end}
	}
	return p, nil
}

// SetPreferences replaces the calling user's preferences. Quiet hours need a
// time zone. Notifications already held are rescheduled to the end of the
// new window (the organisation's when the user cleared their own), or
// released at once when the user is no longer in one.
func (us *Service) SetPreferences(ctx context.Context, a access.Actor, p Preferences) (Preferences, error) {
	if a.UserID == uuid.Nil {
		return Preferences{}, fmt.Errorf("preferences need a user: %w", access.ErrForbidden)
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
	err := pg.InTx(ctx, us.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, setPreferencesSQL, a.UserID, tz, start, end)
		if err != nil {
			return fmt.Errorf("set preferences: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("user: %w", access.ErrNotFound)
		}
		if err := us.delivery.RescheduleHeld(ctx, tx, a.UserID); err != nil {
			return err
		}
		return us.audit.Write(ctx, tx, a, audit.Entry{Action: "preferences.update", ObjectType: "user", ObjectID: a.UserID.String()})
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
		if _, err := check.LoadZone(p.Timezone); err != nil {
			v.Add("timezone", "must be an IANA time zone such as America/Chicago")
		}
	}
	if q := p.QuietHours; q != nil {
		s, sok := delivery.ParseClock(q.Start)
		if !sok {
			v.Add("quiet_hours.start", "must be a time of day as HH:MM, 00:00 to 23:59")
		}
		en, eok := delivery.ParseClock(q.End)
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
