package triage

import (
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// QueueFacts are what a clinician needs to tell alerts apart in the queue
// without opening each: whose alert it is, the value that fired, who has it
// and what the patient wrote since. The list and the detail carry them; the
// lifecycle actions' answers do not.
type QueueFacts struct {
	// PatientName is the patient's display name.
	PatientName string `json:"patient_name,omitempty"`
	// AssignedToName is the name of the user the alert is assigned to.
	AssignedToName *string `json:"assigned_to_name,omitempty"`
	// LastReading is the latest reading that fired (last_reading_id), absent
	// for an alert raised by no reading (symptoms, missed doses, missing data).
	LastReading *FiredReading `json:"last_reading,omitempty"`
	// UnreadMessages counts the messages after the caller's read mark in the
	// patient's thread with the alert's care team.
	UnreadMessages *int64 `json:"unread_messages,omitempty"`
}

// FiredReading is the value a rule fired on, in the unit it was stored in.
type FiredReading struct {
	ID         uuid.UUID `json:"id"`
	Kind       string    `json:"kind"`
	Value      float64   `json:"value"`
	Systolic   *float64  `json:"systolic,omitempty"`
	Diastolic  *float64  `json:"diastolic,omitempty"`
	Unit       string    `json:"unit"`
	ObservedAt time.Time `json:"observed_at"`
}

// queueColumns are the QueueFacts of alerts a for the caller ($2): they
// need the joins of queueJoins.
const queueColumns = `, p.display_name, u.name,
	(SELECT jsonb_build_object('id', r.id, 'kind', r.kind, 'value', r.value, 'systolic', r.systolic, 'diastolic', r.diastolic,
		'unit', r.unit, 'observed_at', r.observed_at)
		FROM readings r WHERE r.patient_id = a.patient_id AND r.observed_at = a.last_observed_at AND r.id = a.last_reading_id),
	(SELECT greatest(t.last_seq - coalesce(tr.read_up_to, 0), 0) FROM threads t
		LEFT JOIN thread_receipts tr ON tr.thread_id = t.id AND tr.user_id = $2
		WHERE t.patient_id = a.patient_id AND t.care_team_id = a.care_team_id AND t.kind = 'patient')`

// queueJoins join the patient and the assignee for queueColumns.
const queueJoins = ` JOIN patients p ON p.id = a.patient_id LEFT JOIN users u ON u.id = a.assigned_to`

// scanQueueAlert reads a row of alertColumns and queueColumns.
func scanQueueAlert(r pgx.Row) (Alert, error) {
	var x Alert
	err := r.Scan(append(alertDest(&x), &x.PatientName, &x.AssignedToName, &x.LastReading, &x.UnreadMessages)...)
	return x, err
}
