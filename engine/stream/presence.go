package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/internal/events"
	"github.com/tendhealth/tend/engine/internal/presence"
)

// Close ends the subscription; call it when the client goes away.
func (s *Subscription) Close() {
	s.svc.drop(s, nil)
	s.untrack.Do(func() {
		if !s.tracked {
			return
		}
		if err := s.svc.cfg.Presence.Disconnect(context.Background(), s.actor.UserID); err != nil {
			s.svc.log.Warn("stream: presence", "error", err)
		}
	})
}

// ephemeral hands the events that are never stored (typing) to the
// participants of their thread connected to this process.
type ephemeral struct{ svc *Service }

// HandleNotification reads the thread's participants and publishes the
// event, without an id: it cannot be replayed.
func (h *ephemeral) HandleNotification(ctx context.Context, n *pgconn.Notification, conn *pgx.Conn) error {
	var ev events.Ephemeral
	if err := json.Unmarshal([]byte(n.Payload), &ev); err != nil || (ev.Thread == uuid.Nil && ev.Type != presence.Event) {
		return fmt.Errorf("stream: malformed ephemeral event")
	}
	if h.svc.Subscribers() == 0 {
		return nil
	}
	if ev.Type == presence.Event {
		return h.presence(ctx, conn, ev.From)
	}
	var members []uuid.UUID
	if err := conn.QueryRow(ctx, participantsSQL, ev.Thread).Scan(&members); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return fmt.Errorf("stream: participants: %w", err)
	}
	data, err := json.Marshal(map[string]any{"thread_id": ev.Thread, "user_id": ev.From})
	if err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	h.svc.publish(loaded{typ: ev.Type, payload: data, members: members, thread: true, except: ev.From})
	return nil
}

// presence publishes a change of user's presence: the state to the staff
// who may see it, and to the patients of each of a staff member's teams
// only whether the team has someone available.
func (h *ephemeral) presence(ctx context.Context, conn *pgx.Conn, user uuid.UUID) error {
	p := h.svc.cfg.Presence
	if p == nil || user == uuid.Nil {
		return nil
	}
	c, err := p.Load(ctx, conn, user)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	data, err := json.Marshal(map[string]any{"user_id": user, "state": c.Presence.State, "last_seen": c.Presence.LastSeen})
	if err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	h.svc.publishTo(presence.Event, data, c.Staff, access.RoleClinician, access.RoleScheduler, access.RoleAdmin)
	for _, t := range c.Teams {
		data, err := json.Marshal(map[string]any{"care_team_available": t.Available})
		if err != nil {
			return fmt.Errorf("stream: %w", err)
		}
		h.svc.publishTo(presence.Event, data, t.Patients, access.RolePatient)
	}
	return nil
}

// publishTo hands an ephemeral event to the subscriptions of users whose
// actor has one of roles.
func (s *Service) publishTo(typ string, data []byte, users []uuid.UUID, roles ...access.Role) {
	if len(users) == 0 {
		return
	}
	to := make(map[uuid.UUID]struct{}, len(users))
	for _, u := range users {
		to[u] = struct{}{}
	}
	m := &Message{Type: typ, Data: data}
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.subs {
		if _, ok := to[sub.actor.UserID]; !ok || !sub.actor.Is(roles...) {
			continue
		}
		select {
		case sub.ch <- m:
		default:
			s.dropLocked(sub, ErrSlow)
		}
	}
}
