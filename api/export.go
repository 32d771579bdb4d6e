package api

import (
	"archive/zip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/fhir"
	"github.com/tendhealth/tend/rpm"
)

// A patient's export is a zip archive:
//
//	patient-bundle.json   a FHIR R4 collection Bundle of everything about the patient
//	attachments/{id}.ext  each attachment's bytes, as uploaded (the Communications point here)
//	manifest.json         what the archive holds, each file's SHA-256, and any file that failed its check
const (
	exportBundleName   = "patient-bundle.json"
	exportManifestName = "manifest.json"
)

// exportPatient answers GET /v1/patients/{id}/export. Until the record is
// read, an error is problem+json; once the archive has started, an error
// can only cut the response short (the client's zip reader then fails),
// and it is logged.
func (s *Server) exportPatient(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	started := false
	start := func() io.Writer {
		started = true
		w.Header().Set("Content-Type", "application/zip")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="patient-%s.zip"`, id))
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		return w
	}
	err = WritePatientExport(r.Context(), s.eng, actor(r), id, s.publicBase(r)+fhirBase, start)
	switch {
	case err == nil:
	case !started:
		s.writeError(w, r, err)
	default:
		s.log.ErrorContext(r.Context(), "patient export cut short", "patient_id", id, "error", err)
		panic(http.ErrAbortHandler)
	}
}

// Exporter is the engine call an export needs.
type Exporter interface {
	ExportPatient(ctx context.Context, a engine.Actor, patientID uuid.UUID, sink engine.RecordSink) error
}

// WritePatientExport writes the zip archive of a patient's record to the
// writer start returns; start is called once the record has been read (and
// the access checked), so that an error before it can still be answered.
// fhirBase is the absolute URL the Bundle's full URLs start with.
func WritePatientExport(ctx context.Context, eng Exporter, a engine.Actor, patientID uuid.UUID, fhirBase string, start func() io.Writer) error {
	z := &exportZip{start: start, base: fhirBase}
	if err := eng.ExportPatient(ctx, a, patientID, z); err != nil {
		return err
	}
	return z.close()
}

// exportZip is the RecordSink that writes the archive.
type exportZip struct {
	start    func() io.Writer
	base     string
	zw       *zip.Writer
	manifest exportManifest
}

type exportManifest struct {
	PatientID  uuid.UUID      `json:"patient_id"`
	ExportedAt time.Time      `json:"exported_at"`
	Bundle     string         `json:"bundle"`
	Counts     map[string]int `json:"counts"`
	Files      []exportFile   `json:"files"`
}

type exportFile struct {
	Path        string    `json:"path,omitempty"`
	ID          uuid.UUID `json:"attachment_id"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"`
	// Failed says why the file is not in the archive: its stored bytes
	// are missing, do not open, or do not match their SHA-256.
	Failed string `json:"failed,omitempty"`
}

func (z *exportZip) Record(rec engine.PatientRecord) error {
	bundle, counts, err := exportBundle(rec, z.base)
	if err != nil {
		return err
	}
	z.manifest = exportManifest{PatientID: rec.Patient.ID, ExportedAt: rec.ExportedAt, Bundle: exportBundleName, Counts: counts,
		Files: []exportFile{}}
	z.zw = zip.NewWriter(z.start())
	return z.file(exportBundleName, rec.ExportedAt, zip.Deflate, bundle)
}

func (z *exportZip) Attachment(a engine.RecordAttachment, data []byte) error {
	f := exportFile{ID: a.ID, ContentType: a.ContentType, Size: a.Size, SHA256: a.SHA256, Failed: a.Failed}
	if a.Failed == "" {
		f.Path = exportAttachmentPath(a.ID, a.ContentType)
		// Images, PDFs and media are compressed already.
		if err := z.file(f.Path, a.CreatedAt, zip.Store, data); err != nil {
			return err
		}
	}
	z.manifest.Files = append(z.manifest.Files, f)
	return nil
}

func (z *exportZip) file(name string, modified time.Time, method uint16, data []byte) error {
	w, err := z.zw.CreateHeader(&zip.FileHeader{Name: name, Method: method, Modified: modified.UTC()})
	if err != nil {
		return fmt.Errorf("export %s: %w", name, err)
	}
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("export %s: %w", name, err)
	}
	return nil
}

func (z *exportZip) close() error {
	m, err := json.MarshalIndent(z.manifest, "", "  ")
	if err != nil {
		return fmt.Errorf("export manifest: %w", err)
	}
	if err := z.file(exportManifestName, z.manifest.ExportedAt, zip.Deflate, m); err != nil {
		return err
	}
	return z.zw.Close()
}

// exportAttachmentPath is where an attachment's bytes are in the archive,
// with the extension of its (sniffed) type.
func exportAttachmentPath(id uuid.UUID, contentType string) string {
	ext := map[string]string{"image/jpeg": ".jpg", "image/png": ".png", "image/heic": ".heic", "application/pdf": ".pdf",
		"audio/mp4": ".m4a", "audio/ogg": ".ogg", "audio/mpeg": ".mp3", "video/mp4": ".mp4", "video/webm": ".webm"}[contentType]
	return "attachments/" + id.String() + ext
}

// exportBundle is the record as a FHIR collection Bundle, and how many
// resources of each type it holds.
func exportBundle(rec engine.PatientRecord, base string) ([]byte, map[string]int, error) {
	var resources []json.RawMessage
	var urls []string
	counts := map[string]int{}
	add := func(typ, id string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("export %s/%s: %w", typ, id, err)
		}
		resources, urls = append(resources, b), append(urls, base+"/"+typ+"/"+id)
		counts[typ]++
		return nil
	}
	for _, e := range exportEntries(rec) {
		if err := add(e.typ, e.id, e.resource); err != nil {
			return nil, nil, err
		}
	}
	b, err := json.Marshal(fhir.Collection(resources, urls, rec.ExportedAt))
	if err != nil {
		return nil, nil, fmt.Errorf("export bundle: %w", err)
	}
	return b, counts, nil
}

type exportEntry struct {
	typ, id  string
	resource any
}

// exportEntries maps the record to FHIR resources: Patient, CareTeam,
// Observations, Flags, Communications, MedicationRequests and
// ServiceRequests (reminders), MedicationAdministrations (decided doses) and
// AuditEvents (who read the patient's data).
func exportEntries(rec engine.PatientRecord) []exportEntry {
	p, pid := rec.Patient, rec.Patient.ID
	out := []exportEntry{{"Patient", pid.String(), fhir.PatientResource(fhir.Patient{ID: pid, DisplayName: p.DisplayName,
		ExternalID: p.ExternalID, CreatedAt: p.CreatedAt})}}
	members := make([]fhir.TeamMember, len(rec.CareTeam.Members))
	for i, m := range rec.CareTeam.Members {
		members[i] = fhir.TeamMember{UserID: m.UserID, Name: m.Name, Role: m.Role}
	}
	out = append(out, exportEntry{"CareTeam", rec.CareTeam.ID.String(),
		fhir.CareTeamOf(rec.CareTeam.ID, rec.CareTeam.Name, pid, members, rec.ExportedAt)})
	for _, x := range rec.Readings {
		o := fhir.Observation(toFHIRReading(x))
		out = append(out, exportEntry{"Observation", *o.Id, o})
	}
	for _, a := range rec.Alerts {
		out = append(out, exportEntry{"Flag", a.ID.String(), fhir.Flag(fhir.Alert{ID: a.ID, PatientID: pid, RuleID: a.RuleID,
			Urgency: a.Urgency, Status: a.Status, Title: a.Title, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt, ResolvedAt: a.ResolvedAt})})
	}
	for _, m := range rec.Messages {
		out = append(out, exportEntry{"Communication", m.ID.String(), exportCommunication(pid, m)})
	}
	return append(out, exportReminders(rec)...)
}

// exportCommunication is a message of the export: its attachments point
// into the archive; a staff-only message goes to the care team.
func exportCommunication(patient uuid.UUID, m engine.RecordMessage) fhir.Communication {
	fm := fhir.Message{ID: m.ID, PatientID: patient, CareTeamID: m.CareTeamID, SenderID: m.SenderID, SenderRole: m.SenderRole,
		Kind: m.Kind, Body: m.Body, Unreadable: m.Unreadable, Urgent: m.Urgent, SentAt: m.SentAt}
	paths := map[uuid.UUID]string{}
	for _, a := range m.Attachments {
		fm.Attachments = append(fm.Attachments, fhir.MessageAttachment{ID: a.ID, ContentType: a.ContentType, Size: a.Size, SHA256: a.SHA256})
		paths[a.ID] = exportAttachmentPath(a.ID, a.ContentType)
	}
	c := fhir.CommunicationOf(fm, func(id uuid.UUID) string { return paths[id] })
	if m.ThreadKind == "staff_patient" {
		c.StaffOnly(m.CareTeamID)
	}
	return c
}

// exportReminders maps schedules and decided doses (of medication
// schedules; a measurement's outcome is its reading).
func exportReminders(rec engine.PatientRecord) []exportEntry {
	var out []exportEntry
	meds := map[uuid.UUID]string{}
	for _, s := range rec.Schedules {
		r := fhir.ReminderOf(fhir.Reminder{ID: s.ID, PatientID: rec.Patient.ID, Schedule: s.Spec, Active: !s.Paused && !s.Deleted,
			TimeZone: rec.Patient.TimeZone, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt})
		typ := "ServiceRequest"
		if s.Spec.Type == rpm.MedicationSchedule {
			typ, meds[s.ID] = "MedicationRequest", s.Spec.Medication
		}
		out = append(out, exportEntry{typ, s.ID.String(), r})
	}
	for _, d := range rec.Doses {
		med, ok := meds[d.ScheduleID]
		if !ok {
			continue
		}
		at := d.DueAt
		switch {
		case d.TakenAt != nil:
			at = *d.TakenAt
		case d.DecidedAt != nil:
			at = *d.DecidedAt
		}
		out = append(out, exportEntry{"MedicationAdministration", d.ID.String(), fhir.DoseOf(fhir.Dose{ID: d.ID, ScheduleID: d.ScheduleID,
			PatientID: rec.Patient.ID, Medication: med, Status: d.Status, DueAt: d.DueAt, At: at})})
	}
	for _, e := range rec.Accesses {
		ev := fhir.AuditEventOf(fhir.Access{ID: e.ID, At: e.At, ActorID: e.ActorID, ActorRole: e.ActorRole, Action: e.Action,
			PatientID: rec.Patient.ID, ObjectType: e.ObjectType, ObjectID: deref(e.ObjectID), Outcome: e.Outcome})
		out = append(out, exportEntry{"AuditEvent", *ev.Id, ev})
	}
	return out
}
