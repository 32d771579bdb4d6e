package engine

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/rpm"
)

// Alert is a flagged situation of a patient awaiting triage.
type Alert struct {
	ID             uuid.UUID   `json:"id"`
	PatientID      uuid.UUID   `json:"patient_id"`
	CareTeamID     uuid.UUID   `json:"care_team_id"`
	RuleID         string      `json:"rule_id"`
	RuleVersion    int         `json:"rule_version"`
	Urgency        rpm.Urgency `json:"urgency"`
	Status         string      `json:"status"`
	Title          string      `json:"title"`
	Occurrences    int         `json:"occurrences"`
	CreatedAt      time.Time   `json:"created_at"`
	UpdatedAt      time.Time   `json:"updated_at"`
	LastObservedAt time.Time   `json:"last_observed_at"`
	LastReadingID  *uuid.UUID  `json:"last_reading_id,omitempty"`
	AcknowledgedAt *time.Time  `json:"acknowledged_at,omitempty"`
	AcknowledgedBy *uuid.UUID  `json:"acknowledged_by,omitempty"`
	ResolvedAt     *time.Time  `json:"resolved_at,omitempty"`
	Undelivered    bool        `json:"undelivered"`
}

// AlertDetail is an alert with its findings, readings and history.
type AlertDetail struct {
	Alert
	Findings []AlertFinding `json:"findings"`
	Readings []Reading      `json:"readings"`
	Events   []AlertEvent   `json:"events"`
}

// AlertFinding is one rule firing recorded on an alert.
type AlertFinding struct {
	RuleID      string      `json:"rule_id"`
	RuleVersion int         `json:"rule_version"`
	Urgency     rpm.Urgency `json:"urgency"`
	ReadingID   *uuid.UUID  `json:"reading_id,omitempty"`
	ObservedAt  time.Time   `json:"observed_at"`
	Late        bool        `json:"late"`
	CreatedAt   time.Time   `json:"created_at"`
}

// AlertEvent is one step of an alert's lifecycle.
type AlertEvent struct {
	Action  string     `json:"action"`
	ActorID *uuid.UUID `json:"actor_id,omitempty"`
	At      time.Time  `json:"at"`
}

const alertColumns = `a.id, a.patient_id, a.care_team_id, a.rule_id, a.rule_version, a.urgency, a.status, a.title, a.occurrences,
	a.created_at, a.updated_at, a.last_observed_at, a.last_reading_id, a.acknowledged_at, a.acknowledged_by, a.resolved_at, a.undelivered`

func scanAlert(r pgx.Row) (Alert, error) {
	var x Alert
	err := r.Scan(&x.ID, &x.PatientID, &x.CareTeamID, &x.RuleID, &x.RuleVersion, &x.Urgency, &x.Status, &x.Title, &x.Occurrences,
		&x.CreatedAt, &x.UpdatedAt, &x.LastObservedAt, &x.LastReadingID, &x.AcknowledgedAt, &x.AcknowledgedBy, &x.ResolvedAt, &x.Undelivered)
	return x, err
}

// alertScope restricts alerts to those the actor may see: admins all,
// clinicians their care teams'.
const alertScope = `($1 = 'admin' OR EXISTS (SELECT 1 FROM care_team_members m WHERE m.care_team_id = a.care_team_id AND m.user_id = $2))`

// AlertFilter selects alerts for the triage queue.
type AlertFilter struct {
	// Statuses defaults to the unresolved ones (open, acknowledged, snoozed).
	Statuses  []string
	Urgencies []rpm.Urgency
	PatientID uuid.UUID
	Cursor    string
	Limit     int
}

// AlertStatuses are the lifecycle states of an alert.
var alertStatuses = []string{"open", "acknowledged", "snoozed", "resolved"}

// ErrBadCursor is returned for a cursor this engine did not issue.
var ErrBadCursor = errors.New("invalid cursor")

type alertCursor struct {
	Rank int       `json:"r"`
	At   time.Time `json:"t"`
	ID   uuid.UUID `json:"i"`
}

func (c *alertCursor) valid() bool { return c.Rank >= 0 && c.Rank <= 99 && cursorTimeOK(c.At) }

// ListAlerts returns the triage queue: most urgent first, then oldest first.
func (e *Engine) ListAlerts(ctx context.Context, a Actor, f AlertFilter) ([]Alert, string, error) {
	if err := forbid(a, RoleAdmin, RoleClinician); err != nil {
		return nil, "", err
	}
	var v rpm.ValidationError
	if len(f.Statuses) == 0 {
		f.Statuses = []string{"open", "acknowledged", "snoozed"}
	}
	for _, s := range f.Statuses {
		if !slices.Contains(alertStatuses, s) {
			v.Add("status", "must be open, acknowledged, snoozed or resolved")
		}
	}
	urg := make([]string, 0, len(f.Urgencies))
	for _, u := range f.Urgencies {
		if !u.Valid() {
			v.Add("urgency", "must be critical, high, medium or low")
		}
		urg = append(urg, string(u))
	}
	cur := alertCursor{Rank: 99}
	if f.Cursor != "" {
		if err := decodeCursor(f.Cursor, &cur); err != nil {
			v.Add("cursor", "is not a cursor returned by this endpoint")
		}
	}
	if err := v.OrNil(); err != nil {
		return nil, "", err
	}
	limit := clampLimit(f.Limit)
	var out []Alert
	err := e.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+alertColumns+` FROM alerts a
			WHERE `+alertScope+` AND a.status = ANY($3) AND (cardinality($4::text[]) = 0 OR a.urgency = ANY($4))
			AND ($5::uuid IS NULL OR a.patient_id = $5)
			AND (a.urgency_rank < $8 OR (a.urgency_rank = $8 AND (a.created_at, a.id) > ($6, $7)))
			ORDER BY a.urgency_rank DESC, a.created_at, a.id LIMIT $9`,
			a.Role, a.UserID, f.Statuses, urg, nilIfZero(f.PatientID), cur.At, cur.ID, cur.Rank, limit+1)
		if err != nil {
			return fmt.Errorf("list alerts: %w", err)
		}
		for rows.Next() {
			x, err := scanAlert(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("list alerts: %w", err)
			}
			out = append(out, x)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("list alerts: %w", err)
		}
		// The queue shows which patients have which problems: a PHI read.
		return e.audit(ctx, tx, a, Audit{Action: "alert.list", PatientID: f.PatientID, ObjectType: "alert",
			Detail: map[string]any{"count": min(len(out), limit)}})
	})
	if err != nil {
		return nil, "", err
	}
	out, next := page(out, limit, func(last Alert) string {
		return encodeCursor(alertCursor{Rank: last.Urgency.Rank(), At: last.CreatedAt, ID: last.ID})
	})
	return out, next, nil
}

// GetAlert returns an alert in scope with its findings, readings and events.
func (e *Engine) GetAlert(ctx context.Context, a Actor, id uuid.UUID) (AlertDetail, error) {
	if err := forbid(a, RoleAdmin, RoleClinician); err != nil {
		return AlertDetail{}, fmt.Errorf("alert: %w", ErrNotFound)
	}
	var d AlertDetail
	err := e.inTx(ctx, func(tx pgx.Tx) error {
		al, err := scanAlert(tx.QueryRow(ctx, `SELECT `+alertColumns+` FROM alerts a WHERE a.id = $3 AND `+alertScope, a.Role, a.UserID, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("alert: %w", ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("get alert: %w", err)
		}
		d.Alert = al
		rows, err := tx.Query(ctx, `SELECT rule_id, rule_version, urgency, reading_id, observed_at, late, created_at
			FROM alert_findings WHERE alert_id = $1 ORDER BY id LIMIT 500`, id)
		if err != nil {
			return fmt.Errorf("get alert findings: %w", err)
		}
		if d.Findings, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (AlertFinding, error) {
			var f AlertFinding
			err := r.Scan(&f.RuleID, &f.RuleVersion, &f.Urgency, &f.ReadingID, &f.ObservedAt, &f.Late, &f.CreatedAt)
			return f, err
		}); err != nil {
			return fmt.Errorf("get alert findings: %w", err)
		}
		rows, err = tx.Query(ctx, `SELECT `+readingColumns+` FROM readings r WHERE r.patient_id = $1 AND r.id IN (
				SELECT reading_id FROM alert_findings WHERE alert_id = $2 AND reading_id IS NOT NULL)
			ORDER BY r.observed_at, r.id LIMIT 500`, al.PatientID, id)
		if err != nil {
			return fmt.Errorf("get alert readings: %w", err)
		}
		if d.Readings, err = pgx.CollectRows(rows, scanReading); err != nil {
			return fmt.Errorf("get alert readings: %w", err)
		}
		rows, err = tx.Query(ctx, `SELECT action, actor_id, at FROM alert_events WHERE alert_id = $1 ORDER BY id LIMIT 500`, id)
		if err != nil {
			return fmt.Errorf("get alert events: %w", err)
		}
		if d.Events, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (AlertEvent, error) {
			var ev AlertEvent
			err := r.Scan(&ev.Action, &ev.ActorID, &ev.At)
			return ev, err
		}); err != nil {
			return fmt.Errorf("get alert events: %w", err)
		}
		return e.audit(ctx, tx, a, Audit{Action: "alert.read", PatientID: al.PatientID, ObjectType: "alert", ObjectID: id.String()})
	})
	return d, err
}

// AckAlert acknowledges an alert: someone is on it, so it stops escalating and
// re-notifying (unless its urgency rises). Acknowledging an acknowledged alert
// is a no-op; a resolved one is a conflict.
func (e *Engine) AckAlert(ctx context.Context, a Actor, id uuid.UUID) (Alert, error) {
	if err := forbid(a, RoleAdmin, RoleClinician); err != nil {
		return Alert{}, fmt.Errorf("alert: %w", ErrNotFound)
	}
	var al Alert
	err := e.inTx(ctx, func(tx pgx.Tx) error {
		var status string
		var patient uuid.UUID
		err := tx.QueryRow(ctx, `SELECT a.status, a.patient_id FROM alerts a WHERE a.id = $3 AND `+alertScope+` FOR UPDATE`,
			a.Role, a.UserID, id).Scan(&status, &patient)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("alert: %w", ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("ack alert: %w", err)
		}
		switch status {
		case "resolved":
			return fmt.Errorf("alert is resolved: %w", ErrConflict)
		case "open", "snoozed":
			now := e.now()
			if _, err := tx.Exec(ctx, `UPDATE alerts SET status = 'acknowledged', acknowledged_at = $2, acknowledged_by = $3,
				snoozed_until = NULL, updated_at = $2 WHERE id = $1`, id, now, nilIfZero(a.UserID)); err != nil {
				return fmt.Errorf("ack alert: %w", err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO alert_events (alert_id, action, actor_id, at) VALUES ($1, 'acknowledged', $2, $3)`,
				id, nilIfZero(a.UserID), now); err != nil {
				return fmt.Errorf("ack alert: %w", err)
			}
		}
		if err := e.audit(ctx, tx, a, Audit{Action: "alert.ack", PatientID: patient, ObjectType: "alert", ObjectID: id.String()}); err != nil {
			return err
		}
		al, err = scanAlert(tx.QueryRow(ctx, `SELECT `+alertColumns+` FROM alerts a WHERE a.id = $1`, id))
		if err != nil {
			return fmt.Errorf("ack alert: %w", err)
		}
		return nil
	})
	return al, err
}

// page trims a list query's rows (fetched with LIMIT limit+1) to limit and
// returns the cursor of the next page, "" at the end.
func page[T any](rows []T, limit int, cursor func(last T) string) ([]T, string) {
	if len(rows) <= limit {
		return rows, ""
	}
	rows = rows[:limit]
	return rows, cursor(rows[limit-1])
}

func encodeCursor(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// cursor is a decoded page cursor that can check its own values: a cursor is
// client input, and a forged one must be refused before it reaches SQL.
type cursor interface{ valid() bool }

func decodeCursor(s string, v cursor) error {
	if len(s) > 512 {
		return ErrBadCursor
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return ErrBadCursor
	}
	if err := json.Unmarshal(b, v); err != nil || !v.valid() {
		return ErrBadCursor
	}
	return nil
}

// cursorTimeOK bounds a cursor's time to what Postgres and the API can hold.
func cursorTimeOK(t time.Time) bool {
	return !t.Before(time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)) && t.Before(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))
}
