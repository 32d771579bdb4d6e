package messaging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/e2ee"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rpm"
)

// pngBytes is a tiny file the sniffer takes for a PNG.
var pngBytes = append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0}, 64)...)

// uploadEncrypted encrypts file on d for thread and uploads the ciphertext;
// it returns the reference (its ID set) and the ciphertext.
func (d *e2eeDevice) uploadEncrypted(t *testing.T, eng *engine.Engine, thread uuid.UUID, name, typ string,
	file []byte) (e2ee.FileRef, []byte) {
	t.Helper()
	ct, ref, err := e2ee.EncryptFile(thread.String(), d.id, name, typ, file)
	if err != nil {
		t.Fatal(err)
	}
	att, err := eng.UploadAttachment(context.Background(), d.actor, thread, engine.EncryptedAttachmentType, ct)
	if err != nil {
		t.Fatalf("upload the ciphertext: %v", err)
	}
	if att.SHA256 != ref.SHA256 || att.ContentType != engine.EncryptedAttachmentType || att.Size != int64(len(ct)) {
		t.Fatalf("stored %+v: want the ciphertext's SHA-256 %s and size", att, ref.SHA256)
	}
	ref.ID = att.ID.String()
	return ref, ct
}

// sealWith seals text and attachments from d to the thread's keys.
func (d *e2eeDevice) sealWith(t *testing.T, keys engine.ThreadKeys, text string, refs ...e2ee.FileRef) *e2ee.Envelope {
	t.Helper()
	d.seq++
	p := e2ee.SealParams{ThreadID: keys.ThreadID.String(), SenderDevice: d.id, SenderSeq: d.seq, SigningKey: d.keys.Signing,
		Record: e2ee.Recipient{ID: keys.RecordKey.ID, PublicKey: keys.RecordKey.PublicKey}, Attachments: refs}
	for _, dev := range keys.Devices {
		p.Recipients = append(p.Recipients, e2ee.Recipient{ID: dev.ID.String(), PublicKey: dev.HPKEPublicKey})
	}
	env, err := e2ee.Seal(p, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// openFiles opens m on d and returns its content and each attachment
// decrypted from the bytes the server answers.
func (d *e2eeDevice) openFiles(t *testing.T, eng *engine.Engine, m engine.Message, from *e2eeDevice) (*e2ee.Content, [][]byte) {
	t.Helper()
	var env e2ee.Envelope
	if err := json.Unmarshal(m.Envelope, &env); err != nil {
		t.Fatal(err)
	}
	c, err := e2ee.OpenContent(&env, e2ee.OpenParams{ThreadID: m.ThreadID.String(), RecipientID: d.id,
		PrivateKey: d.keys.HPKEPrivate, SenderKey: from.keys.SigningPublic()})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	var files [][]byte
	for _, ref := range c.Attachments {
		reader := d.actor
		if reader.UserID == uuid.Nil {
			reader = from.actor // the record key's holder reads through a participant here
		}
		_, ct, err := eng.GetAttachment(context.Background(), reader, uuid.MustParse(ref.ID))
		if err != nil {
			t.Fatalf("download %s: %v", ref.ID, err)
		}
		file, err := e2ee.DecryptFile(&env, ref, ct)
		if err != nil {
			t.Fatalf("decrypt %s: %v", ref.ID, err)
		}
		files = append(files, file)
	}
	return c, files
}

// TestEncryptedAttachments: in an encrypted thread the sender's device
// encrypts a file, uploads the ciphertext (whose SHA-256 the server records
// and audits), and references it from a version 2 envelope; the clinician's
// device and the record key get the identical bytes, name and type back,
// while the database holds neither the file nor its name. Plain files are
// refused in an encrypted thread, encrypted ones in a plain thread, and an
// envelope referencing an attachment that is not the sender's encrypted
// upload to this thread is refused naming the field, storing nothing.
func TestEncryptedAttachments(t *testing.T) {
	t.Parallel()
	w := newE2EEWorld(t)
	ctx := context.Background()
	plain, err := w.eng.UploadAttachment(ctx, w.pat.actor, w.thread, "image/png", pngBytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.eng.UploadAttachment(ctx, w.pat.actor, w.thread, engine.EncryptedAttachmentType, bytes.Repeat([]byte{7}, 40)); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("encrypted upload to a plain thread: %v, want conflict", err)
	}
	if _, err := w.eng.EncryptThread(ctx, w.Clinician, w.thread); err != nil {
		t.Fatal(err)
	}
	if _, err := w.eng.UploadAttachment(ctx, w.pat.actor, w.thread, "image/png", pngBytes); !errors.Is(err, engine.ErrPlainAttachment) {
		t.Fatalf("plain upload to an encrypted thread: %v, want ErrPlainAttachment", err)
	}
	const marker = "HBA1C-RESULT-7.9-PERCENT"
	file := append(append([]byte("%PDF-1.7\n"), []byte(marker)...), bytes.Repeat([]byte(" lab "), 3000)...)
	ref, ct := w.pat.uploadEncrypted(t, w.eng, w.thread, "hba1c-results-sam-lee.pdf", "application/pdf", file)
	other, otherCT := w.pat.uploadEncrypted(t, w.eng, w.thread, "other.txt", "text/plain", []byte("another file"))
	docRef, _ := w.doc.uploadEncrypted(t, w.eng, w.thread, "doc.txt", "text/plain", []byte("the clinician's file"))
	// The clinician's encrypted upload to another encrypted thread (a direct
	// thread with a nurse of the team) is not an attachment of the patient's
	// thread.
	nurse := enginetest.AddClinician(t, w.World, "Nurse Kim")
	registerDevice(t, w.eng, nurse)
	if _, err := w.eng.UpdateCareTeam(ctx, w.Admin, w.Patient.CareTeamID, engine.CareTeamUpdate{
		MemberIDs: []uuid.UUID{w.Clinician.UserID, nurse.UserID}}); err != nil {
		t.Fatal(err)
	}
	direct, _, err := w.eng.DirectThread(ctx, w.Clinician, nurse.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.eng.EncryptThread(ctx, w.Clinician, direct.ID); err != nil {
		t.Fatal(err)
	}
	elsewhere, _ := w.doc.uploadEncrypted(t, w.eng, direct.ID, "elsewhere.txt", "text/plain", []byte("in the direct thread"))
	keys := w.keys(t)

	before := w.Count(t, `SELECT count(*) FROM messages`)
	audits := w.Count(t, `SELECT count(*) FROM audit_entries WHERE action = 'message.create'`)
	bad := []struct {
		name string
		ref  e2ee.FileRef
		want string
	}{
		{"no such attachment", withID(ref, uuid.NewString()), "no such attachment in this thread"},
		{"another user's upload", docRef, "uploaded by someone else"},
		{"a plain attachment", withID(ref, plain.ID.String()), "not an encrypted attachment"},
		{"another thread's attachment", elsewhere, "no such attachment in this thread"},
	}
	for _, c := range bad {
		from := w.pat
		if c.ref.ID == elsewhere.ID {
			from = w.doc
		}
		_, err := w.eng.PostEnvelope(ctx, from.actor, w.thread, engine.NewEnvelope{Envelope: from.sealWith(t, keys, "x", c.ref)})
		var v *rpm.ValidationError
		if !errors.As(err, &v) || !strings.Contains(err.Error(), "envelope.attachments[0]") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a field error on envelope.attachments[0]: %s", c.name, err, c.want)
		}
	}
	if n := w.Count(t, `SELECT count(*) FROM messages`); n != before {
		t.Errorf("refused envelopes stored %d messages", n-before)
	}
	if n := w.Count(t, `SELECT count(*) FROM audit_entries WHERE action = 'message.create'`); n != audits {
		t.Errorf("refused envelopes wrote %d audit entries", n-audits)
	}

	posted, err := w.eng.PostEnvelope(ctx, w.pat.actor, w.thread, engine.NewEnvelope{Envelope: w.pat.sealWith(t, keys,
		"my results", ref, other)})
	if err != nil {
		t.Fatal(err)
	}
	if len(posted.Attachments) != 2 || posted.Attachments[0].SHA256 != ref.SHA256 {
		t.Fatalf("posted attachments %+v", posted.Attachments)
	}
	page, err := w.eng.ListMessages(ctx, w.Clinician, w.thread, engine.MessageFilter{})
	if err != nil || len(page.Items) != 1 || len(page.Items[0].Attachments) != 2 {
		t.Fatalf("list: %+v, %v", page.Items, err)
	}
	c, files := w.doc.openFiles(t, w.eng, page.Items[0], w.pat)
	if c.Text != "my results" || !bytes.Equal(files[0], file) || string(files[1]) != "another file" ||
		c.Attachments[0].Name != "hba1c-results-sam-lee.pdf" || c.Attachments[0].Type != "application/pdf" {
		t.Fatalf("the clinician's device got %q, %+v", c.Text, c.Attachments)
	}
	record := &e2eeDevice{keys: w.record, id: e2ee.RecordKeyID(w.record.HPKEPublic)}
	if _, files := record.openFiles(t, w.eng, page.Items[0], w.pat); !bytes.Equal(files[0], file) {
		t.Fatal("the record key does not get the file")
	}
	if _, stored, err := w.eng.GetAttachment(ctx, w.Clinician, uuid.MustParse(ref.ID)); err != nil || !bytes.Equal(stored, ct) ||
		bytes.Contains(stored, []byte(marker)) {
		t.Fatalf("the server holds other bytes than the ciphertext: %v", err)
	}
	// A server that serves one attachment's ciphertext for another is caught.
	var env e2ee.Envelope
	if err := json.Unmarshal(page.Items[0].Envelope, &env); err != nil {
		t.Fatal(err)
	}
	if _, err := e2ee.DecryptFile(&env, ref, otherCT); !errors.Is(err, e2ee.ErrFileSwapped) {
		t.Errorf("swapped ciphertext: %v", err)
	}
	if _, err := e2ee.DecryptFile(&env, other, ct); !errors.Is(err, e2ee.ErrFileSwapped) {
		t.Errorf("swapped ciphertext: %v", err)
	}

	var detail string
	if err := w.Pool.QueryRow(ctx, `SELECT detail::text FROM audit_entries WHERE action = 'attachment.create'
		AND object_id = $1`, ref.ID).Scan(&detail); err != nil || !strings.Contains(detail, ref.SHA256) {
		t.Errorf("the upload's audit entry %s, %v: want the ciphertext's SHA-256", detail, err)
	}
	if err := w.Pool.QueryRow(ctx, `SELECT detail::text FROM audit_entries WHERE action = 'message.create'
		ORDER BY id DESC LIMIT 1`).Scan(&detail); err != nil || !strings.Contains(detail, ref.ID) {
		t.Errorf("the message's audit entry %s, %v: want its attachment ids", detail, err)
	}
	for _, secret := range []string{marker, "hba1c-results-sam-lee"} {
		if hits := scanDatabase(t, w.World, secret); len(hits) > 0 {
			t.Errorf("%q is stored in %v", secret, hits)
		}
	}
	if strings.Contains(w.logs.String(), marker) || strings.Contains(w.logs.String(), "hba1c-results") {
		t.Error("the logs hold the file or its name")
	}
}

func withID(r e2ee.FileRef, id string) e2ee.FileRef {
	r.ID = id
	return r
}
