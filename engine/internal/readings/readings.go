// Package readings is the stored reading as the use cases read it back:
// its type, columns and scanner.
package readings

import (
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/tendhealth/tend/rpm"
)

// Reading is a stored vital-sign observation in canonical units.
type Reading struct {
	ID         uuid.UUID `json:"id"`
	PatientID  uuid.UUID `json:"patient_id"`
	Kind       rpm.Kind  `json:"kind"`
	Value      *float64  `json:"value,omitempty"`
	Systolic   *float64  `json:"systolic,omitempty"`
	Diastolic  *float64  `json:"diastolic,omitempty"`
	Unit       string    `json:"unit"`
	ObservedAt time.Time `json:"observed_at"`
	ReceivedAt time.Time `json:"received_at"`
	SourceID   *string   `json:"source_id,omitempty"`
}

// Columns are the columns Scan reads, of readings aliased r.
const Columns = `r.id, r.patient_id, r.kind, r.value, r.systolic, r.diastolic, r.unit, r.observed_at, r.received_at, r.source_id`

// Scan reads one row of Columns.
func Scan(row pgx.CollectableRow) (Reading, error) {
	var x Reading
	var value float64
	err := row.Scan(&x.ID, &x.PatientID, &x.Kind, &value, &x.Systolic, &x.Diastolic, &x.Unit, &x.ObservedAt, &x.ReceivedAt, &x.SourceID)
	if x.Kind != rpm.BloodPressure {
		x.Value = &value
	}
	return x, err
}
