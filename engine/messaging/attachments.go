package messaging

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/check"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/thread"
	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/sealed"
)

// DefaultAttachmentMaxBytes is the default largest attachment: 10 MiB.
const DefaultAttachmentMaxBytes = 10 << 20

// The content types an attachment may have, as sniffed from its bytes.
const (
	TypeJPEG = "image/jpeg"
	TypePNG  = "image/png"
	TypeHEIC = "image/heic"
	TypePDF  = "application/pdf"
)

// Errors of attachments.
var (
	// ErrUnsupportedType: the bytes are not a JPEG, PNG, HEIC or PDF file,
	// or not the type the uploader declared.
	ErrUnsupportedType = errors.New("unsupported attachment type")
	// ErrTooLarge: the attachment is larger than the configured maximum.
	ErrTooLarge = errors.New("attachment too large")
	// ErrIntegrity: the stored attachment does not decrypt or its SHA-256 is
	// not the one recorded at upload. Its bytes are never returned.
	ErrIntegrity = errors.New("stored attachment failed its integrity check")
)

// TypeError says why an upload's type is refused (wraps ErrUnsupportedType).
type TypeError struct{ Reason string }

func (e *TypeError) Error() string { return "unsupported attachment type: " + e.Reason }

// Unwrap makes errors.Is(err, ErrUnsupportedType) hold.
func (e *TypeError) Unwrap() error { return ErrUnsupportedType }

// Attachment is a file uploaded to a thread, as its participants see it.
type Attachment struct {
	ID          uuid.UUID  `json:"id"`
	ThreadID    uuid.UUID  `json:"thread_id"`
	UploaderID  *uuid.UUID `json:"uploader_id"`
	ContentType string     `json:"content_type"`
	Size        int64      `json:"size"`
	// SHA256 is the hex SHA-256 of the file's bytes, also written to the
	// upload's audit entry: a download is refused unless it matches.
	SHA256 string `json:"sha256"`
	// DurationMS is an audio or video file's length in milliseconds, as its
	// container states it; null for other files and where it does not.
	DurationMS *int64    `json:"duration_ms"`
	CreatedAt  time.Time `json:"created_at"`
}

// AttachmentInfo is what a listed message shows of each of its attachments.
type AttachmentInfo struct {
	ID          uuid.UUID `json:"id"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"`
	DurationMS  *int64    `json:"duration_ms"`
}

// Blob is an attachment's sealed bytes as an AttachmentStore holds them.
type Blob struct {
	AttachmentID uuid.UUID
	KeyID        string
	Data         []byte
}

// AttachmentStore keeps attachments' sealed bytes. Postgres (PostgresStore)
// is the default; another store (an object store) implements the same five
// calls. tx is the transaction that writes the attachment's row and audit
// entry: a Postgres store writes in it, so the bytes commit with them.
type AttachmentStore interface {
	// Put stores a new blob.
	Put(ctx context.Context, tx pgx.Tx, b Blob) error
	// Get returns the blob of an attachment (pgx.ErrNoRows when missing).
	Get(ctx context.Context, tx pgx.Tx, id uuid.UUID) (Blob, error)
	// Stale returns, in attachment id order after after, at most limit
	// blobs sealed under a server key other than current (not under a
	// patient's data key, which rotation re-wraps instead), for key rotation.
	Stale(ctx context.Context, tx pgx.Tx, current string, after uuid.UUID, limit int) ([]Blob, error)
	// Replace stores a re-sealed blob in place of the old one.
	Replace(ctx context.Context, tx pgx.Tx, b Blob) error
	// Delete removes the blobs of attachments ids (retention; missing ones
	// are no error). tx then deletes the attachments' rows: a store outside
	// Postgres deletes at once, and a rolled-back batch is retried.
	Delete(ctx context.Context, tx pgx.Tx, ids []uuid.UUID) error
}

// PostgresStore is the default AttachmentStore: the attachment_blobs table.
type PostgresStore struct{}

// Put implements AttachmentStore.
func (PostgresStore) Put(ctx context.Context, tx pgx.Tx, b Blob) error {
	if _, err := tx.Exec(ctx, putBlobSQL, b.AttachmentID, b.KeyID, b.Data); err != nil {
		return fmt.Errorf("store attachment: %w", err)
	}
	return nil
}

// Get implements AttachmentStore.
func (PostgresStore) Get(ctx context.Context, tx pgx.Tx, id uuid.UUID) (Blob, error) {
	b := Blob{AttachmentID: id}
	if err := tx.QueryRow(ctx, getBlobSQL, id).Scan(&b.KeyID, &b.Data); err != nil {
		return Blob{}, fmt.Errorf("load attachment: %w", err)
	}
	return b, nil
}

// Stale implements AttachmentStore.
func (PostgresStore) Stale(ctx context.Context, tx pgx.Tx, current string, after uuid.UUID, limit int) ([]Blob, error) {
	rows, err := tx.Query(ctx, staleBlobsSQL, current, after, limit)
	if err != nil {
		return nil, fmt.Errorf("stale attachments: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Blob, error) {
		var b Blob
		err := r.Scan(&b.AttachmentID, &b.KeyID, &b.Data)
		return b, err
	})
}

// Replace implements AttachmentStore.
func (PostgresStore) Replace(ctx context.Context, tx pgx.Tx, b Blob) error {
	if _, err := tx.Exec(ctx, replaceBlobSQL, b.AttachmentID, b.KeyID, b.Data); err != nil {
		return fmt.Errorf("re-seal attachment: %w", err)
	}
	return nil
}

// Delete implements AttachmentStore.
func (PostgresStore) Delete(ctx context.Context, tx pgx.Tx, ids []uuid.UUID) error {
	if _, err := tx.Exec(ctx, deleteBlobsSQL, ids); err != nil {
		return fmt.Errorf("delete attachments: %w", err)
	}
	return nil
}

// DeleteBlobs removes the stored bytes of attachments ids in tx, through the
// configured store, before retention deletes their rows.
func (ms *Service) DeleteBlobs(ctx context.Context, tx pgx.Tx, ids []uuid.UUID) error {
	return ms.store.Delete(ctx, tx, ids)
}

// AttachmentAAD is the associated data of attachment id of thread: its
// sealed bytes open only in that place.
func AttachmentAAD(threadID, id uuid.UUID) []byte {
	return sealed.AAD("attachment", threadID.String(), id.String())
}

// Sniff returns the content type of data from its bytes: JPEG, PNG, HEIC,
// PDF, or one of the audio and video types (M4A, Ogg Opus, MP3, MP4, WebM),
// or "" for anything else.
func Sniff(data []byte) string {
	switch {
	case len(data) >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF:
		return TypeJPEG
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return TypePNG
	case bytes.HasPrefix(data, []byte("%PDF-")):
		return TypePDF
	case isHEIC(data):
		return TypeHEIC
	}
	return sniffMedia(data)
}

// heicBrands are the ISO BMFF brands of HEIC/HEIF images coded with HEVC.
var heicBrands = map[string]bool{"heic": true, "heix": true, "heim": true, "heis": true, "hevc": true, "hevx": true,
	"hevm": true, "hevs": true}

// isHEIC reads an ISO BMFF ftyp box: a HEIC major brand, or the generic
// image brands (mif1, msf1) with a HEIC brand among the compatible ones (an
// AVIF, also mif1, is not HEIC).
func isHEIC(data []byte) bool {
	if len(data) < 16 || string(data[4:8]) != "ftyp" {
		return false
	}
	size := int(data[0])<<24 | int(data[1])<<16 | int(data[2])<<8 | int(data[3])
	if size < 16 || size > len(data) || size > 4096 {
		return false
	}
	major := string(data[8:12])
	if heicBrands[major] {
		return true
	}
	if major != "mif1" && major != "msf1" {
		return false
	}
	for i := 16; i+4 <= size; i += 4 {
		if heicBrands[string(data[i:i+4])] {
			return true
		}
	}
	return false
}

// declaredTypes are the declared content types each sniffed type accepts.
var declaredTypes = map[string][]string{
	TypeJPEG: {"image/jpeg"},
	TypePNG:  {"image/png"},
	TypeHEIC: {"image/heic", "image/heif"},
	TypePDF:  {"application/pdf"},
	TypeM4A:  {"audio/mp4", "audio/m4a", "audio/x-m4a", "audio/aac"},
	TypeOgg:  {"audio/ogg", "audio/opus"},
	TypeMP3:  {"audio/mpeg", "audio/mp3"},
	TypeMP4:  {"video/mp4"},
	TypeWebM: {"video/webm", "audio/webm"},
}

// acceptedTypes names the accepted files in errors.
const acceptedTypes = "JPEG, PNG, HEIC, PDF, M4A, Ogg Opus, MP3, MP4 or WebM"

// CheckAttachmentType sniffs data and checks it against the declared
// content type: it returns the stored type, or a *TypeError.
func CheckAttachmentType(declared string, data []byte) (string, error) {
	got := Sniff(data)
	if got == "" {
		return "", &TypeError{Reason: "the file is not a " + acceptedTypes + " file"}
	}
	mt, _, err := mime.ParseMediaType(declared)
	if declared == "" || err != nil {
		return "", &TypeError{Reason: "declare the file's type in Content-Type (image/jpeg, image/png, image/heic, " +
			"application/pdf, audio/mp4, audio/ogg, audio/mpeg, video/mp4 or video/webm)"}
	}
	for _, ok := range declaredTypes[got] {
		if strings.EqualFold(mt, ok) {
			return got, nil
		}
	}
	return "", &TypeError{Reason: fmt.Sprintf("the file is a %s, not the declared type", got)}
}

// AttachmentMaxBytes is the largest attachment accepted of any type: the
// larger of the file and media limits.
func (ms *Service) AttachmentMaxBytes() int64 { return max(ms.maxAttachment, ms.maxMedia) }

// AttachmentLimits returns the largest image or document and the largest
// audio or video file accepted.
func (ms *Service) AttachmentLimits() (files, media int64) { return ms.maxAttachment, ms.maxMedia }

// UploadAttachment stores a file in a thread the actor takes part in,
// sealed, and returns it with its SHA-256. The file's type is sniffed from
// its bytes and must be one of the accepted types and agree with declared
// (*TypeError otherwise); ErrTooLarge beyond the limit of its kind (media or
// other). An audio or video file's duration is read from its container. The row,
// the sealed bytes (when the store is Postgres) and the audit entry, which
// holds the SHA-256, commit together.
func (ms *Service) UploadAttachment(ctx context.Context, a access.Actor, threadID uuid.UUID, declared string, data []byte) (Attachment, error) {
	if int64(len(data)) > ms.AttachmentMaxBytes() {
		return Attachment{}, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, ms.AttachmentMaxBytes())
	}
	if len(data) == 0 {
		return Attachment{}, check.FieldError("body", "is empty: send the file's bytes")
	}
	typ, err := ms.uploadType(declared, data)
	if err != nil {
		return Attachment{}, err
	}
	if ms.keys == nil {
		return Attachment{}, thread.ErrNoKeys
	}
	sum := sha256.Sum256(data)
	uploader := a.UserID
	att := Attachment{ID: pg.NewID(), ThreadID: threadID, UploaderID: &uploader, ContentType: typ, Size: int64(len(data)),
		SHA256: hex.EncodeToString(sum[:]), DurationMS: MediaDuration(typ, data), CreatedAt: ms.now().Truncate(time.Microsecond)}
	if a.UserID == uuid.Nil {
		att.UploaderID = nil
	}
	err = pg.InTx(ctx, ms.pool, func(tx pgx.Tx) error {
		t, err := loadThread(ctx, tx, a, threadID)
		if err != nil {
			return err
		}
		if err := checkEncryptedUpload(t, typ); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, insertAttachmentSQL, att.ID, att.ThreadID, att.UploaderID, att.ContentType, att.Size,
			att.SHA256, att.CreatedAt, att.DurationMS); err != nil {
			return fmt.Errorf("insert attachment: %w", err)
		}
		key, err := ms.patientKey(ctx, tx, t.PatientID, att.CreatedAt)
		if err != nil {
			return err
		}
		keyID, ct := ms.keys.Seal(data, AttachmentAAD(threadID, att.ID))
		if key != nil {
			keyID, ct = key.Seal(data, AttachmentAAD(threadID, att.ID))
		}
		if err := ms.store.Put(ctx, tx, Blob{AttachmentID: att.ID, KeyID: keyID, Data: ct}); err != nil {
			return err
		}
		return ms.audit.Write(ctx, tx, a, audit.Entry{Action: "attachment.create", PatientID: pg.Deref(t.PatientID),
			ObjectType: "attachment", ObjectID: att.ID.String(), Detail: map[string]any{"thread_id": threadID,
				"sha256": att.SHA256, "size": att.Size, "content_type": att.ContentType}})
	})
	if err != nil {
		return Attachment{}, err
	}
	if ms.metrics != nil {
		ms.metrics.AttachmentsUploaded.Inc()
	}
	return att, nil
}

// GetAttachment returns an attachment of a thread the actor takes part in,
// with its bytes. The bytes are returned only when they decrypt under their
// thread and id and their SHA-256 is the one recorded at upload; otherwise
// ErrIntegrity, logged (ids only) and audited as attachment.integrity_failed.
func (ms *Service) GetAttachment(ctx context.Context, a access.Actor, id uuid.UUID) (Attachment, []byte, error) {
	var att Attachment
	var data []byte
	var failed string
	err := pg.InTx(ctx, ms.pool, func(tx pgx.Tx) error {
		var patient *uuid.UUID
		err := tx.QueryRow(ctx, attachmentSQL, id, a.Role, a.PatientID, a.UserID).Scan(&att.ID, &att.ThreadID, &att.UploaderID,
			&att.ContentType, &att.Size, &att.SHA256, &att.CreatedAt, &patient, &att.DurationMS)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("attachment: %w", access.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("attachment: %w", err)
		}
		entry := audit.Entry{Action: "attachment.read", PatientID: pg.Deref(patient), ObjectType: "attachment",
			ObjectID: id.String(), Detail: map[string]any{"thread_id": att.ThreadID, "sha256": att.SHA256}}
		data, failed, err = ms.openAttachment(ctx, tx, att)
		if err != nil {
			return err
		}
		if failed != "" {
			data = nil
			entry.Action, entry.Detail["failure"] = "attachment.integrity_failed", failed
		}
		return ms.audit.Write(ctx, tx, a, entry)
	})
	if err != nil {
		return Attachment{}, nil, err
	}
	if failed != "" {
		ms.log.ErrorContext(ctx, "attachment failed its integrity check", "attachment_id", id, "thread_id", att.ThreadID,
			"failure", failed)
		if ms.metrics != nil {
			ms.metrics.AttachmentIntegrity.Inc()
		}
		return att, nil, fmt.Errorf("attachment %s: %w", id, ErrIntegrity)
	}
	return att, data, nil
}

// OpenStored opens an attachment's bytes in tx for a patient's export
// (engine/records): what openAttachment does, without the reader's scope,
// which the export has checked. failed names what did not hold.
func (ms *Service) OpenStored(ctx context.Context, tx pgx.Tx, att Attachment) (data []byte, failed string, err error) {
	data, failed, err = ms.openAttachment(ctx, tx, att)
	if failed != "" {
		ms.log.ErrorContext(ctx, "attachment failed its integrity check", "attachment_id", att.ID, "thread_id", att.ThreadID,
			"failure", failed)
		if ms.metrics != nil {
			ms.metrics.AttachmentIntegrity.Inc()
		}
	}
	return data, failed, err
}

// openAttachment loads and opens an attachment's bytes and checks them
// against its row: failed names what did not hold ("" when all did).
func (ms *Service) openAttachment(ctx context.Context, tx pgx.Tx, att Attachment) (data []byte, failed string, err error) {
	if ms.keys == nil {
		return nil, "", thread.ErrNoKeys
	}
	b, err := ms.store.Get(ctx, tx, att.ID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "missing", nil
	}
	if err != nil {
		return nil, "", err
	}
	pt, err := thread.NewOpener(ms.keys, tx).Open(ctx, b.KeyID, b.Data, AttachmentAAD(att.ThreadID, att.ID))
	switch {
	case errors.Is(err, thread.ErrErased):
		return nil, "erased", nil
	case errors.Is(err, sealed.ErrUnknownKey):
		return nil, "unknown_key", nil
	case err != nil:
		return nil, "does_not_decrypt", nil
	}
	sum := sha256.Sum256(pt)
	want, err := hex.DecodeString(att.SHA256)
	if err != nil || int64(len(pt)) != att.Size || subtle.ConstantTimeCompare(sum[:], want) != 1 {
		return nil, "sha256_mismatch", nil
	}
	return pt, "", nil
}

// checkAttachments is CheckAttachments when attachments are stored: every
// id must name an attachment of the thread, once.
func (ms *Service) checkAttachments(ctx context.Context, tx pgx.Tx, threadID uuid.UUID, ids []uuid.UUID) error {
	if len(ids) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, threadAttachmentsSQL, threadID, ids)
	if err != nil {
		return fmt.Errorf("check attachments: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return fmt.Errorf("check attachments: %w", err)
	}
	ok := map[uuid.UUID]bool{}
	for _, id := range found {
		ok[id] = true
	}
	seen := map[uuid.UUID]int{}
	var v rpm.ValidationError
	for i, id := range ids {
		field := fmt.Sprintf("attachment_ids[%d]", i)
		if j, dup := seen[id]; dup {
			v.Add(field, fmt.Sprintf("repeats attachment_ids[%d]", j))
			continue
		}
		seen[id] = i
		if !ok[id] {
			v.Add(field, "no such attachment in this thread")
		}
	}
	return v.OrNil()
}

// describeAttachments fills in each message's attachments (id, type, size,
// SHA-256), in the order of its attachment ids.
func (ms *Service) describeAttachments(ctx context.Context, tx pgx.Tx, msgs []Message) error {
	var ids []uuid.UUID
	for i := range msgs {
		msgs[i].Attachments = []AttachmentInfo{}
		ids = append(ids, msgs[i].AttachmentIDs...)
	}
	if len(ids) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, attachmentInfoSQL, ids)
	if err != nil {
		return fmt.Errorf("message attachments: %w", err)
	}
	infos, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AttachmentInfo, error) {
		var x AttachmentInfo
		err := r.Scan(&x.ID, &x.ContentType, &x.Size, &x.SHA256, &x.DurationMS)
		return x, err
	})
	if err != nil {
		return fmt.Errorf("message attachments: %w", err)
	}
	byID := make(map[uuid.UUID]AttachmentInfo, len(infos))
	for _, x := range infos {
		byID[x.ID] = x
	}
	for i := range msgs {
		for _, id := range msgs[i].AttachmentIDs {
			if x, ok := byID[id]; ok {
				msgs[i].Attachments = append(msgs[i].Attachments, x)
			}
		}
	}
	return nil
}

// Rotation is what RotateAttachmentKeys did.
type Rotation struct {
	// Attachments and Broadcasts count the records re-sealed under the
	// current key.
	Attachments int `json:"attachments"`
	Broadcasts  int `json:"broadcasts"`
	// Unreadable counts records that did not open (unknown key, or altered):
	// left as they are and logged by id.
	Unreadable int `json:"unreadable"`
}

// rotateBatch bounds the attachments re-sealed per transaction: each may be
// AttachmentMaxBytes large.
const rotateBatch = 8

// RotateAttachmentKeys re-seals, under the keyring's current key, every
// attachment and broadcast body sealed under an older one (tend keys
// rotate), a few per transaction. Run it after putting a new key first;
// when it reports nothing unreadable, the old keys can go.
func (ms *Service) RotateAttachmentKeys(ctx context.Context) (Rotation, error) {
	var out Rotation
	if ms.keys == nil {
		return out, thread.ErrNoKeys
	}
	current := ms.keys.Current()
	after := uuid.Nil
	for {
		n := 0
		err := pg.InTx(ctx, ms.pool, func(tx pgx.Tx) error {
			blobs, err := ms.store.Stale(ctx, tx, current, after, rotateBatch)
			if err != nil {
				return err
			}
			n = len(blobs)
			if n == 0 {
				return nil
			}
			ids := make([]uuid.UUID, n)
			for i, b := range blobs {
				ids[i] = b.AttachmentID
			}
			after = ids[n-1]
			rows, err := tx.Query(ctx, attachmentThreadsSQL, ids)
			if err != nil {
				return fmt.Errorf("rotate attachments: %w", err)
			}
			threads := map[uuid.UUID]uuid.UUID{}
			var id, th uuid.UUID
			if _, err := pgx.ForEachRow(rows, []any{&id, &th}, func() error { threads[id] = th; return nil }); err != nil {
				return fmt.Errorf("rotate attachments: %w", err)
			}
			for _, b := range blobs {
				aad := AttachmentAAD(threads[b.AttachmentID], b.AttachmentID)
				pt, err := ms.keys.Open(b.KeyID, b.Data, aad)
				if err != nil {
					out.Unreadable++
					ms.log.ErrorContext(ctx, "attachment does not decrypt: left under its old key", "attachment_id", b.AttachmentID,
						"key_id", b.KeyID)
					continue
				}
				keyID, ct := ms.keys.Seal(pt, aad)
				if err := ms.store.Replace(ctx, tx, Blob{AttachmentID: b.AttachmentID, KeyID: keyID, Data: ct}); err != nil {
					return err
				}
				out.Attachments++
			}
			return nil
		})
		if err != nil {
			return out, err
		}
		if n < rotateBatch {
			break
		}
	}
	n, unreadable, err := ms.rotateBroadcasts(ctx, current)
	out.Broadcasts, out.Unreadable = n, out.Unreadable+unreadable
	return out, err
}
