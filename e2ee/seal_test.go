package e2ee_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tendhealth/tend/e2ee"
)

const thread = "0190b5a4-6c2e-7d4f-9a31-2b8c5e7f1d20"

type party struct {
	id   string
	keys *e2ee.DeviceKeys
}

func newParty(t *testing.T, id string) party {
	t.Helper()
	k, err := e2ee.GenerateDeviceKeys()
	if err != nil {
		t.Fatal(err)
	}
	return party{id: id, keys: k}
}

func seal(t *testing.T, from party, seq uint64, to []party, record party, msg string) *e2ee.Envelope {
	t.Helper()
	p := e2ee.SealParams{ThreadID: thread, SenderDevice: from.id, SenderSeq: seq, SigningKey: from.keys.Signing,
		Record: e2ee.Recipient{ID: e2ee.RecordKeyID(record.keys.HPKEPublic), PublicKey: record.keys.HPKEPublic}}
	for _, r := range to {
		p.Recipients = append(p.Recipients, e2ee.Recipient{ID: r.id, PublicKey: r.keys.HPKEPublic})
	}
	env, err := e2ee.Seal(p, []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func open(env *e2ee.Envelope, me, from party) ([]byte, error) {
	return e2ee.Open(env, e2ee.OpenParams{ThreadID: thread, RecipientID: me.id, PrivateKey: me.keys.HPKEPrivate,
		SenderKey: from.keys.SigningPublic()})
}

func clone(t *testing.T, env *e2ee.Envelope) *e2ee.Envelope {
	t.Helper()
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	var c e2ee.Envelope
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

// TestTamper is the client's half of the compromised-server suite: whatever
// a server that holds every stored byte changes, the recipient refuses.
func TestTamper(t *testing.T) {
	alice := newParty(t, "0190b5a4-6c2e-7d4f-9a31-00000000000a")
	bob := newParty(t, "0190b5a4-6c2e-7d4f-9a31-00000000000b")
	mallory := newParty(t, "0190b5a4-6c2e-7d4f-9a31-00000000000c")
	record := newParty(t, "")
	env := seal(t, alice, 3, []party{alice, bob}, record, "take 5 mg tonight")
	if pt, err := open(env, bob, alice); err != nil || string(pt) != "take 5 mg tonight" {
		t.Fatalf("bob opens: %q, %v", pt, err)
	}
	if pt, err := e2ee.Open(env, e2ee.OpenParams{ThreadID: thread, RecipientID: e2ee.RecordKeyID(record.keys.HPKEPublic),
		PrivateKey: record.keys.HPKEPrivate, SenderKey: alice.keys.SigningPublic()}); err != nil || string(pt) != "take 5 mg tonight" {
		t.Fatalf("record key opens: %q, %v", pt, err)
	}
	cases := []struct {
		name   string
		change func(e *e2ee.Envelope)
		want   error
	}{
		{"moved to another thread", func(e *e2ee.Envelope) { e.ThreadID = "0190b5a4-6c2e-7d4f-9a31-ffffffffffff" }, e2ee.ErrWrongThread},
		{"moved to another sequence", func(e *e2ee.Envelope) { e.SenderSeq = 4 }, e2ee.ErrBadSignature},
		{"changed signature", func(e *e2ee.Envelope) { e.Signature[5] ^= 1 }, e2ee.ErrBadSignature},
		{"changed ciphertext", func(e *e2ee.Envelope) { e.Ciphertext[0] ^= 1 }, e2ee.ErrBadSignature},
		{"recipient dropped", func(e *e2ee.Envelope) { e.Recipients = e.Recipients[:1] }, e2ee.ErrBadSignature},
	}
	for _, c := range cases {
		e := clone(t, env)
		c.change(e)
		if _, err := open(e, bob, alice); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	// A server that re-signs cannot: it lacks alice's key, so its envelope
	// verifies only under a key the client does not accept for alice.
	forged := seal(t, mallory, 3, []party{alice, bob}, record, "stop all medication")
	forged.SenderDevice = alice.id
	if _, err := open(forged, bob, alice); !errors.Is(err, e2ee.ErrBadSignature) {
		t.Errorf("forged sender: %v", err)
	}
	// A key swapped by the server: the sender's pins refuse it.
	var pins e2ee.Pins
	if err := pins.Check(bob.id, bob.keys.HPKEPublic, bob.keys.SigningPublic()); err != nil {
		t.Fatal(err)
	}
	if err := pins.Check(bob.id, mallory.keys.HPKEPublic, bob.keys.SigningPublic()); !errors.Is(err, e2ee.ErrKeyChanged) {
		t.Errorf("swapped recipient key: %v", err)
	}
	// Replay: the same envelope a second time.
	var seen e2ee.Seen
	if err := seen.Accept(env); err != nil {
		t.Fatal(err)
	}
	if err := seen.Accept(clone(t, env)); !errors.Is(err, e2ee.ErrReplayed) {
		t.Errorf("replayed envelope: %v", err)
	}
	// A device the sender left out (removed or revoked) gets nothing.
	if _, err := open(env, mallory, alice); !errors.Is(err, e2ee.ErrNotForMe) {
		t.Errorf("device not wrapped to: %v", err)
	}
	// A wrap relabelled for another device does not unwrap with its key.
	e := clone(t, env)
	e.Recipients[0].ID, e.Recipients[1].ID = e.Recipients[1].ID, e.Recipients[0].ID
	if _, err := open(e, bob, alice); err == nil {
		t.Error("swapped wraps opened")
	}
	if bytes.Contains(mustJSON(t, env), []byte("5 mg")) {
		t.Error("plaintext in the envelope")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCheck names the field of each malformed envelope.
func TestCheck(t *testing.T) {
	a := newParty(t, "0190b5a4-6c2e-7d4f-9a31-00000000000a")
	env := seal(t, a, 1, []party{a}, newParty(t, ""), "hi")
	if err := e2ee.Check(env); err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(e *e2ee.Envelope){
		"v":                         func(e *e2ee.Envelope) { e.Version = 3 },
		"attachments":               func(e *e2ee.Envelope) { e.Attachments = []string{thread} },
		"attachments[0]":            func(e *e2ee.Envelope) { e.Version, e.Attachments = 2, []string{"x"} },
		"attachments[1]":            func(e *e2ee.Envelope) { e.Version, e.Attachments = 2, []string{thread, thread} },
		"suite.kem":                 func(e *e2ee.Envelope) { e.Suite.KEM = 0x0020 },
		"suite.kdf":                 func(e *e2ee.Envelope) { e.Suite.KDF = 2 },
		"suite.aead":                func(e *e2ee.Envelope) { e.Suite.AEAD = 3 },
		"thread_id":                 func(e *e2ee.Envelope) { e.ThreadID = strings.ToUpper(e.ThreadID) },
		"sender_device_id":          func(e *e2ee.Envelope) { e.SenderDevice = "x" },
		"sender_seq":                func(e *e2ee.Envelope) { e.SenderSeq = 0 },
		"nonce":                     func(e *e2ee.Envelope) { e.Nonce = e.Nonce[:11] },
		"ciphertext":                func(e *e2ee.Envelope) { e.Ciphertext = e.Ciphertext[:15] },
		"recipients":                func(e *e2ee.Envelope) { e.Recipients = nil },
		"signature":                 func(e *e2ee.Envelope) { e.Signature = append(e.Signature, 0) },
		"recipients[0].enc":         func(e *e2ee.Envelope) { e.Recipients[0].Enc = e.Recipients[0].Enc[1:] },
		"recipients[0].wrapped_key": func(e *e2ee.Envelope) { e.Recipients[0].WrappedKey = nil },
		"recipients[1].id": func(e *e2ee.Envelope) {
			e.Recipients = append(e.Recipients, e.Recipients[0])
		},
		"record.id":  func(e *e2ee.Envelope) { e.Record.ID = "ABC" },
		"record.enc": func(e *e2ee.Envelope) { e.Record.Enc = nil },
	}
	for field, change := range cases {
		e := clone(t, env)
		change(e)
		var fe *e2ee.FieldError
		if err := e2ee.Check(e); !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s: got %v", field, err)
		}
	}
	for _, bad := range []string{`"AA=="`, `"AA+/"`, `12`, `"A A"`} {
		var b e2ee.Bytes
		if err := json.Unmarshal([]byte(bad), &b); err == nil {
			t.Errorf("Bytes accepted %s", bad)
		}
	}
}

// TestPublicKeys checks a device registration's keys and fingerprint.
func TestPublicKeys(t *testing.T) {
	k, err := e2ee.GenerateDeviceKeys()
	if err != nil {
		t.Fatal(err)
	}
	if err := e2ee.CheckPublicKeys(k.HPKEPublic, k.SigningPublic()); err != nil {
		t.Fatal(err)
	}
	var fe *e2ee.FieldError
	if err := e2ee.CheckPublicKeys(k.HPKEPublic[:100], k.SigningPublic()); !errors.As(err, &fe) || fe.Field != "hpke_public_key" {
		t.Errorf("short hpke key: %v", err)
	}
	if err := e2ee.CheckPublicKeys(k.HPKEPublic, k.SigningPublic()[:31]); !errors.As(err, &fe) || fe.Field != "signing_public_key" {
		t.Errorf("short signing key: %v", err)
	}
	fp := e2ee.FormatFingerprint(e2ee.Fingerprint(k.HPKEPublic, k.SigningPublic()))
	if len(fp) != 16*4+15 {
		t.Errorf("fingerprint %q", fp)
	}
	other := ed25519.PublicKey(bytes.Repeat([]byte{1}, 32))
	if fp == e2ee.FormatFingerprint(e2ee.Fingerprint(k.HPKEPublic, other)) {
		t.Error("fingerprint ignores the signing key")
	}
}

// TestRecordKey: a generated record key file parses back, and one whose
// halves disagree does not.
func TestRecordKey(t *testing.T) {
	k, err := e2ee.GenerateRecordKey()
	if err != nil {
		t.Fatal(err)
	}
	data := mustJSON(t, k)
	back, err := e2ee.ParseRecordKey(data)
	if err != nil || back.ID != k.ID {
		t.Fatalf("parse: %v", err)
	}
	other, _ := e2ee.GenerateRecordKey()
	k.PublicKey = other.PublicKey
	if _, err := e2ee.ParseRecordKey(mustJSON(t, k)); err == nil {
		t.Error("a record key with another public half parsed")
	}
	if pub, err := e2ee.ParseRecordPublicKey(strings.TrimSuffix(strings.TrimPrefix(string(mustJSON(t, other.PublicKey)), `"`), `"`)); err != nil || !bytes.Equal(pub, other.PublicKey) {
		t.Errorf("public key: %v", err)
	}
	if _, err := e2ee.ParseRecordPublicKey("AAAA"); err == nil {
		t.Error("a 3-byte public key parsed")
	}
}
