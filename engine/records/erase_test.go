package records_test

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rpm"
)

// dump is the whole test database as pg_dump writes it (data only).
func dump(t *testing.T, w *enginetest.World) string {
	t.Helper()
	out, err := exec.Command("pg_dump", "--data-only", "--dbname="+w.Pool.Config().ConnString()).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	return string(out)
}

// erasePatientData gives the World's patient (Sam Lee) messages in both
// threads, an attachment, symptom reports (a sealed note with free text, and
// a note stored in the clear as before notes were sealed), a broadcast's
// copy (sealed under the server's key), an old and a recent reading, an
// external id, push and e2ee devices and a token; and another patient of the
// team a message and a note of their own. It returns the other patient's
// actor and thread.
func erasePatientData(t *testing.T, w *enginetest.World, eng *engine.Engine) (engine.Actor, engine.Thread) {
	t.Helper()
	ctx := context.Background()
	pat := w.PatientUser(t)
	now := time.Now()
	if _, err := w.Pool.Exec(ctx, `UPDATE organisations SET retain_readings_days = 30`); err != nil {
		t.Fatal(err)
	}
	mrn := "MRN-SAM-4471"
	if _, err := eng.UpdatePatient(ctx, w.Admin, w.Patient.ID, engine.PatientUpdate{ExternalID: &mrn}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID, Readings: []rpm.Reading{
		enginetest.BP(131, 85, now.Add(-time.Hour), "cuff-new"), enginetest.BP(133, 86, now.AddDate(0, 0, -45), "cuff-old")}}); err != nil {
		t.Fatal(err)
	}
	th := enginetest.PatientThread(t, eng, pat)
	att, err := eng.UploadAttachment(ctx, pat, th.ID, "application/pdf", testPDF)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.PostMessage(ctx, pat, th.ID, engine.NewMessage{Body: "SAM-SECRET-MESSAGE", AttachmentIDs: []uuid.UUID{att.ID}}); err != nil {
		t.Fatal(err)
	}
	staff := staffThread(t, eng, w)
	if _, err := eng.PostMessage(ctx, w.Clinician, staff.ID, engine.NewMessage{Body: "SAM-STAFF-DISCUSSION"}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.ReportSymptoms(ctx, pat, engine.NewSymptomReport{PatientID: w.Patient.ID, Note: "SAM-SECRET-NOTE",
		Symptoms: []rpm.Symptom{{Code: "other", Severity: 4, Text: "SAM-SYMPTOM-TEXT"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Pool.Exec(ctx, `INSERT INTO symptom_reports (id, patient_id, symptoms, note, reported_at)
		VALUES ($1, $2, '[{"code": "headache", "severity": 2}]', 'SAM-LEGACY-NOTE', now())`, uuid.New(), w.Patient.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Pool.Exec(ctx, `UPDATE care_team_members SET role = 'lead' WHERE user_id = $1`, w.Clinician.UserID); err != nil {
		t.Fatal(err)
	}
	bc, err := eng.Broadcast(ctx, w.Clinician, w.Patient.CareTeamID, engine.NewBroadcast{Body: "Clinic closed Monday"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.BroadcastBatch(ctx, bc.ID, 0, false); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.CreateToken(ctx, w.Admin, pat.UserID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Pool.Exec(ctx, `INSERT INTO devices (id, user_id, platform, address) VALUES ($1, $2, 'fcm', 'SAM-PUSH-TOKEN')`,
		uuid.New(), pat.UserID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Pool.Exec(ctx, `INSERT INTO e2ee_devices (id, user_id, label, hpke_public_key, signing_public_key, fingerprint, created_at)
		VALUES ($1, $2, 'SAM-PHONE-LABEL', '\x01', '\x02', '\x03', now())`, uuid.New(), pat.UserID); err != nil {
		t.Fatal(err)
	}

	other, err := eng.CreatePatient(ctx, w.Admin, engine.NewPatient{DisplayName: "Kim Park", Timezone: "UTC", CareTeamID: w.Patient.CareTeamID})
	if err != nil {
		t.Fatal(err)
	}
	ou, err := eng.CreateUser(ctx, w.Admin, engine.NewUser{Name: "Kim Park", Role: engine.RolePatient, PatientID: other.ID})
	if err != nil {
		t.Fatal(err)
	}
	kim := engine.Actor{UserID: ou.ID, Role: engine.RolePatient, PatientID: other.ID, RequestID: "test"}
	kth := enginetest.PatientThread(t, eng, kim)
	if _, err := eng.PostMessage(ctx, kim, kth.ID, engine.NewMessage{Body: "KIM-MESSAGE"}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.ReportSymptoms(ctx, kim, engine.NewSymptomReport{PatientID: other.ID, Note: "KIM-NOTE",
		Symptoms: []rpm.Symptom{{Code: "headache", Severity: 2}}}); err != nil {
		t.Fatal(err)
	}
	return kim, kth
}

// staffThread is the care team's staff-only thread about the World's patient.
func staffThread(t *testing.T, eng *engine.Engine, w *enginetest.World) engine.Thread {
	t.Helper()
	threads, _, err := eng.ListThreads(context.Background(), w.Clinician, engine.ThreadFilter{PatientID: w.Patient.ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, th := range threads {
		if th.Kind == "staff_patient" {
			return th
		}
	}
	t.Fatalf("no staff thread in %+v", threads)
	return engine.Thread{}
}

// TestErase: erasing a patient leaves none of their messages, notes,
// attachments, names or identifiers readable — in the engine, and in a
// pg_dump of the database, where the same scan found them before — while
// readings within the organisation's retention period stay, the audit chain
// verifies, and another patient's data is untouched and still opens. Only an
// admin may erase, with a reason; a second erasure conflicts.
func TestErase(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	eng := w.NewEngineWith(t, engine.Config{Keys: enginetest.Keyring(t, enginetest.NewKey(t, "k1"))})
	kim, kth := erasePatientData(t, w, eng)
	secrets := []string{"Sam Lee", "MRN-SAM-4471", "SAM-SECRET-MESSAGE", "SAM-STAFF-DISCUSSION", "SAM-SECRET-NOTE",
		"SAM-SYMPTOM-TEXT", "SAM-LEGACY-NOTE", "discharge letter", "SAM-PUSH-TOKEN", "SAM-PHONE-LABEL", "REASON-TEXT-8812"}
	before := dump(t, w)
	for _, s := range []string{"Sam Lee", "MRN-SAM-4471", "SAM-SYMPTOM-TEXT", "SAM-LEGACY-NOTE", "SAM-PUSH-TOKEN", "SAM-PHONE-LABEL"} {
		if !strings.Contains(before, s) {
			t.Fatalf("the dump before erasure lacks %q: the scan would prove nothing", s)
		}
	}
	if n := w.Count(t, `SELECT count(*) FROM messages WHERE key_id = $1`, "p:"+w.Patient.ID.String()); n != 3 {
		t.Fatalf("%d of Sam's messages under their data key, want 3 (2 posts and the report; the broadcast's copy is not)", n)
	}

	// Refused: the wrong roles, and bad input; nothing stored or audited.
	for _, a := range []engine.Actor{w.Clinician, kim, w.Device} {
		if _, err := eng.ErasePatient(ctx, a, w.Patient.ID, "asked"); !errors.Is(err, engine.ErrForbidden) {
			t.Errorf("erase by %s = %v, want forbidden", a.Role, err)
		}
	}
	for _, reason := range []string{"", "   ", strings.Repeat("x", 1001), "\xff"} {
		_, err := eng.ErasePatient(ctx, w.Admin, w.Patient.ID, reason)
		enginetest.WantFields(t, err, "reason")
	}
	if _, err := eng.ErasePatient(ctx, w.Admin, uuid.New(), "asked"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("erase of no one = %v, want not found", err)
	}
	if n := w.Count(t, `SELECT count(*) FROM audit_entries WHERE action = 'patient.erase'`) +
		w.Count(t, `SELECT count(*) FROM patients WHERE erased_at IS NOT NULL`); n != 0 {
		t.Fatalf("refused erasures left %d rows", n)
	}

	got, err := eng.ErasePatient(ctx, w.Admin, w.Patient.ID, "Patient's written request REASON-TEXT-8812")
	if err != nil {
		t.Fatal(err)
	}
	want := engine.Erasure{PatientID: w.Patient.ID, ErasedAt: got.ErasedAt, Messages: 4, Notes: 2, Attachments: 1,
		ReadingsDeleted: 1, ReadingsKept: 1, Users: 2, Tokens: 1, PushDevices: 1, E2EEDevices: 1}
	if got != want {
		t.Errorf("erasure = %+v\nwant %+v", got, want)
	}
	if _, err := eng.ErasePatient(ctx, w.Admin, w.Patient.ID, "again"); !errors.Is(err, engine.ErrConflict) {
		t.Errorf("second erasure = %v, want conflict", err)
	}

	after := dump(t, w)
	for _, s := range secrets {
		if strings.Contains(after, s) {
			t.Errorf("the dump after erasure still holds %q", s)
		}
	}
	if n := w.Count(t, `SELECT count(*) FROM patient_keys WHERE patient_id = $1`, w.Patient.ID); n != 0 {
		t.Errorf("Sam's data key survived")
	}
	if n := w.Count(t, `SELECT count(*) FROM messages m JOIN threads t ON t.id = m.thread_id
		WHERE t.patient_id = $1 AND m.key_id <> $2`, w.Patient.ID, "p:"+w.Patient.ID.String()); n != 0 {
		t.Errorf("%d of Sam's messages under a key that still exists", n)
	}

	// In the engine: nothing of Sam's opens, even with every server key.
	for _, th := range []engine.Thread{staffThread(t, eng, w)} {
		p, err := eng.ListMessages(ctx, w.Clinician, th.ID, engine.MessageFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range p.Items {
			if m.Body != "" || !strings.Contains(m.Error, "erased") {
				t.Errorf("Sam's message after erasure: body %q, error %q", m.Body, m.Error)
			}
		}
	}
	var rec sink
	if err := eng.ExportPatient(ctx, w.Admin, w.Patient.ID, &rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.rec.Messages) != 4 || len(rec.files) != 1 {
		t.Fatalf("export after erasure: %d messages, %d files", len(rec.rec.Messages), len(rec.files))
	}
	for _, m := range rec.rec.Messages {
		if m.Body != "" || m.Unreadable == "" {
			t.Errorf("exported message after erasure: body %q, unreadable %q", m.Body, m.Unreadable)
		}
	}
	for id, data := range rec.files {
		if data != nil || rec.fails[id] != "erased" {
			t.Errorf("exported attachment after erasure: %d bytes, failed %q", len(data), rec.fails[id])
		}
	}
	if rec.rec.Patient.DisplayName == "Sam Lee" || rec.rec.Patient.ExternalID != "" || len(rec.rec.Readings) != 1 {
		t.Errorf("erased patient = %+v with %d readings", rec.rec.Patient, len(rec.rec.Readings))
	}
	reports, _, err := eng.ListSymptomReports(ctx, w.Admin, engine.SymptomReportFilter{PatientID: w.Patient.ID})
	if err != nil || len(reports) != 2 || reports[0].Note != nil || reports[1].Note != nil {
		t.Fatalf("Sam's symptom reports after erasure = %+v, %v", reports, err)
	}
	if p, err := eng.GetPatient(ctx, w.Admin, w.Patient.ID); err != nil || !p.Erased || !p.Restricted {
		t.Errorf("erased patient = %+v, %v; want erased and restricted", p, err)
	}
	if _, err := eng.PostMessage(ctx, w.Clinician, staffThread(t, eng, w).ID, engine.NewMessage{Body: "more"}); !errors.Is(err, engine.ErrConflict) {
		t.Errorf("posting about an erased patient = %v, want conflict", err)
	}
	if n := w.Count(t, `SELECT count(*) FROM users WHERE patient_id = $1 AND disabled_at IS NULL`, w.Patient.ID); n != 0 {
		t.Errorf("%d of Sam's users still enabled", n)
	}

	// Kim's data is untouched.
	kr, _, err := eng.ListSymptomReports(ctx, w.Admin, engine.SymptomReportFilter{PatientID: kim.PatientID})
	if err != nil || len(kr) != 1 || kr[0].Note == nil || *kr[0].Note != "KIM-NOTE" {
		t.Fatalf("Kim's reports = %+v, %v", kr, err)
	}
	if p, err := eng.ListMessages(ctx, kim, kth.ID, engine.MessageFilter{}); err != nil || len(p.Items) != 2 ||
		p.Items[0].Body != "KIM-MESSAGE" || p.Items[1].SymptomReport == nil || p.Items[1].Body != "KIM-NOTE" {
		t.Fatalf("Kim reads her thread: %+v, %v", p.Items, err)
	}

	// The audit chain verifies, and the erasure is on it by counts only.
	if _, err := eng.SealAudit(ctx, 10000); err != nil {
		t.Fatal(err)
	}
	r, err := eng.VerifyAudit(ctx, nil)
	if err != nil || r.Break != nil || r.Unsealed != 0 {
		t.Fatalf("audit verify = %+v, %v", r, err)
	}
	var detail []byte
	if err := w.Pool.QueryRow(ctx, `SELECT detail::text FROM audit_entries WHERE action = 'patient.erase'`).Scan(&detail); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(detail, []byte(`"reason_sha256"`)) || bytes.Contains(detail, []byte("REASON")) {
		t.Errorf("erase audit detail = %s", detail)
	}
}
