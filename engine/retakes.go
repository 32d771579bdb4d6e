package engine

import (
	"context"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine/internal/events"
)

// PendingRetakes lists the patient's open requests to measure again
// (alerting.Service.PendingRetakes).
func (e *Engine) PendingRetakes(ctx context.Context, a Actor, patientID uuid.UUID) ([]PendingRetake, error) {
	return e.alerting.PendingRetakes(ctx, a, patientID)
}

// RetakesRequested is the data of a retake.requested event: requests to
// measure again made for the patient, by a reading's retake rule or a
// symptom report's ask, on any process.
type RetakesRequested struct {
	PatientID uuid.UUID   `json:"patient_id"`
	Retakes   []RetakeRef `json:"retakes"`
}

// FollowRetakes follows the requests to measure again of every patient, as
// they commit on any process sharing the database: each message's Data is a
// RetakesRequested. after is the id of the last message handled (nil for
// none); the messages after it are replayed (Backlog), or a StreamReset when
// they no longer all can be. Close it when done.
func (e *Engine) FollowRetakes(ctx context.Context, after *int64) (*StreamSubscription, error) {
	return e.stream.Follow(ctx, []string{events.RetakeRequested}, after, retakeFollowBuffer)
}

// retakeFollowBuffer is how many retake events a follower may have waiting
// before it is dropped as too slow (and resumes with a replay).
const retakeFollowBuffer = 1024
