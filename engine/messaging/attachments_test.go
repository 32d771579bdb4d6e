package messaging_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/sealed"
)

// A tiny PNG and PDF (the sniffing is tested in full through the API).
var (
	testPNG = append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte("ankle"), 40)...)
	testPDF = []byte("%PDF-1.7\ndischarge letter of Sam Lee\n%%EOF\n")
)

// TestAttachmentTamper: a stored attachment whose ciphertext is changed, or
// swapped with another attachment's, or whose recorded SHA-256 is changed,
// is refused with ErrIntegrity and never returned; the refusal is audited
// and logged by id only. The upload's audit entry holds the SHA-256.
func TestAttachmentTamper(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	var logs enginetest.SyncBuffer
	keyText := enginetest.NewKey(t, "k1")
	eng := w.NewEngineWith(t, engine.Config{Keys: enginetest.Keyring(t, keyText), Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	pat := w.PatientUser(t)
	th := enginetest.PatientThread(t, eng, pat)
	a, err := eng.UploadAttachment(ctx, pat, th.ID, "image/png", testPNG)
	if err != nil {
		t.Fatal(err)
	}
	b, err := eng.UploadAttachment(ctx, pat, th.ID, "application/pdf", testPDF)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(testPNG)
	if a.SHA256 != hex.EncodeToString(sum[:]) || a.Size != int64(len(testPNG)) || a.ContentType != "image/png" {
		t.Fatalf("attachment = %+v", a)
	}
	var audited string
	if err := w.Pool.QueryRow(ctx, `SELECT detail->>'sha256' FROM audit_entries WHERE action = 'attachment.create' AND object_id = $1`,
		a.ID.String()).Scan(&audited); err != nil || audited != a.SHA256 {
		t.Fatalf("audit entry sha256 = %q, %v; want %s", audited, err, a.SHA256)
	}
	if n := w.Count(t, `SELECT count(*) FROM attachment_blobs WHERE position($1 in data) > 0`, []byte("discharge letter")); n != 0 {
		t.Fatal("an attachment is stored in clear")
	}
	if _, got, err := eng.GetAttachment(ctx, w.Clinician, a.ID); err != nil || !bytes.Equal(got, testPNG) {
		t.Fatalf("untouched download: %v", err)
	}
	refused := func(what string, id uuid.UUID) {
		t.Helper()
		att, got, err := eng.GetAttachment(ctx, w.Clinician, id)
		if !errors.Is(err, engine.ErrIntegrity) || got != nil {
			t.Errorf("%s: %d bytes, %v; want ErrIntegrity and no bytes", what, len(got), err)
		}
		if err != nil && (strings.Contains(err.Error(), "ankle") || strings.Contains(err.Error(), "Sam Lee")) {
			t.Errorf("%s: the error carries the file: %v", what, err)
		}
		_ = att
	}
	// 1. One bit of A's ciphertext flipped.
	if _, err := w.Pool.Exec(ctx, `UPDATE attachment_blobs SET data = set_byte(data, 40, get_byte(data, 40) # 1) WHERE attachment_id = $1`, a.ID); err != nil {
		t.Fatal(err)
	}
	refused("a flipped bit", a.ID)
	if _, err := w.Pool.Exec(ctx, `UPDATE attachment_blobs SET data = set_byte(data, 40, get_byte(data, 40) # 1) WHERE attachment_id = $1`, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := eng.GetAttachment(ctx, w.Clinician, a.ID); err != nil {
		t.Fatalf("restored: %v", err)
	}
	// 2. A's and B's ciphertexts swapped: each opens only in its own place.
	if _, err := w.Pool.Exec(ctx, `UPDATE attachment_blobs x SET data = y.data, key_id = y.key_id FROM attachment_blobs y
		WHERE x.attachment_id IN ($1, $2) AND y.attachment_id IN ($1, $2) AND x.attachment_id <> y.attachment_id`, a.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	refused("A holding B's ciphertext", a.ID)
	refused("B holding A's ciphertext", b.ID)
	// 3. A file re-sealed by someone holding the key, with other content:
	// the recorded SHA-256 no longer matches.
	keyID, ct := enginetest.Keyring(t, keyText).Seal([]byte("\x89PNG\r\n\x1a\nforged"), sealed.AAD("attachment", th.ID.String(), a.ID.String()))
	if _, err := w.Pool.Exec(ctx, `UPDATE attachment_blobs SET key_id = $2, data = $3 WHERE attachment_id = $1`, a.ID, keyID, ct); err != nil {
		t.Fatal(err)
	}
	refused("content replaced under the key", a.ID)
	// 4. The blob deleted.
	if _, err := w.Pool.Exec(ctx, `DELETE FROM attachment_blobs WHERE attachment_id = $1`, b.ID); err != nil {
		t.Fatal(err)
	}
	refused("a missing blob", b.ID)

	if n := w.Count(t, `SELECT count(*) FROM audit_entries WHERE action = 'attachment.integrity_failed'`); n != 5 {
		t.Errorf("%d integrity failures audited, want 5 (one per refusal)", n)
	}
	out := logs.String()
	if !strings.Contains(out, a.ID.String()) || strings.Contains(out, "ankle") || strings.Contains(out, "Sam Lee") ||
		strings.Contains(out, "forged") {
		t.Errorf("logs must name the attachment and nothing of its content:\n%s", out)
	}
}

// TestAttachmentKeyRotation: attachments (of a team's channel: a patient's
// are under their data key) and broadcast bodies sealed under an old key
// are re-sealed under the new current key; afterwards the old key can go
// and everything still opens; a second rotation finds nothing.
func TestAttachmentKeyRotation(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	oldKey, newKeyText := enginetest.NewKey(t, "k1"), enginetest.NewKey(t, "k2")
	before := w.NewEngineWith(t, engine.Config{Keys: enginetest.Keyring(t, oldKey)})
	th := teamThread(t, before, w.Clinician)
	var ids []uuid.UUID
	for range 11 { // more than one rotation batch
		a, err := before.UploadAttachment(ctx, w.Clinician, th.ID, "application/pdf", testPDF)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	makeLead(t, w)
	bc, err := before.Broadcast(ctx, w.Clinician, w.Patient.CareTeamID, engine.NewBroadcast{Body: "Closed on Monday"})
	if err != nil {
		t.Fatal(err)
	}
	rotating := w.NewEngineWith(t, engine.Config{Keys: enginetest.Keyring(t, newKeyText, oldKey)})
	rot, err := rotating.RotateAttachmentKeys(ctx)
	if err != nil || rot.Attachments != 11 || rot.Broadcasts != 1 || rot.Unreadable != 0 {
		t.Fatalf("rotation = %+v, %v; want 11 attachments and 1 broadcast", rot, err)
	}
	if n := w.Count(t, `SELECT count(*) FROM attachment_blobs WHERE key_id <> 'k2'`) + w.Count(t, `SELECT count(*) FROM broadcasts WHERE key_id <> 'k2'`); n != 0 {
		t.Fatalf("%d records still under the old key", n)
	}
	again, err := rotating.RotateAttachmentKeys(ctx)
	if err != nil || again != (engine.KeyRotation{}) {
		t.Fatalf("second rotation = %+v, %v; want nothing", again, err)
	}
	after := w.NewEngineWith(t, engine.Config{Keys: enginetest.Keyring(t, newKeyText), BroadcastBatch: 5})
	for _, id := range ids {
		if _, got, err := after.GetAttachment(ctx, w.Clinician, id); err != nil || !bytes.Equal(got, testPDF) {
			t.Fatalf("attachment %s under the new key only: %v", id, err)
		}
	}
	if res, err := after.BroadcastBatch(ctx, bc.ID, 0, false); err != nil || res.Sent != 1 {
		t.Fatalf("broadcast after rotation = %+v, %v", res, err)
	}
	// Without the key, nothing opens and nothing leaks.
	lost := w.NewEngineWith(t, engine.Config{Keys: enginetest.Keyring(t, oldKey)})
	if _, got, err := lost.GetAttachment(ctx, w.Clinician, ids[0]); !errors.Is(err, engine.ErrIntegrity) || got != nil {
		t.Fatalf("under a keyring without its key: %v", err)
	}
}

// TestMessageAttachments: a message carries attachments of its own thread
// only (422 naming attachment_ids[i] otherwise), and listed messages show
// each attachment's id, type, size and SHA-256.
func TestMessageAttachments(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	pat := w.PatientUser(t)
	th := enginetest.PatientThread(t, w.Eng, pat)
	photo, err := w.Eng.UploadAttachment(ctx, pat, th.ID, "image/png", testPNG)
	if err != nil {
		t.Fatal(err)
	}
	var staff uuid.UUID
	if err := w.Pool.QueryRow(ctx, `SELECT id FROM threads WHERE patient_id = $1 AND kind = 'staff_patient'`, w.Patient.ID).Scan(&staff); err != nil {
		t.Fatal(err)
	}
	elsewhere, err := w.Eng.UploadAttachment(ctx, w.Clinician, staff, "application/pdf", testPDF)
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Eng.PostMessage(ctx, pat, th.ID, engine.NewMessage{Body: "My ankle",
		AttachmentIDs: []uuid.UUID{photo.ID, elsewhere.ID, uuid.New(), photo.ID}})
	var v *rpm.ValidationError
	if !errors.As(err, &v) {
		t.Fatalf("post with foreign attachments: %v", err)
	}
	fields := map[string]bool{}
	for _, f := range v.Fields {
		fields[f.Field] = true
	}
	if !fields["attachment_ids[1]"] || !fields["attachment_ids[2]"] || !fields["attachment_ids[3]"] || fields["attachment_ids[0]"] {
		t.Fatalf("fields = %+v", v.Fields)
	}
	post := engine.NewMessage{Body: "My ankle", AttachmentIDs: []uuid.UUID{photo.ID}, ClientID: "phone:7"}
	posted, err := w.Eng.PostMessage(ctx, pat, th.ID, post)
	if err != nil {
		t.Fatal(err)
	}
	want := []engine.AttachmentInfo{{ID: photo.ID, ContentType: "image/png", Size: int64(len(testPNG)), SHA256: photo.SHA256}}
	if len(posted.Attachments) != 1 || posted.Attachments[0] != want[0] {
		t.Fatalf("posted attachments = %+v", posted.Attachments)
	}
	retried, err := w.Eng.PostMessage(ctx, pat, th.ID, post)
	if err != nil || retried.Created || retried.ID != posted.ID || len(retried.Attachments) != 1 || retried.Attachments[0] != want[0] {
		t.Fatalf("retried post = %+v, %v", retried, err)
	}
	page, err := w.Eng.ListMessages(ctx, w.Clinician, th.ID, engine.MessageFilter{})
	if err != nil || len(page.Items) != 1 || len(page.Items[0].Attachments) != 1 || page.Items[0].Attachments[0] != want[0] {
		t.Fatalf("listed = %+v, %v", page.Items, err)
	}
}
