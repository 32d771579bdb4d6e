package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/alerting"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/check"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/scope"
	"github.com/tendhealth/tend/engine/internal/thread"
	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/rules"
)

// Limits of a symptom report.
const (
	// MaxReportSymptoms bounds the symptoms of one report.
	MaxReportSymptoms = 20
	// MaxReportNoteLen bounds a report's note.
	MaxReportNoteLen = 2000
	// MaxIdempotencyKeyLen bounds an Idempotency-Key.
	MaxIdempotencyKeyLen = 200
)

// ReportedSymptom is one symptom of a report, as stored and sent.
type ReportedSymptom struct {
	Code     rpm.SymptomCode `json:"code"`
	Severity int             `json:"severity"`
	Text     string          `json:"text,omitempty"`
}

// NewSymptomReport is the input of ReportSymptoms.
type NewSymptomReport struct {
	PatientID uuid.UUID
	Symptoms  []rpm.Symptom
	Note      string
	// IdempotencyKey, when set, makes a retry of the same report (same
	// patient and key) return the stored report instead of a new one.
	IdempotencyKey string
}

// SymptomReportResult is the outcome of ReportSymptoms.
type SymptomReportResult struct {
	ID uuid.UUID `json:"id"`
	// Status is "created", or "duplicate" when the idempotency key was seen
	// before (ID is then the stored report's, and nothing is raised again).
	Status     string              `json:"status"`
	ReportedAt time.Time           `json:"reported_at"`
	Alerts     []alerting.AlertRef `json:"alerts"`
	// Retakes lists the report's requests to measure: symptom rules that ask
	// the patient to take a reading of kind before retake_by (reading_id is
	// the report's id). They page no one.
	Retakes []alerting.RetakeRef `json:"retakes,omitempty"`
}

// SymptomReport is a stored symptom report.
type SymptomReport struct {
	ID         uuid.UUID         `json:"id"`
	PatientID  uuid.UUID         `json:"patient_id"`
	Symptoms   []ReportedSymptom `json:"symptoms"`
	Note       *string           `json:"note,omitempty"`
	ReportedAt time.Time         `json:"reported_at"`
	ReportedBy *uuid.UUID        `json:"reported_by,omitempty"`
	// AlertIDs are the alerts the report raised or updated.
	AlertIDs []uuid.UUID `json:"alert_ids"`
}

// ReportSymptoms stores a symptom report, evaluates the symptom rules and
// raises or updates the alerts they find — in one transaction, so that a
// report of chest pain and the page to the care team commit together.
// Patients (their own) and clinicians (their teams' patients) may report.
// Invalid input is a *rpm.ValidationError naming symptoms[i].field.
func (ig *Service) ReportSymptoms(ctx context.Context, a access.Actor, in NewSymptomReport) (SymptomReportResult, error) {
	if err := access.Require(a, access.RolePatient, access.RoleClinician); err != nil {
		return SymptomReportResult{}, err
	}
	if err := in.Validate(); err != nil {
		return SymptomReportResult{}, err
	}
	if ig.keys == nil {
		return SymptomReportResult{}, thread.ErrNoKeys
	}
	var res SymptomReportResult
	err := pg.InTx(ctx, ig.pool, func(tx pgx.Tx) error {
		scope, err := scope.OfPatient(ctx, tx, a, in.PatientID)
		if err != nil {
			return err
		}
		// The patient's ingest lock: alerts of one patient are raised in turn.
		if err := pg.LockPatients(ctx, tx, in.PatientID); err != nil {
			return fmt.Errorf("symptom report: %w", err)
		}
		if in.IdempotencyKey != "" {
			err := tx.QueryRow(ctx, symptomReportByKeySQL, in.PatientID, in.IdempotencyKey).Scan(&res.ID, &res.ReportedAt)
			if err == nil {
				res.Status = "duplicate"
				return nil
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("symptom report: idempotency: %w", err)
			}
		}
		now := ig.now().Truncate(time.Microsecond)
		res = SymptomReportResult{ID: pg.NewID(), Status: "created", ReportedAt: now}
		symptoms := make([]ReportedSymptom, len(in.Symptoms))
		for i, s := range in.Symptoms {
			symptoms[i] = ReportedSymptom{Code: s.Code, Severity: s.Severity, Text: s.Text}
		}
		var key *string
		pk, noteKey, noteSealed, err := ig.sealNote(ctx, tx, in, res.ID, now)
		if err != nil {
			return err
		}
		if in.IdempotencyKey != "" {
			key = &in.IdempotencyKey
		}
		if _, err := tx.Exec(ctx, insertSymptomReportSQL, res.ID, in.PatientID, symptoms, noteKey, noteSealed, now,
			pg.NilIfZero(a.UserID), key); err != nil {
			return fmt.Errorf("insert symptom report: %w", err)
		}
		if err := ig.postReport(ctx, tx, a, pk, res.ID, symptoms, in.Note, now); err != nil {
			return err
		}
		if err := ig.audit.Write(ctx, tx, a, audit.Entry{Action: "symptom_report.create", PatientID: in.PatientID, ObjectType: "symptom_report",
			ObjectID: res.ID.String(), Detail: map[string]any{"count": len(symptoms)}}); err != nil {
			return err
		}
		res.Alerts, res.Retakes, err = ig.judgeReport(ctx, tx, a, scope, in, res.ID, now)
		return err
	})
	if err != nil {
		return SymptomReportResult{}, err
	}
	if res.Alerts == nil {
		res.Alerts = []alerting.AlertRef{}
	}
	for _, r := range res.Alerts {
		if r.Status == "opened" {
			ig.metrics.Alerts.WithLabelValues(string(r.Urgency)).Inc()
		}
	}
	return res, nil
}

// judgeReport evaluates the symptom rules on a stored report, in its
// transaction: findings that page raise or update alerts (linked to the
// report), findings that ask the patient to measure become requests to
// measure (alerting.AskToMeasure) and open nothing.
func (ig *Service) judgeReport(ctx context.Context, tx pgx.Tx, a access.Actor, sc scope.Patient, in NewSymptomReport,
	reportID uuid.UUID, now time.Time) ([]alerting.AlertRef, []alerting.RetakeRef, error) {
	if sc.Restricted {
		return nil, nil, nil // processing restricted: the report is stored, not evaluated
	}
	params, err := alerting.PatientParams(ctx, tx, in.PatientID)
	if err != nil {
		return nil, nil, err
	}
	found := ig.pack(sc.OrgID).EvaluateSymptoms(rules.SymptomInput{ReportID: reportID.String(), Symptoms: in.Symptoms,
		Programs: sc.Programs, Params: params, Now: now})
	var paging, asks []rules.Finding
	for _, f := range found.Findings {
		if f.Ask {
			asks = append(asks, f)
		} else {
			paging = append(paging, f)
		}
	}
	retakes, err := ig.alerting.AskToMeasure(ctx, tx, in.PatientID, reportID, now, asks)
	if err != nil || len(paging) == 0 {
		return nil, retakes, err
	}
	// A report is not a reading: the hit has no reading id, and the
	// findings are recorded with a NULL reading_id and linked to the
	// report through symptom_report_alerts.
	alerts, err := ig.alerting.Raise(ctx, tx, a, in.PatientID, sc, []alerting.Hit{{
		Reading:  alerting.Stored{Measurement: rpm.Measurement{ObservedAt: now}},
		Findings: paging,
	}})
	if err != nil {
		return nil, nil, err
	}
	ids := make([]uuid.UUID, len(alerts))
	for i, r := range alerts {
		ids[i] = r.ID
	}
	if _, err := tx.Exec(ctx, linkReportAlertsSQL, reportID, ids); err != nil {
		return nil, nil, fmt.Errorf("link symptom report alerts: %w", err)
	}
	return alerts, retakes, nil
}

// Validate checks a report's symptoms (rpm.ValidateSymptom), note and key:
// a *rpm.ValidationError naming symptoms[i].field, or nil.
func (in NewSymptomReport) Validate() error {
	var v rpm.ValidationError
	switch {
	case len(in.Symptoms) == 0:
		v.Add("symptoms", "must contain at least one symptom")
	case len(in.Symptoms) > MaxReportSymptoms:
		v.Add("symptoms", fmt.Sprintf("at most %d symptoms per report", MaxReportSymptoms))
	}
	seen := map[rpm.SymptomCode]bool{}
	for i, s := range in.Symptoms {
		var sv *rpm.ValidationError
		if err := rpm.ValidateSymptom(s); errors.As(err, &sv) {
			v.Fields = append(v.Fields, sv.Prefix(fmt.Sprintf("symptoms[%d].", i)).Fields...)
		}
		if s.Code != "" && s.Code != rpm.OtherSymptom && seen[s.Code] {
			v.Add(fmt.Sprintf("symptoms[%d].code", i), "is reported twice")
		}
		seen[s.Code] = true
	}
	if len(in.Note) > MaxReportNoteLen {
		v.Add("note", fmt.Sprintf("is longer than %d characters", MaxReportNoteLen))
	}
	if len(in.IdempotencyKey) > MaxIdempotencyKeyLen {
		v.Add("Idempotency-Key", fmt.Sprintf("is longer than %d characters", MaxIdempotencyKeyLen))
	}
	return v.OrNil()
}

// SymptomReportFilter selects a patient's symptom reports, newest first.
type SymptomReportFilter struct {
	PatientID uuid.UUID
	Cursor    string
	Limit     int
}

// ListSymptomReports returns a page of a patient's symptom reports, newest
// first, and the next page's cursor ("" at the end). Anyone who may see the
// patient may list them, except devices.
func (ig *Service) ListSymptomReports(ctx context.Context, a access.Actor, f SymptomReportFilter) ([]SymptomReport, string, error) {
	if err := access.Require(a, access.RoleAdmin, access.RoleClinician, access.RolePatient); err != nil {
		return nil, "", err
	}
	cur := pg.NewestCursor()
	if f.Cursor != "" {
		if err := pg.DecodeCursor(f.Cursor, &cur); err != nil {
			return nil, "", check.FieldError("cursor", "is not a cursor returned by this endpoint")
		}
	}
	limit := pg.ClampLimit(f.Limit)
	var out []SymptomReport
	err := pg.InTx(ctx, ig.pool, func(tx pgx.Tx) error {
		if _, err := scope.OfPatient(ctx, tx, a, f.PatientID); err != nil {
			return err
		}
		o := thread.NewOpener(ig.keys, tx)
		if err := o.Load(ctx, f.PatientID); err != nil {
			return fmt.Errorf("list symptom reports: %w", err)
		}
		rows, err := tx.Query(ctx, listSymptomReportsSQL, f.PatientID, cur.At, cur.ID, limit+1)
		if err != nil {
			return fmt.Errorf("list symptom reports: %w", err)
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (SymptomReport, error) {
			var x SymptomReport
			var keyID *string
			var sealed []byte
			if err := r.Scan(&x.ID, &x.PatientID, &x.Symptoms, &x.Note, &keyID, &sealed, &x.ReportedAt, &x.ReportedBy, &x.AlertIDs); err != nil {
				return x, err
			}
			if keyID != nil {
				note, err := o.Open(ctx, *keyID, sealed, thread.NoteAAD(x.PatientID, x.ID))
				if errors.Is(err, thread.ErrErased) {
					return x, nil // erased with the patient's data: no note
				}
				if err != nil {
					// A clear error, never garbage: the report's id and key only.
					return x, fmt.Errorf("symptom report %s: note: %w", x.ID, err)
				}
				n := string(note)
				x.Note = &n
			}
			return x, nil
		})
		if err != nil {
			return fmt.Errorf("list symptom reports: %w", err)
		}
		return ig.audit.Write(ctx, tx, a, audit.Entry{Action: "symptom_report.list", PatientID: f.PatientID, ObjectType: "symptom_report",
			Detail: map[string]any{"count": min(len(out), limit)}})
	})
	if err != nil {
		return nil, "", err
	}
	out, next := pg.Page(out, limit, func(last SymptomReport) string {
		return pg.EncodeCursor(pg.TimeCursor{At: last.ReportedAt, ID: last.ID})
	})
	return out, next, nil
}

// reportMessage is the sealed content of a symptom report's message.
type reportMessage struct {
	ID       uuid.UUID         `json:"id"`
	Symptoms []ReportedSymptom `json:"symptoms"`
	Note     string            `json:"note,omitempty"`
}

// sealNote returns the patient's data key (made on first need;
// access.ErrConflict once they were erased) and the report's note sealed
// under it, like a message body, bound to the patient and report (nil when
// there is no note).
func (ig *Service) sealNote(ctx context.Context, tx pgx.Tx, in NewSymptomReport, id uuid.UUID, now time.Time) (*thread.PatientKey, *string, []byte, error) {
	pk, err := thread.EnsureKey(ctx, tx, ig.keys, now, in.PatientID)
	if errors.Is(err, thread.ErrErased) {
		return nil, nil, nil, fmt.Errorf("symptom report: %w: %w", err, access.ErrConflict)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("symptom report: %w", err)
	}
	if in.Note == "" {
		return pk, nil, nil, nil
	}
	k, ct := pk.Seal([]byte(in.Note), thread.NoteAAD(in.PatientID, id))
	return pk, &k, ct, nil
}

// postReport appends the report as a structured message to each of the
// patient's threads with a care team, in the report's transaction, with an
// audit entry per message. It is not pushed: the alerts it raises page.
func (ig *Service) postReport(ctx context.Context, tx pgx.Tx, a access.Actor, key *thread.PatientKey, report uuid.UUID,
	symptoms []ReportedSymptom, note string, now time.Time) error {
	patient := key.Patient
	rows, err := tx.Query(ctx, patientThreadsSQL, patient)
	if err != nil {
		return fmt.Errorf("symptom report threads: %w", err)
	}
	threads, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return fmt.Errorf("symptom report threads: %w", err)
	}
	body, err := json.Marshal(reportMessage{ID: report, Symptoms: symptoms, Note: note})
	if err != nil {
		return fmt.Errorf("symptom report message: %w", err)
	}
	for _, th := range threads {
		ap, err := thread.Append(ctx, tx, ig.keys, now, thread.New{ThreadID: th, SenderID: a.UserID, SenderRole: string(a.Role),
			Kind: thread.SymptomReport, Body: body, SymptomReportID: report, Key: key})
		if err != nil {
			return err
		}
		if err := ig.audit.Write(ctx, tx, a, audit.Entry{Action: "message.create", PatientID: patient, ObjectType: "thread",
			ObjectID: th.String(), Detail: map[string]any{"message_ids": []uuid.UUID{ap.ID}, "symptom_report_id": report}}); err != nil {
			return err
		}
	}
	return nil
}
