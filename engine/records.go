package engine

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/messaging"
	"github.com/tendhealth/tend/engine/records"
)

// ExportPatient hands everything Tend holds about a patient to sink: the
// record (patient, care team, readings, alerts, messages, reminders and
// decided doses, who read their data), then each attachment's bytes. Admins
// export any patient, a patient their own record (docs/data-rights.md).
func (e *Engine) ExportPatient(ctx context.Context, a Actor, patientID uuid.UUID, sink RecordSink) error {
	return e.records.Export(ctx, a, patientID, sink)
}

// ErasePatient erases a patient's personal data where no retention duty
// applies: their data key is destroyed (their messages, notes and
// attachments open nowhere), they are pseudonymised, their accounts,
// tokens and devices end, readings past the organisation's retention period
// are deleted, and their processing is restricted. Admins of the patient's
// organisation; a reason is required; a second erasure is ErrConflict
// (docs/data-rights.md).
func (e *Engine) ErasePatient(ctx context.Context, a Actor, patientID uuid.UUID, reason string) (Erasure, error) {
	return e.records.Erase(ctx, a, patientID, reason)
}

// openForExport lets records open an attachment through the messaging use
// case, which owns the attachment store.
func (e *Engine) openForExport(ctx context.Context, tx pgx.Tx, a records.Attachment) ([]byte, string, error) {
	return e.messageService.OpenStored(ctx, tx, messaging.Attachment{ID: a.ID, ThreadID: a.ThreadID,
		ContentType: a.ContentType, Size: a.Size, SHA256: a.SHA256})
}
