package presence

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Querier runs statements: a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Presence is one user's presence as another may see it.
type Presence struct {
	// State is online, away or offline. A hidden user is offline.
	State string `json:"state"`
	// LastSeen is when a client of theirs last held a connection; null for
	// a hidden user and one never seen.
	LastSeen *time.Time `json:"last_seen"`
}

// Own is a user's own presence and settings.
type Own struct {
	Presence
	// Hidden: the user appears offline to everyone else.
	Hidden bool `json:"hidden"`
	// IdleSeconds is how long a client waits without its user's input
	// before it reports them away.
	IdleSeconds int `json:"idle_seconds"`
}

// Participant is one participant of a thread with their presence.
type Participant struct {
	UserID uuid.UUID `json:"user_id"`
	Role   string    `json:"role"`
	// Presence is null when the viewer may not see it (a staff member who
	// shares no care team with the viewer).
	Presence *Presence `json:"presence"`
}

// of computes what others see of a user from their row.
func of(hidden, away, online bool, last *time.Time) Presence {
	switch {
	case hidden:
		return Presence{State: Offline}
	case online && away:
		return Presence{State: Away, LastSeen: last}
	case online:
		return Presence{State: Online, LastSeen: last}
	}
	return Presence{State: Offline, LastSeen: last}
}

// Get returns user's own presence and settings.
func (t *Tracker) Get(ctx context.Context, q Querier, user uuid.UUID) (Own, error) {
	var role string
	var hidden, away, online bool
	var last *time.Time
	err := q.QueryRow(ctx, stateSQL, user, t.Fresh()).Scan(&role, &hidden, &away, &last, &online)
	if errors.Is(err, pgx.ErrNoRows) {
		return Own{}, fmt.Errorf("presence: %w", err)
	}
	if err != nil {
		return Own{}, fmt.Errorf("presence: %w", err)
	}
	p := of(false, away, online, last)
	return Own{Presence: p, Hidden: hidden, IdleSeconds: int(t.cfg.Idle / time.Second)}, nil
}

// Set changes user's away or hidden flag (nil keeps it) in tx, and tells
// the streams at commit.
func (t *Tracker) Set(ctx context.Context, tx pgx.Tx, user uuid.UUID, away, hidden *bool) error {
	if _, err := tx.Exec(ctx, setSQL, user, away, hidden); err != nil {
		return fmt.Errorf("set presence: %w", err)
	}
	return Changed(ctx, tx, user)
}

// Participants returns thread's participants with the presence staff member
// viewer may see.
func (t *Tracker) Participants(ctx context.Context, q Querier, viewer, thread uuid.UUID) ([]Participant, error) {
	rows, err := q.Query(ctx, participantsSQL, thread, viewer, t.Fresh())
	if err != nil {
		return nil, fmt.Errorf("participants: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Participant, error) {
		var p Participant
		var hidden, away, online, visible bool
		var last *time.Time
		if err := r.Scan(&p.UserID, &p.Role, &hidden, &away, &last, &online, &visible); err != nil {
			return p, err
		}
		if visible || p.UserID == viewer {
			pr := of(hidden && p.UserID != viewer, away, online, last)
			p.Presence = &pr
		}
		return p, nil
	})
	if err != nil {
		return nil, fmt.Errorf("participants: %w", err)
	}
	return out, nil
}

// Users returns the presence of users as viewer sees it: a hidden user
// shows as offline, without last_seen, to everyone but themselves. The
// caller decides that viewer may see them.
func (t *Tracker) Users(ctx context.Context, q Querier, viewer uuid.UUID, users []uuid.UUID) (map[uuid.UUID]Presence, error) {
	rows, err := q.Query(ctx, usersSQL, users, t.Fresh())
	if err != nil {
		return nil, fmt.Errorf("presence: %w", err)
	}
	out := make(map[uuid.UUID]Presence, len(users))
	var id uuid.UUID
	var hidden, away, online bool
	var last *time.Time
	if _, err := pgx.ForEachRow(rows, []any{&id, &hidden, &away, &last, &online}, func() error {
		out[id] = of(hidden && id != viewer, away, online, last)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("presence: %w", err)
	}
	return out, nil
}

// Available reports whether a staff member of care team is online, not away
// and not hidden: all a patient learns of their team's presence.
func (t *Tracker) Available(ctx context.Context, q Querier, team uuid.UUID) (bool, error) {
	var ok bool
	if err := q.QueryRow(ctx, availableSQL, team, t.Fresh()).Scan(&ok); err != nil {
		return false, fmt.Errorf("care team availability: %w", err)
	}
	return ok, nil
}

// Change is what the streams send of a change of one user's presence.
type Change struct {
	// Staff may see the user's Presence (the user included).
	Staff    []uuid.UUID
	Presence Presence
	// Teams are, when the user is staff, their teams' availability and the
	// patients' users who are told it.
	Teams []TeamAvailability
}

// TeamAvailability is whether a care team has someone available, and who
// is told.
type TeamAvailability struct {
	Available bool
	Patients  []uuid.UUID
}

// Load reads who may see a change of user's presence and what they see.
func (t *Tracker) Load(ctx context.Context, q Querier, user uuid.UUID) (Change, error) {
	var c Change
	var role string
	var hidden, away, online bool
	var last *time.Time
	fresh := t.Fresh()
	err := q.QueryRow(ctx, stateSQL, user, fresh).Scan(&role, &hidden, &away, &last, &online)
	if err != nil {
		return c, fmt.Errorf("presence change: %w", err)
	}
	c.Presence = of(hidden, away, online, last)
	if err := q.QueryRow(ctx, audienceSQL, user).Scan(&c.Staff); err != nil {
		return c, fmt.Errorf("presence audience: %w", err)
	}
	if role == "patient" || role == "device" {
		return c, nil
	}
	rows, err := q.Query(ctx, teamsSQL, user, fresh)
	if err != nil {
		return c, fmt.Errorf("presence teams: %w", err)
	}
	var ta TeamAvailability
	var team uuid.UUID
	if _, err := pgx.ForEachRow(rows, []any{&team, &ta.Available, &ta.Patients}, func() error {
		c.Teams = append(c.Teams, ta)
		return nil
	}); err != nil {
		return c, fmt.Errorf("presence teams: %w", err)
	}
	return c, nil
}

// PatientUsers returns the users of patient: whose presence a device of
// theirs counts for.
func (t *Tracker) PatientUsers(ctx context.Context, q Querier, patient uuid.UUID) ([]uuid.UUID, error) {
	rows, err := q.Query(ctx, patientUsersSQL, patient)
	if err != nil {
		return nil, fmt.Errorf("patient users: %w", err)
	}
	users, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("patient users: %w", err)
	}
	return users, nil
}
