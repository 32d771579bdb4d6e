package records_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rpm"
)

// sink keeps what an export hands it.
type sink struct {
	rec   engine.PatientRecord
	files map[uuid.UUID][]byte
	fails map[uuid.UUID]string
	order []string
}

func (s *sink) Record(r engine.PatientRecord) error {
	s.rec, s.order = r, append(s.order, "record")
	return nil
}

func (s *sink) Attachment(a engine.RecordAttachment, data []byte) error {
	if s.files == nil {
		s.files, s.fails = map[uuid.UUID][]byte{}, map[uuid.UUID]string{}
	}
	s.files[a.ID], s.fails[a.ID], s.order = data, a.Failed, append(s.order, "file")
	return nil
}

var testPDF = []byte("%PDF-1.7\ndischarge letter of Sam Lee\n%%EOF\n")

// TestExport: an admin's export holds the patient, their care team, every
// reading, alert, message (bodies opened, the staff-only discussion
// included), attachment, schedule, decided dose and the reads of their
// data, and is audited once with its counts; the patient's own export
// leaves the staff-only discussion out; anyone else gets nothing.
func TestExport(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	eng := w.NewEngineWith(t, engine.Config{Keys: enginetest.Keyring(t, enginetest.NewKey(t, "k1"))})
	pat := w.PatientUser(t)
	now := time.Now()
	if _, err := eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID, Readings: []rpm.Reading{
		enginetest.BP(182, 95, now.Add(-time.Hour), "cuff-1"), enginetest.SpO2(96, now.Add(-30*time.Minute))}}); err != nil {
		t.Fatal(err)
	}
	enginetest.RaiseCritical(t, w, eng, now.Add(-20*time.Minute))
	th := enginetest.PatientThread(t, eng, pat)
	att, err := eng.UploadAttachment(ctx, pat, th.ID, "application/pdf", testPDF)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.PostMessage(ctx, pat, th.ID, engine.NewMessage{Body: "My letter", AttachmentIDs: []uuid.UUID{att.ID}}); err != nil {
		t.Fatal(err)
	}
	var staff uuid.UUID
	if err := w.Pool.QueryRow(ctx, `SELECT id FROM threads WHERE patient_id = $1 AND kind = 'staff_patient'`, w.Patient.ID).Scan(&staff); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.PostMessage(ctx, w.Clinician, staff, engine.NewMessage{Body: "Call her GP tomorrow"}); err != nil {
		t.Fatal(err)
	}
	s, err := eng.CreateSchedule(ctx, w.Admin, w.Patient.ID, rpm.Schedule{Type: rpm.MedicationSchedule, Medication: "Furosemide",
		Dose: "40 mg", Times: []string{"08:00", "20:00"}, StartDate: now.Add(-48 * time.Hour).Format(time.DateOnly)})
	if err != nil {
		t.Fatal(err)
	}
	doses, err := eng.ListDoses(ctx, pat, engine.DoseFilter{PatientID: w.Patient.ID})
	if err != nil || len(doses) == 0 {
		t.Fatalf("doses %v, %v", doses, err)
	}
	// The first dose falls due (doses are made ahead of time).
	if _, err := w.Pool.Exec(ctx, `UPDATE doses SET due_at = now() - interval '1 hour' WHERE id = $1`, doses[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.ConfirmDose(ctx, pat, doses[0].ID, engine.DoseConfirmation{Status: rpm.DoseTaken}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.GetPatient(ctx, w.Clinician, w.Patient.ID); err != nil { // a read the export lists
		t.Fatal(err)
	}

	var got sink
	if err := eng.ExportPatient(ctx, w.Admin, w.Patient.ID, &got); err != nil {
		t.Fatal(err)
	}
	r := got.rec
	if r.Patient.ID != w.Patient.ID || r.Patient.DisplayName != w.Patient.DisplayName || len(r.CareTeam.Members) == 0 {
		t.Errorf("patient %+v, team %+v", r.Patient, r.CareTeam)
	}
	if len(r.Readings) < 2 || len(r.Alerts) == 0 || len(r.Schedules) != 1 || r.Schedules[0].ID.String() != s.ID ||
		len(r.Doses) != 1 || r.Doses[0].Status != "taken" {
		t.Errorf("readings %d, alerts %d, schedules %+v, doses %+v", len(r.Readings), len(r.Alerts), r.Schedules, r.Doses)
	}
	bodies := map[string]string{}
	for _, m := range r.Messages {
		bodies[m.Body] = m.ThreadKind
	}
	if bodies["My letter"] != "patient" || bodies["Call her GP tomorrow"] != "staff_patient" || !r.StaffThreads {
		t.Errorf("messages %v", bodies)
	}
	if !bytes.Equal(got.files[att.ID], testPDF) || got.order[0] != "record" {
		t.Errorf("files %v, order %v", got.fails, got.order)
	}
	read := false
	for _, e := range r.Accesses {
		read = read || (e.Action == "patient.read" && e.ActorID != nil && *e.ActorID == w.Clinician.UserID)
	}
	if !read {
		t.Errorf("the clinician's read is not among the accesses %+v", r.Accesses)
	}
	if n := w.Count(t, `SELECT count(*) FROM audit_entries WHERE action = 'patient.export' AND patient_id = $1
		AND (detail->>'readings')::int = $2 AND (detail->>'attachments')::int = 1 AND (detail->>'staff_threads')::bool`,
		w.Patient.ID, len(r.Readings)); n != 1 {
		t.Errorf("%d patient.export audit entries with the counts, want 1", n)
	}

	var own sink
	if err := eng.ExportPatient(ctx, pat, w.Patient.ID, &own); err != nil {
		t.Fatal(err)
	}
	for _, m := range own.rec.Messages {
		if m.ThreadKind != "patient" {
			t.Errorf("the patient's own export holds a %s message", m.ThreadKind)
		}
	}
	if len(own.rec.Messages) == 0 || own.rec.StaffThreads {
		t.Errorf("the patient's own export: %d messages, staff threads %v", len(own.rec.Messages), own.rec.StaffThreads)
	}

	for _, c := range []struct {
		who  engine.Actor
		id   uuid.UUID
		want error
	}{
		{w.Clinician, w.Patient.ID, engine.ErrForbidden},
		{w.Device, w.Patient.ID, engine.ErrForbidden},
		{engine.Actor{Role: engine.RolePatient, UserID: uuid.New(), PatientID: uuid.New()}, w.Patient.ID, engine.ErrNotFound},
		{w.Admin, uuid.New(), engine.ErrNotFound},
	} {
		var none sink
		if err := eng.ExportPatient(ctx, c.who, c.id, &none); !errors.Is(err, c.want) || none.order != nil {
			t.Errorf("%s export of %s: %v (sink %v), want %v", c.who.Role, c.id, err, none.order, c.want)
		}
	}
}
