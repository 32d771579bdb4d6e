package triage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/events"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/readings"
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
	// The rest of the lifecycle: who resolved it and why, until when it is
	// snoozed, who it is assigned to.
	ResolvedBy   *uuid.UUID `json:"resolved_by,omitempty"`
	Disposition  *string    `json:"disposition,omitempty"`
	SnoozedUntil *time.Time `json:"snoozed_until,omitempty"`
	AssignedTo   *uuid.UUID `json:"assigned_to,omitempty"`
	// EscalationLevel is the number of escalation steps taken (0: only the
	// first level was paged); EscalationExhausted is set once every level of
	// the team's policy was notified without an acknowledgement.
	EscalationLevel     int  `json:"escalation_level"`
	EscalationExhausted bool `json:"escalation_exhausted"`
	QueueFacts
}

// AlertDetail is an alert with its findings, readings and history.
type AlertDetail struct {
	Alert
	Findings []AlertFinding     `json:"findings"`
	Readings []readings.Reading `json:"readings"`
	Events   []AlertEvent       `json:"events"`
	// Recent are the patient's readings of the alert's kind from
	// RecentWindow before its last observation on (readings since included),
	// oldest first (at most maxRecent, the latest kept): the series to plot. Empty for an alert
	// raised by no reading (symptoms, missing data).
	Recent []readings.Reading `json:"recent"`
}

// RecentWindow is how far back an alert's detail lists the patient's
// readings of its kind.
const RecentWindow = 30 * 24 * time.Hour

// maxRecent bounds the recent readings of an alert's detail.
const maxRecent = 500

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
	// ActorName is the name of the user who acted (absent for Tend's own steps).
	ActorName *string   `json:"actor_name,omitempty"`
	At        time.Time `json:"at"`
	// Note is what the clinician wrote with the action (ack, resolve), if
	// anything.
	Note string `json:"note,omitempty"`
}

func scanAlert(r pgx.Row) (Alert, error) {
	var x Alert
	err := r.Scan(alertDest(&x)...)
	return x, err
}

// alertDest lists where the columns of alertColumns go.
func alertDest(x *Alert) []any {
	return []any{&x.ID, &x.PatientID, &x.CareTeamID, &x.RuleID, &x.RuleVersion, &x.Urgency, &x.Status, &x.Title, &x.Occurrences,
		&x.CreatedAt, &x.UpdatedAt, &x.LastObservedAt, &x.LastReadingID, &x.AcknowledgedAt, &x.AcknowledgedBy, &x.ResolvedAt, &x.Undelivered,
		&x.ResolvedBy, &x.Disposition, &x.SnoozedUntil, &x.AssignedTo, &x.EscalationLevel, &x.EscalationExhausted}
}

// AlertFilter selects alerts for the triage queue.
type AlertFilter struct {
	// Statuses defaults to the unresolved ones (open, acknowledged, snoozed).
	Statuses  []string
	Urgencies []rpm.Urgency
	PatientID uuid.UUID
	// Assignee keeps the alerts assigned to this user; CareTeamID those of
	// this care team.
	Assignee   uuid.UUID
	CareTeamID uuid.UUID
	Cursor     string
	Limit      int
}

// AlertStatuses are the lifecycle states of an alert.
var alertStatuses = []string{"open", "acknowledged", "snoozed", "resolved"}

// pg.ErrBadCursor is returned for a cursor this engine did not issue.

type alertCursor struct {
	Rank int       `json:"r"`
	At   time.Time `json:"t"`
	ID   uuid.UUID `json:"i"`
}

func (c *alertCursor) Valid() bool { return c.Rank >= 0 && c.Rank <= 99 && pg.CursorTimeOK(c.At) }

// ListAlerts returns the triage queue: most urgent first, then oldest first.
func (tr *Service) ListAlerts(ctx context.Context, a access.Actor, f AlertFilter) ([]Alert, string, error) {
	if err := access.Require(a, access.RoleAdmin, access.RoleClinician); err != nil {
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
		if err := pg.DecodeCursor(f.Cursor, &cur); err != nil {
			v.Add("cursor", "is not a cursor returned by this endpoint")
		}
	}
	if err := v.OrNil(); err != nil {
		return nil, "", err
	}
	limit := pg.ClampLimit(f.Limit)
	var out []Alert
	err := pg.InTx(ctx, tr.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, listAlertsSQL,
			a.Role, a.UserID, f.Statuses, urg, pg.NilIfZero(f.PatientID), cur.At, cur.ID, cur.Rank, limit+1,
			pg.NilIfZero(f.Assignee), pg.NilIfZero(f.CareTeamID))
		if err != nil {
			return fmt.Errorf("list alerts: %w", err)
		}
		for rows.Next() {
			x, err := scanQueueAlert(rows)
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
		return tr.audit.Write(ctx, tx, a, audit.Entry{Action: "alert.list", PatientID: f.PatientID, ObjectType: "alert",
			Detail: map[string]any{"count": min(len(out), limit)}})
	})
	if err != nil {
		return nil, "", err
	}
	out, next := pg.Page(out, limit, func(last Alert) string {
		return pg.EncodeCursor(alertCursor{Rank: last.Urgency.Rank(), At: last.CreatedAt, ID: last.ID})
	})
	return out, next, nil
}

// GetAlert returns an alert in scope with its findings, readings and events.
func (tr *Service) GetAlert(ctx context.Context, a access.Actor, id uuid.UUID) (AlertDetail, error) {
	if err := access.Require(a, access.RoleAdmin, access.RoleClinician); err != nil {
		return AlertDetail{}, fmt.Errorf("alert: %w", access.ErrNotFound)
	}
	var d AlertDetail
	err := pg.InTx(ctx, tr.pool, func(tx pgx.Tx) error {
		al, err := scanQueueAlert(tx.QueryRow(ctx, getAlertSQL, a.Role, a.UserID, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("alert: %w", access.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("get alert: %w", err)
		}
		d.Alert = al
		rows, err := tx.Query(ctx, alertFindingsSQL, id)
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
		rows, err = tx.Query(ctx, alertReadingsSQL, al.PatientID, id)
		if err != nil {
			return fmt.Errorf("get alert readings: %w", err)
		}
		if d.Readings, err = pgx.CollectRows(rows, readings.Scan); err != nil {
			return fmt.Errorf("get alert readings: %w", err)
		}
		rows, err = tx.Query(ctx, alertRecentSQL, al.PatientID, id, al.LastObservedAt.Add(-RecentWindow), maxRecent)
		if err != nil {
			return fmt.Errorf("get recent readings: %w", err)
		}
		if d.Recent, err = pgx.CollectRows(rows, readings.Scan); err != nil {
			return fmt.Errorf("get recent readings: %w", err)
		}
		if d.Recent == nil {
			d.Recent = []readings.Reading{}
		}
		rows, err = tx.Query(ctx, alertEventsSQL, id)
		if err != nil {
			return fmt.Errorf("get alert events: %w", err)
		}
		if d.Events, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (AlertEvent, error) {
			var ev AlertEvent
			err := r.Scan(&ev.Action, &ev.ActorID, &ev.At, &ev.Note, &ev.ActorName)
			return ev, err
		}); err != nil {
			return fmt.Errorf("get alert events: %w", err)
		}
		return tr.audit.Write(ctx, tx, a, audit.Entry{Action: "alert.read", PatientID: al.PatientID, ObjectType: "alert", ObjectID: id.String()})
	})
	return d, err
}

// AckAlert acknowledges an alert: someone is on it, so it stops escalating and
// re-notifying (unless its urgency rises). Acknowledging an acknowledged alert
// is a no-op; a resolved one is a conflict.
func (tr *Service) AckAlert(ctx context.Context, a access.Actor, id uuid.UUID, note string) (Alert, error) {
	if err := access.Require(a, access.RoleAdmin, access.RoleClinician); err != nil {
		return Alert{}, fmt.Errorf("alert: %w", access.ErrNotFound)
	}
	var al Alert
	err := pg.InTx(ctx, tr.pool, func(tx pgx.Tx) error {
		var status string
		var patient uuid.UUID
		err := tx.QueryRow(ctx, lockAlertSQL, a.Role, a.UserID, id).Scan(&status, &patient)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("alert: %w", access.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("ack alert: %w", err)
		}
		switch status {
		case "resolved":
			return conflict(ctx, tx, id, "alert is resolved")
		case "open", "snoozed":
			now := tr.now()
			if _, err := tx.Exec(ctx, ackAlertSQL, id, now, pg.NilIfZero(a.UserID)); err != nil {
				return fmt.Errorf("ack alert: %w", err)
			}
			if err := addEvent(ctx, tx, id, "acknowledged", a, now, note); err != nil {
				return fmt.Errorf("ack alert: %w", err)
			}
		case "acknowledged":
			// Acknowledging again changes nothing, but a note is kept.
			if note != "" {
				if err := addEvent(ctx, tx, id, "noted", a, tr.now(), note); err != nil {
					return fmt.Errorf("ack alert: %w", err)
				}
			}
		}
		if err := tr.audit.Write(ctx, tx, a, audit.Entry{Action: "alert.ack", PatientID: patient, ObjectType: "alert", ObjectID: id.String()}); err != nil {
			return err
		}
		al, err = scanAlert(tx.QueryRow(ctx, alertByIDSQL, id))
		if err != nil {
			return fmt.Errorf("ack alert: %w", err)
		}
		if status == "open" || status == "snoozed" {
			if err := events.Publish(ctx, tx, tr.now(), events.Event{Type: events.AlertUpdated, CareTeamID: al.CareTeamID,
				PatientID: al.PatientID, Payload: map[string]any{"alert_id": al.ID, "status": al.Status, "urgency": al.Urgency}}); err != nil {
				return err
			}
		}
		return nil
	})
	return al, err
}

// addEvent records an action on an alert, with the actor's note if any.
func addEvent(ctx context.Context, tx pgx.Tx, alertID uuid.UUID, action string, a access.Actor, at time.Time, note string) error {
	var detail map[string]any
	if note != "" {
		detail = map[string]any{"note": note}
	}
	_, err := tx.Exec(ctx, insertAlertEventSQL, alertID, action, pg.NilIfZero(a.UserID), at, detail)
	return err
}
