package engine

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/internal/check"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/presence"
)

// PresenceUpdate is what a client reports of its user's presence (POST
// /v1/me/presence); a nil field is left as it is.
type PresenceUpdate struct {
	// State is "away" once the user has been idle for the idle time the
	// client read from GET /v1/me/presence, and "online" when they are back.
	State *string `json:"state"`
	// Hidden makes a staff member appear offline to everyone else.
	Hidden *bool `json:"hidden"`
}

// GetPresence returns the caller's own presence and settings.
func (e *Engine) GetPresence(ctx context.Context, a Actor) (OwnPresence, error) {
	if err := presenceUser(a); err != nil {
		return OwnPresence{}, err
	}
	return e.presence.Get(ctx, e.pool, a.UserID)
}

// SetPresence records what the caller's client reports (away or back,
// hidden or shown) and tells those who may see it. Never audited: presence
// is no health information.
func (e *Engine) SetPresence(ctx context.Context, a Actor, u PresenceUpdate) (OwnPresence, error) {
	if err := presenceUser(a); err != nil {
		return OwnPresence{}, err
	}
	var away *bool
	switch {
	case u.State == nil && u.Hidden == nil:
		return OwnPresence{}, check.FieldError("state", "is required (or hidden): send \"away\" or \"online\"")
	case u.State == nil:
	case *u.State == presence.Away || *u.State == presence.Online:
		v := *u.State == presence.Away
		away = &v
	default:
		return OwnPresence{}, check.FieldError("state", "must be \"away\" or \"online\"")
	}
	if u.Hidden != nil && *u.Hidden && !a.Is(access.RoleClinician, access.RoleScheduler, access.RoleAdmin) {
		return OwnPresence{}, check.FieldError("hidden", "only staff may hide their presence")
	}
	if err := pg.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		return e.presence.Set(ctx, tx, a.UserID, away, u.Hidden)
	}); err != nil {
		return OwnPresence{}, err
	}
	return e.presence.Get(ctx, e.pool, a.UserID)
}

// DeviceConnected counts a device's (or a patient's) MQTT connection as the
// patient's users being online, until DeviceDisconnected.
func (e *Engine) DeviceConnected(ctx context.Context, a Actor) error {
	return e.devicePresence(ctx, a, e.presence.Connect)
}

// DeviceDisconnected ends what DeviceConnected counted.
func (e *Engine) DeviceDisconnected(ctx context.Context, a Actor) error {
	return e.devicePresence(ctx, a, e.presence.Disconnect)
}

func (e *Engine) devicePresence(ctx context.Context, a Actor, fn func(context.Context, uuid.UUID) error) error {
	if a.Role == access.RolePatient && a.UserID != uuid.Nil {
		return fn(ctx, a.UserID)
	}
	if a.Role != access.RoleDevice || a.PatientID == uuid.Nil {
		return nil
	}
	users, err := e.presence.PatientUsers(ctx, e.pool, a.PatientID)
	if err != nil {
		return err
	}
	for _, u := range users {
		if err := fn(ctx, u); err != nil {
			return fmt.Errorf("device presence: %w", err)
		}
	}
	return nil
}

// presenceUser: presence is a person's, not a device's.
func presenceUser(a Actor) error {
	if a.UserID == uuid.Nil || !a.Is(access.RolePatient, access.RoleClinician, access.RoleScheduler, access.RoleAdmin) {
		return fmt.Errorf("presence: %w", access.ErrNotFound)
	}
	return nil
}
