package e2ee

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hpke"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"reflect"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json")

// vectorKey is a key pair of the test vectors, private halves included.
type vectorKey struct {
	ID                string `json:"id"`
	HPKEPrivateKey    Bytes  `json:"hpke_private_key"`
	HPKEPublicKey     Bytes  `json:"hpke_public_key"`
	SigningPrivateKey Bytes  `json:"signing_private_key,omitempty"` // Ed25519 seed
	SigningPublicKey  Bytes  `json:"signing_public_key,omitempty"`
	Fingerprint       string `json:"fingerprint"`
}

// vectors is testdata/vectors.json: fixed keys, content key, nonce,
// plaintext, the bytes bound and signed, and the envelope they make.
type vectors struct {
	Note        string      `json:"note"`
	ThreadID    string      `json:"thread_id"`
	Sender      vectorKey   `json:"sender"`
	Recipients  []vectorKey `json:"recipients"`
	Record      vectorKey   `json:"record"`
	ContentKey  Bytes       `json:"content_key"`
	Plaintext   string      `json:"plaintext"`
	ContentAAD  Bytes       `json:"content_aad"`
	SignedBytes Bytes       `json:"signed_bytes"`
	Envelope    *Envelope   `json:"envelope"`
	// V2 is a version 2 envelope from the same sender to the same keys,
	// carrying one encrypted attachment.
	V2 *vectorsV2 `json:"v2"`
}

// vectorsV2 is the version 2 example: the file and every value derived
// from it (deterministic given the file key and nonce), the content sealed,
// the bytes bound and signed, and the envelope.
type vectorsV2 struct {
	File           Bytes     `json:"file"`
	FileKey        Bytes     `json:"file_key"`
	FileNonce      Bytes     `json:"file_nonce"`
	FileAAD        Bytes     `json:"file_aad"`
	FileCiphertext Bytes     `json:"file_ciphertext"`
	Attachment     FileRef   `json:"attachment"`
	ContentKey     Bytes     `json:"content_key"`
	Text           string    `json:"text"`
	Content        string    `json:"content"`
	ContentAAD     Bytes     `json:"content_aad"`
	SignedBytes    Bytes     `json:"signed_bytes"`
	Envelope       *Envelope `json:"envelope"`
}

func seeded(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

func deviceVector(t *testing.T, id string, hpkeSeed, sigSeed byte) vectorKey {
	t.Helper()
	pub, err := HPKEPublicFromPrivate(seeded(hpkeSeed, 32))
	if err != nil {
		t.Fatal(err)
	}
	v := vectorKey{ID: id, HPKEPrivateKey: seeded(hpkeSeed, 32), HPKEPublicKey: pub}
	if sigSeed != 0 {
		v.SigningPrivateKey = seeded(sigSeed, 32)
		v.SigningPublicKey = Bytes(ed25519.NewKeyFromSeed(v.SigningPrivateKey).Public().(ed25519.PublicKey))
	}
	v.Fingerprint = FormatFingerprint(Fingerprint(v.HPKEPublicKey, v.SigningPublicKey))
	return v
}

func makeVectors(t *testing.T) *vectors {
	v := &vectors{
		Note:       "Tend e2ee v1 test vectors: every private key is a repeated byte; HPKE encapsulation is random, so the envelope is fixed by this file, not re-derivable.",
		ThreadID:   "0190b5a4-6c2e-7d4f-9a31-2b8c5e7f1d20",
		Sender:     deviceVector(t, "0190b5a4-6c2e-7d4f-9a31-000000000001", 0x11, 0x21),
		Recipients: []vectorKey{deviceVector(t, "0190b5a4-6c2e-7d4f-9a31-000000000002", 0x12, 0x22)},
		Record:     deviceVector(t, "", 0x13, 0),
		ContentKey: seeded(0x42, ContentKeySize),
		Plaintext:  "Blood pressure looks better this week — keep the evening dose. ✓",
	}
	v.Record.ID = RecordKeyID(v.Record.HPKEPublicKey)
	v.Recipients = append([]vectorKey{v.Sender}, v.Recipients...)
	p := SealParams{ThreadID: v.ThreadID, SenderDevice: v.Sender.ID, SenderSeq: 7,
		Record:     Recipient{ID: v.Record.ID, PublicKey: v.Record.HPKEPublicKey},
		SigningKey: ed25519.NewKeyFromSeed(v.Sender.SigningPrivateKey)}
	for _, r := range v.Recipients {
		p.Recipients = append(p.Recipients, Recipient{ID: r.ID, PublicKey: r.HPKEPublicKey})
	}
	env, err := sealWith(p, v.ContentKey, seeded(0x24, NonceSize), []byte(v.Plaintext))
	if err != nil {
		t.Fatal(err)
	}
	v.Envelope, v.ContentAAD, v.SignedBytes = env, env.contentAAD(), env.SignedBytes()
	v.V2 = makeVectorsV2(t, v, p)
	return v
}

// vectorFile is the attached file of the vectors: a tiny PNG signature and
// some bytes (any bytes do: the server never sees them).
var vectorFile = append([]byte("\x89PNG\r\n\x1a\n"), []byte("Tend e2ee v2 attachment ✓")...)

func makeVectorsV2(t *testing.T, v *vectors, p SealParams) *vectorsV2 {
	t.Helper()
	x := &vectorsV2{File: vectorFile, FileKey: seeded(0x51, FileKeySize), FileNonce: seeded(0x52, NonceSize),
		ContentKey: seeded(0x43, ContentKeySize), Text: "Here is the photo of the rash — from this morning."}
	x.FileAAD = fileAAD(v.ThreadID, v.Sender.ID, "image/png", int64(len(vectorFile)))
	ct, ref, err := encryptFileWith(v.ThreadID, v.Sender.ID, "rash 2026-12-07.png", "image/png", vectorFile, x.FileKey, x.FileNonce)
	if err != nil {
		t.Fatal(err)
	}
	ref.ID = "0190b5a4-6c2e-7d4f-9a31-0000000000f1"
	x.FileCiphertext, x.Attachment = ct, ref
	p.SenderSeq, p.Attachments = 8, []FileRef{ref}
	env, err := sealWith(p, x.ContentKey, seeded(0x25, NonceSize), []byte(x.Text))
	if err != nil {
		t.Fatal(err)
	}
	content, _, err := encodeContent(x.Text, p.Attachments)
	if err != nil {
		t.Fatal(err)
	}
	x.Content, x.Envelope, x.ContentAAD, x.SignedBytes = string(content), env, env.contentAAD(), env.SignedBytes()
	return x
}

func loadVectors(t *testing.T) *vectors {
	t.Helper()
	const path = "testdata/vectors.json"
	if *update {
		v := makeVectors(t)
		keepEnvelopes(t, path, v)
		out, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

// TestVectors opens the committed envelope with every fixed key and checks
// each intermediate value, so an implementation that disagrees on any byte
// fails here (and in the Node check of the same file).
func TestVectors(t *testing.T) {
	v := loadVectors(t)
	fresh := makeVectors(t)
	env := v.Envelope
	if !bytes.Equal(env.contentAAD(), v.ContentAAD) || !bytes.Equal(v.ContentAAD, fresh.ContentAAD) {
		t.Fatal("content AAD differs from the vector")
	}
	if !bytes.Equal(env.SignedBytes(), v.SignedBytes) {
		t.Fatal("signed bytes differ from the vector")
	}
	if !bytes.Equal(v.Record.HPKEPublicKey, fresh.Record.HPKEPublicKey) || v.Record.ID != fresh.Record.ID ||
		v.Sender.Fingerprint != fresh.Sender.Fingerprint {
		t.Fatal("keys derived from the fixed seeds differ from the vector")
	}
	for _, k := range append(v.Recipients, v.Record) {
		w, ok := env.wrapFor(k.ID)
		if !ok {
			t.Fatalf("no wrap for %s", k.ID)
		}
		priv, err := hpke.MLKEM768X25519().NewPrivateKey(k.HPKEPrivateKey)
		if err != nil {
			t.Fatal(err)
		}
		r, err := hpke.NewRecipient(w.Enc, priv, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte(hpkeInfo))
		if err != nil {
			t.Fatal(err)
		}
		key, err := r.Open(env.wrapAAD(k.ID), w.WrappedKey)
		if err != nil || !bytes.Equal(key, v.ContentKey) {
			t.Fatalf("%s: unwrapped key %x, %v; want the vector's content key", k.ID, key, err)
		}
		pt, err := Open(env, OpenParams{ThreadID: v.ThreadID, RecipientID: k.ID, PrivateKey: k.HPKEPrivateKey,
			SenderKey: ed25519.PublicKey(v.Sender.SigningPublicKey)})
		if err != nil || string(pt) != v.Plaintext {
			t.Fatalf("%s: opened %q, %v", k.ID, pt, err)
		}
	}
	checkVectorsV2(t, v, fresh)
	reencoded, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	var again Envelope
	if err := json.Unmarshal(reencoded, &again); err != nil || !bytes.Equal(again.SignedBytes(), v.SignedBytes) {
		t.Fatalf("envelope does not survive a JSON round trip: %v", err)
	}
}

// checkVectorsV2 checks the version 2 example: the file's encryption is
// deterministic given its key and nonce, so the ciphertext and digests are
// recomputed; the envelope opens for every key to the content, whose
// attachment decrypts to the file.
func checkVectorsV2(t *testing.T, v, fresh *vectors) {
	t.Helper()
	x, f := v.V2, fresh.V2
	if x == nil {
		t.Fatal("vectors.json has no v2 example")
	}
	if !bytes.Equal(x.FileAAD, f.FileAAD) || !bytes.Equal(x.FileCiphertext, f.FileCiphertext) || !reflect.DeepEqual(x.Attachment, f.Attachment) ||
		x.Content != f.Content {
		t.Fatal("the v2 file AAD, file ciphertext, attachment reference or content differ from the vector")
	}
	env := x.Envelope
	if env.Version != Version2 || !bytes.Equal(env.contentAAD(), x.ContentAAD) || !bytes.Equal(x.ContentAAD, f.ContentAAD) ||
		!bytes.Equal(env.SignedBytes(), x.SignedBytes) {
		t.Fatal("v2 content AAD or signed bytes differ from the vector")
	}
	for _, k := range append(v.Recipients, v.Record) {
		c, err := OpenContent(env, OpenParams{ThreadID: v.ThreadID, RecipientID: k.ID, PrivateKey: k.HPKEPrivateKey,
			SenderKey: ed25519.PublicKey(v.Sender.SigningPublicKey)})
		if err != nil || c.Text != x.Text || len(c.Attachments) != 1 || !reflect.DeepEqual(c.Attachments[0], x.Attachment) {
			t.Fatalf("%s: opened v2 as %+v, %v", k.ID, c, err)
		}
		file, err := DecryptFile(env, c.Attachments[0], x.FileCiphertext)
		if err != nil || !bytes.Equal(file, x.File) {
			t.Fatalf("%s: the attachment decrypts to %q, %v", k.ID, file, err)
		}
	}
}

// keepEnvelopes keeps the envelopes already in the file (HPKE makes every
// seal different), so -update changes only what is new or derived.
func keepEnvelopes(t *testing.T, path string, v *vectors) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	var old vectors
	if err := json.Unmarshal(data, &old); err != nil {
		t.Fatal(err)
	}
	if old.Envelope != nil {
		v.Envelope, v.SignedBytes = old.Envelope, old.SignedBytes
	}
	if old.V2 != nil && old.V2.Envelope != nil {
		v.V2.Envelope, v.V2.SignedBytes = old.V2.Envelope, old.V2.SignedBytes
	}
}

// TestContentMustMatchEnvelope: a version 2 envelope whose sealed content
// lists other attachments than the envelope (a sender that lies to the
// server about the files it references) is refused by the recipient, even
// with a valid signature.
func TestContentMustMatchEnvelope(t *testing.T) {
	v := makeVectors(t)
	p := SealParams{ThreadID: v.ThreadID, SenderDevice: v.Sender.ID, SenderSeq: 9,
		Recipients:  []Recipient{{ID: v.Recipients[1].ID, PublicKey: v.Recipients[1].HPKEPublicKey}},
		Record:      Recipient{ID: v.Record.ID, PublicKey: v.Record.HPKEPublicKey},
		SigningKey:  ed25519.NewKeyFromSeed(v.Sender.SigningPrivateKey),
		Attachments: []FileRef{v.V2.Attachment}}
	env, err := Seal(p, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	env.Attachments = []string{"0190b5a4-6c2e-7d4f-9a31-0000000000f2"}
	env.Signature = ed25519.Sign(p.SigningKey, env.SignedBytes())
	params := OpenParams{ThreadID: v.ThreadID, RecipientID: v.Recipients[1].ID, PrivateKey: v.Recipients[1].HPKEPrivateKey,
		SenderKey: ed25519.PublicKey(v.Sender.SigningPublicKey)}
	if _, err := OpenContent(env, params); !errors.Is(err, ErrBadContent) {
		t.Fatalf("content listing another attachment than the envelope: %v, want ErrBadContent", err)
	}
}
