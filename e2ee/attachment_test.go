package e2ee_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/tendhealth/tend/e2ee"
)

// sealFile encrypts file in thread th from alice, gives it id, and seals a
// version 2 envelope carrying it to bob.
func sealFile(t *testing.T, th string, alice, bob, record party, id string, file []byte) (*e2ee.Envelope, []byte) {
	t.Helper()
	ct, ref, err := e2ee.EncryptFile(th, alice.id, "scan.pdf", "application/pdf", file)
	if err != nil {
		t.Fatal(err)
	}
	ref.ID = id
	env, err := e2ee.Seal(e2ee.SealParams{ThreadID: th, SenderDevice: alice.id, SenderSeq: 1, SigningKey: alice.keys.Signing,
		Recipients:  []e2ee.Recipient{{ID: bob.id, PublicKey: bob.keys.HPKEPublic}},
		Record:      e2ee.Recipient{ID: e2ee.RecordKeyID(record.keys.HPKEPublic), PublicKey: record.keys.HPKEPublic},
		Attachments: []e2ee.FileRef{ref}}, []byte("the scan"))
	if err != nil {
		t.Fatal(err)
	}
	return env, ct
}

// TestAttachmentRoundTrip: a file encrypted and referenced from a version 2
// envelope decrypts for the recipient to the same bytes, name and type; a
// swapped ciphertext, one moved to another thread or sender, and an
// envelope whose attachment list was changed are refused.
func TestAttachmentRoundTrip(t *testing.T) {
	alice := newParty(t, "0190b5a4-6c2e-7d4f-9a31-00000000000a")
	bob := newParty(t, "0190b5a4-6c2e-7d4f-9a31-00000000000b")
	record := newParty(t, "")
	file := append([]byte("%PDF-1.7\n"), bytes.Repeat([]byte("lab result "), 500)...)
	const id = "0190b5a4-6c2e-7d4f-9a31-0000000000f1"
	env, ct := sealFile(t, thread, alice, bob, record, id, file)
	if env.Version != e2ee.Version2 || len(env.Attachments) != 1 || env.Attachments[0] != id {
		t.Fatalf("envelope v%d lists %v", env.Version, env.Attachments)
	}
	if bytes.Contains(ct, []byte("lab result")) || len(ct) != len(file)+e2ee.FileOverhead {
		t.Fatalf("the uploaded bytes are not ciphertext of the file (%d bytes)", len(ct))
	}
	params := e2ee.OpenParams{ThreadID: thread, RecipientID: bob.id, PrivateKey: bob.keys.HPKEPrivate,
		SenderKey: alice.keys.SigningPublic()}
	c, err := e2ee.OpenContent(env, params)
	if err != nil || c.Text != "the scan" || len(c.Attachments) != 1 {
		t.Fatalf("open: %+v, %v", c, err)
	}
	ref := c.Attachments[0]
	if ref.Name != "scan.pdf" || ref.Type != "application/pdf" || ref.Size != int64(len(file)) {
		t.Fatalf("reference %+v", ref)
	}
	got, err := e2ee.DecryptFile(env, ref, ct)
	if err != nil || !bytes.Equal(got, file) {
		t.Fatalf("decrypt: %v", err)
	}
	if text, err := e2ee.Open(env, params); err != nil || string(text) != "the scan" {
		t.Fatalf("Open of a v2 envelope: %q, %v", text, err)
	}

	// Another file's ciphertext served in its place.
	other, otherCT := sealFile(t, thread, alice, bob, record, id, file)
	if _, err := e2ee.DecryptFile(env, ref, otherCT); !errors.Is(err, e2ee.ErrFileSwapped) {
		t.Errorf("swapped ciphertext: %v", err)
	}
	// The same ciphertext and key presented by an envelope of another
	// thread (or another sender device): its associated data differs.
	moved := *other
	moved.ThreadID = "0190b5a4-6c2e-7d4f-9a31-2b8c5e7f1d21"
	if _, err := e2ee.DecryptFile(&moved, ref, ct); !errors.Is(err, e2ee.ErrFileDecrypt) {
		t.Errorf("ciphertext moved to another thread: %v", err)
	}
	moved = *other
	moved.SenderDevice = bob.id
	if _, err := e2ee.DecryptFile(&moved, ref, ct); !errors.Is(err, e2ee.ErrFileDecrypt) {
		t.Errorf("ciphertext moved to another sender: %v", err)
	}
	// A reference whose stated type was changed no longer matches.
	changed := ref
	changed.Type = "image/png"
	if _, err := e2ee.DecryptFile(env, changed, ct); !errors.Is(err, e2ee.ErrFileDecrypt) {
		t.Errorf("type changed: %v", err)
	}
	// The server drops or swaps the envelope's attachment list: the
	// signature covers it.
	dropped := clone(t, env)
	dropped.Attachments = []string{"0190b5a4-6c2e-7d4f-9a31-0000000000f2"}
	if _, err := e2ee.OpenContent(dropped, params); !errors.Is(err, e2ee.ErrBadSignature) {
		t.Errorf("attachment list changed: %v", err)
	}
	// Downgraded to version 1 (list removed): the signature covers v.
	down := clone(t, env)
	down.Version, down.Attachments = e2ee.Version, nil
	if _, err := e2ee.OpenContent(down, params); !errors.Is(err, e2ee.ErrBadSignature) {
		t.Errorf("downgraded to v1: %v", err)
	}
}

// TestSealWithoutAttachments: a message without attachments stays a
// version 1 envelope, which every earlier client opens.
func TestSealWithoutAttachments(t *testing.T) {
	alice := newParty(t, "0190b5a4-6c2e-7d4f-9a31-00000000000a")
	record := newParty(t, "")
	env := seal(t, alice, 1, []party{alice}, record, "plain text")
	if env.Version != e2ee.Version || env.Attachments != nil {
		t.Fatalf("v%d with %v", env.Version, env.Attachments)
	}
	c, err := e2ee.OpenContent(env, e2ee.OpenParams{ThreadID: thread, RecipientID: alice.id, PrivateKey: alice.keys.HPKEPrivate,
		SenderKey: alice.keys.SigningPublic()})
	if err != nil || c.Text != "plain text" || len(c.Attachments) != 0 {
		t.Fatalf("%+v, %v", c, err)
	}
}
