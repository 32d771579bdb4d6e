package messaging

import (
	"context"
	"fmt"
	"mime"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/e2ee"
	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/internal/check"
	"github.com/tendhealth/tend/rpm"
)

// Encrypted attachments of end-to-end encrypted threads (docs/e2ee.md,
// "Attachments"): the sender's device encrypts the file, uploads the
// ciphertext (stored and checked like any attachment, its SHA-256 over the
// ciphertext) and lists its id in a version 2 envelope, whose sealed content
// holds the file's key, name and type.

const (
	// EncryptedType is an end-to-end encrypted thread's attachment: the
	// file's ciphertext, encrypted by the sender's device (docs/e2ee.md).
	EncryptedType = e2ee.EncryptedType
)

// ErrPlainAttachment: a plain file was uploaded to an end-to-end encrypted
// thread.
var (
	// ErrPlainAttachment: a plain file was uploaded to an end-to-end
	// encrypted thread.
	ErrPlainAttachment = fmt.Errorf("the thread is end-to-end encrypted: encrypt the file on the device and upload "+
		"the ciphertext with Content-Type %s (docs/e2ee.md): %w", e2ee.EncryptedType, access.ErrConflict)
)

// uploadType is the stored type of an upload declared as declared: an
// encrypted attachment's (EncryptedType, its bytes opaque, at most the larger
// limit), or the sniffed type of a plain file, within the limit of its kind.
func (ms *Service) uploadType(declared string, data []byte) (string, error) {
	if mt, _, err := mime.ParseMediaType(declared); err == nil && strings.EqualFold(mt, EncryptedType) {
		if len(data) < e2ee.FileOverhead {
			return "", check.FieldError("body", fmt.Sprintf("is shorter than an encrypted file (%d bytes of nonce and tag)", e2ee.FileOverhead))
		}
		return EncryptedType, nil
	}
	typ, err := CheckAttachmentType(declared, data)
	if err != nil {
		return "", err
	}
	limit := ms.maxAttachment
	if IsMedia(typ) {
		limit = ms.maxMedia
	}
	if int64(len(data)) > limit {
		return "", fmt.Errorf("%w: a %s file is at most %d bytes", ErrTooLarge, typ, limit)
	}
	return typ, nil
}

// checkEncryptedUpload keeps each thread's attachments to its kind: an
// end-to-end encrypted thread takes encrypted attachments only (a plain file
// would put its bytes where the server can read them), and a plain thread
// takes plain files only (its messages show what the server checked).
func checkEncryptedUpload(t Thread, typ string) error {
	switch {
	case t.Encrypted && typ != EncryptedType:
		return ErrPlainAttachment
	case !t.Encrypted && typ == EncryptedType:
		return fmt.Errorf("the thread is not end-to-end encrypted: upload the file itself, not an encrypted one (%s): %w",
			EncryptedType, access.ErrConflict)
	}
	return nil
}

// checkEnvelopeAttachments checks a version 2 envelope's attachment list
// before it is posted: each id must name an encrypted attachment the actor
// uploaded to the thread (a *rpm.ValidationError naming
// envelope.attachments[i] otherwise).
func (ms *Service) checkEnvelopeAttachments(ctx context.Context, a access.Actor, threadID uuid.UUID, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	rows, err := ms.pool.Query(ctx, envelopeAttachmentsSQL, threadID, ids, a.Role, a.PatientID, a.UserID)
	if err != nil {
		return fmt.Errorf("check attachments: %w", err)
	}
	type found struct {
		uploader *uuid.UUID
		typ      string
	}
	byID := map[string]found{}
	var id uuid.UUID
	var f found
	if _, err := pgx.ForEachRow(rows, []any{&id, &f.uploader, &f.typ}, func() error { byID[id.String()] = f; return nil }); err != nil {
		return fmt.Errorf("check attachments: %w", err)
	}
	var v rpm.ValidationError
	for i, id := range ids {
		field := fmt.Sprintf("envelope.attachments[%d]", i)
		f, ok := byID[id]
		switch {
		case !ok:
			v.Add(field, "no such attachment in this thread")
		case f.uploader == nil || *f.uploader != a.UserID:
			v.Add(field, "was uploaded by someone else: a message references the sender's own attachments only")
		case f.typ != EncryptedType:
			v.Add(field, "is not an encrypted attachment (encrypt the file and upload it as "+EncryptedType+")")
		}
	}
	return v.OrNil()
}

// recordFiles fills in the ciphertexts of the exported envelopes'
// attachments, each of the envelope's own thread, and returns how many.
func (ms *Service) recordFiles(ctx context.Context, tx pgx.Tx, out []RecordEnvelope) (int, error) {
	var ids []string
	for _, r := range out {
		if r.Envelope != nil {
			ids = append(ids, r.Envelope.Attachments...)
		}
	}
	if len(ids) == 0 {
		return 0, nil
	}
	rows, err := tx.Query(ctx, recordAttachmentsSQL, ids)
	if err != nil {
		return 0, fmt.Errorf("record attachments: %w", err)
	}
	atts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Attachment, error) {
		var a Attachment
		err := r.Scan(&a.ID, &a.ThreadID, &a.Size, &a.SHA256)
		return a, err
	})
	if err != nil {
		return 0, fmt.Errorf("record attachments: %w", err)
	}
	byID := make(map[string]Attachment, len(atts))
	for _, a := range atts {
		byID[a.ID.String()] = a
	}
	n := 0
	for i := range out {
		if out[i].Envelope == nil {
			continue
		}
		for _, id := range out[i].Envelope.Attachments {
			att, ok := byID[id]
			if !ok || att.ThreadID != out[i].ThreadID {
				continue
			}
			data, failed, err := ms.OpenStored(ctx, tx, att)
			if err != nil {
				return 0, err
			}
			if failed == "" {
				if out[i].Files == nil {
					out[i].Files = map[string][]byte{}
				}
				out[i].Files[id], n = data, n+1
			}
		}
	}
	return n, nil
}
