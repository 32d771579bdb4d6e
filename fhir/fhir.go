// Package fhir maps Tend's vital-sign readings, patients, alerts and
// messages to and from FHIR R4 resources (the vital-signs profile,
// Communication), and builds the OperationOutcome, Bundle and
// CapabilityStatement resources of Tend's FHIR interface.
//
// It lives beside rpm rather than inside it: rpm is the clinical vocabulary
// every package shares, while FHIR is one wire format of it (the JSON API is
// another). Like rpm it is pure — no network, database, clock or logging —
// so the mapping is table-tested without a server; the api package does the
// HTTP and the engine the storage. The R4 types come from
// github.com/samply/golang-fhir-models, which validates nothing: every rule
// Tend relies on is checked here.
package fhir

import (
	"encoding/base32"
	"encoding/binary"
	"time"

	"github.com/google/uuid"
	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/tendhealth/tend/rpm"
)

// Code systems and profiles Tend reads and writes.
const (
	LOINC             = "http://loinc.org"
	UCUM              = "http://unitsofmeasure.org"
	VitalSignsProfile = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
	CategorySystem    = "http://terminology.hl7.org/CodeSystem/observation-category"
	// ExternalIDSystem names a patient's external_id in Patient.identifier.
	// On input any system is accepted: the value is matched against
	// external_id.
	ExternalIDSystem = "https://tend.health/fhir/external-id"
	// RuleSystem codes the rule that raised an alert (Flag.code).
	RuleSystem = "https://tend.health/fhir/rule"
	// UrgencySystem codes an alert's urgency (Flag.category).
	UrgencySystem = "https://tend.health/fhir/urgency"
	// LOINCBloodPressureOld is the older blood pressure panel code that many
	// devices still send; it is accepted on input, 85354-9 is written.
	LOINCBloodPressureOld = "55284-4"
)

// loincDisplay is the LOINC display of each kind's code as written.
var loincDisplay = map[rpm.Kind]string{
	rpm.HeartRate:       "Heart rate",
	rpm.BloodPressure:   "Blood pressure panel with all children optional",
	rpm.SpO2:            "Oxygen saturation in Arterial blood by Pulse oximetry",
	rpm.BodyWeight:      "Body weight",
	rpm.BodyTemperature: "Body temperature",
	rpm.RespiratoryRate: "Respiratory rate",
	rpm.BloodGlucose:    "Glucose [Mass/volume] in Blood",
}

// kindOf maps every LOINC code accepted on input to its kind.
var kindOf = func() map[string]rpm.Kind {
	m := map[string]rpm.Kind{LOINCBloodPressureOld: rpm.BloodPressure}
	for _, k := range rpm.Kinds() {
		s, _ := rpm.SpecOf(k)
		m[s.LOINC] = k
		for _, c := range s.AltLOINC {
			m[c] = k
		}
	}
	return m
}()

// KindOfLOINC returns the kind a LOINC code stands for.
func KindOfLOINC(code string) (rpm.Kind, bool) { k, ok := kindOf[code]; return k, ok }

// Mapping is one row of the kind ↔ LOINC ↔ UCUM table.
type Mapping struct {
	Kind      rpm.Kind
	LOINC     string   // written
	Accepted  []string // also accepted on input
	Display   string
	Unit      string // canonical UCUM unit, written
	AlsoUnits []string
}

// Mappings returns the table, in the stable order of rpm.Kinds.
func Mappings() []Mapping {
	var out []Mapping
	for _, k := range rpm.Kinds() {
		s, _ := rpm.SpecOf(k)
		m := Mapping{Kind: k, LOINC: s.LOINC, Accepted: s.AltLOINC, Display: loincDisplay[k], Unit: s.Unit, AlsoUnits: s.Units()[1:]}
		if k == rpm.BloodPressure {
			m.Accepted = append(m.Accepted, LOINCBloodPressureOld)
		}
		out = append(out, m)
	}
	return out
}

// idEncoding writes Observation ids with FHIR's id alphabet ([a-z0-9] here).
var idEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// ObservationID is the FHIR id of a stored reading. Readings are stored by
// patient and observation time, so the id carries both with the reading's
// own id (40 bytes, 64 characters: FHIR's maximum) and a read is one index
// lookup in one partition.
func ObservationID(patient, reading uuid.UUID, observedAt time.Time) string {
	var b [40]byte
	copy(b[:16], patient[:])
	copy(b[16:32], reading[:])
	binary.BigEndian.PutUint64(b[32:], uint64(observedAt.UnixMicro()))
	return idEncoding.EncodeToString(b[:])
}

// ParseObservationID reverses ObservationID.
func ParseObservationID(id string) (patient, reading uuid.UUID, observedAt time.Time, ok bool) {
	if len(id) != 64 {
		return
	}
	b, err := idEncoding.DecodeString(id)
	if err != nil || len(b) != 40 {
		return
	}
	copy(patient[:], b[:16])
	copy(reading[:], b[16:32])
	return patient, reading, time.UnixMicro(int64(binary.BigEndian.Uint64(b[32:]))).UTC(), true
}

func ptr[T any](v T) *T { return &v }

// instant formats a time as a FHIR instant.
func instant(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.999999Z07:00") }

func meta(lastUpdated time.Time, profiles ...string) *r4.Meta {
	return &r4.Meta{LastUpdated: ptr(instant(lastUpdated)), Profile: profiles}
}
