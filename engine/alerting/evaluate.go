package alerting

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/rules"
)

// Stored is a measurement with its id and whether this ingest created it.
type Stored struct {
	rpm.Measurement
	ID      uuid.UUID
	Created bool
}

// AlertRef summarises an alert raised or updated by an ingest.
type AlertRef struct {
	ID      uuid.UUID   `json:"id"`
	RuleID  string      `json:"rule_id"`
	Urgency rpm.Urgency `json:"urgency"`
	Title   string      `json:"title"`
	// Status is "opened" for a new alert, "updated" for an existing open one.
	Status string `json:"status"`
}

// BatchHistories gives each fresh reading (in hist order) its own history:
// everything in hist up to and including itself, plus stored readings
// observed after it. Later readings of the same batch are left out, so a
// batch is evaluated as if its readings had arrived one by one in time order,
// and only readings stored before this ingest can make one of them late.
// Usually nothing stored is later, and each history is a sub-slice of hist.
func BatchHistories(hist []rules.Observation, fresh []Stored) map[uuid.UUID][]rules.Observation {
	isFresh := make(map[string]uuid.UUID, len(fresh))
	for _, s := range fresh {
		isFresh[s.ID.String()] = s.ID
	}
	var storedAt []int // indexes in hist of readings stored before this ingest
	for i, o := range hist {
		if _, ok := isFresh[o.ID]; !ok {
			storedAt = append(storedAt, i)
		}
	}
	out := make(map[uuid.UUID][]rules.Observation, len(fresh))
	for i, o := range hist {
		id, ok := isFresh[o.ID]
		if !ok {
			continue
		}
		j, _ := slices.BinarySearch(storedAt, i)
		if j == len(storedAt) {
			out[id] = hist[:i+1]
			continue
		}
		h := slices.Clone(hist[:i+1])
		for _, k := range storedAt[j:] {
			h = append(h, hist[k])
		}
		out[id] = h
	}
	return out
}

// Observation is a stored reading as the rules see it.
func Observation(s Stored) rules.Observation {
	return rules.Observation{ID: s.ID.String(), Kind: s.Kind, Value: s.Value, Systolic: s.Systolic, Diastolic: s.Diastolic,
		Unit: s.Unit, ObservedAt: s.ObservedAt}
}

// PatientParams loads a patient's personalised rule parameters
// (rule id → param → value) inside the caller's transaction; nil when the
// patient has none.
func PatientParams(ctx context.Context, tx pgx.Tx, patientID uuid.UUID) (map[string]map[string]float64, error) {
	var out map[string]map[string]float64
	err := tx.QueryRow(ctx, patientOverridesSQL, patientID).Scan(&out)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("patient params: %w", err)
	}
	return out, nil
}
