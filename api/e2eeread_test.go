package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/tendhealth/tend/e2ee"
	"github.com/tendhealth/tend/engine"
)

// sealedBody seals a message to n fresh devices and a record key and
// returns the envelope.
func sealedBody(t testing.TB, n int) *e2ee.Envelope {
	t.Helper()
	keys := func() *e2ee.DeviceKeys {
		k, err := e2ee.GenerateDeviceKeys()
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	sender, record := keys(), keys()
	p := e2ee.SealParams{ThreadID: "0190b5a4-6c2e-7d4f-9a31-2b8c5e7f1d20", SenderDevice: "0190b5a4-6c2e-7d4f-9a31-000000000001",
		SenderSeq: 7, SigningKey: sender.Signing, Record: e2ee.Recipient{ID: e2ee.RecordKeyID(record.HPKEPublic), PublicKey: record.HPKEPublic}}
	for i := range n {
		p.Recipients = append(p.Recipients, e2ee.Recipient{ID: fmt.Sprintf("0190b5a4-6c2e-7d4f-9a31-%012d", 100+i), PublicKey: keys().HPKEPublic})
	}
	env, err := e2ee.Seal(p, []byte("chest pain when climbing stairs"))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// jsOrder is an envelope post with its members in the order e2ee.js
// writes them.
type jsOrder struct {
	Envelope struct {
		V            int         `json:"v"`
		Suite        e2ee.Suite  `json:"suite"`
		ThreadID     string      `json:"thread_id"`
		SenderDevice string      `json:"sender_device_id"`
		SenderSeq    uint64      `json:"sender_seq"`
		Nonce        e2ee.Bytes  `json:"nonce"`
		Ciphertext   e2ee.Bytes  `json:"ciphertext"`
		Record       e2ee.Wrap   `json:"record"`
		Recipients   []e2ee.Wrap `json:"recipients"`
		Signature    e2ee.Bytes  `json:"signature"`
	} `json:"envelope"`
	Urgent bool `json:"urgent"`
}

// envelopeForms are the spellings of one envelope post that clients send:
// json.Marshal of the envelope, of a generic map (sorted members), and
// e2ee.js's member order, indented.
func envelopeForms(t testing.TB, env *e2ee.Envelope) map[string][]byte {
	t.Helper()
	canonical, _ := json.Marshal(map[string]any{"envelope": env, "urgent": true})
	var generic map[string]any
	if err := json.Unmarshal(canonical, &generic); err != nil {
		t.Fatal(err)
	}
	sorted, _ := json.Marshal(generic)
	var js jsOrder
	e := &js.Envelope
	e.V, e.Suite, e.ThreadID, e.SenderDevice, e.SenderSeq = env.Version, env.Suite, env.ThreadID, env.SenderDevice, env.SenderSeq
	e.Nonce, e.Ciphertext, e.Record, e.Recipients, e.Signature = env.Nonce, env.Ciphertext, env.Record, env.Recipients, env.Signature
	js.Urgent = true
	compact, _ := json.Marshal(js)
	var indented bytes.Buffer
	if err := json.Indent(&indented, compact, "", "\t "); err != nil {
		t.Fatal(err)
	}
	indented.WriteString("\r\n")
	return map[string][]byte{"canonical": canonical, "sorted": sorted, "e2ee.js, indented": indented.Bytes()}
}

// readSlow is the general way of reading an envelope post.
func readSlow(body []byte) (engine.NewEnvelope, error) {
	var in envelopeBody
	if err := decodeBody(body, &in, 1<<20); err != nil {
		return engine.NewEnvelope{}, err
	}
	if in.Envelope == nil {
		return engine.NewEnvelope{}, upToError("envelope", "is required")
	}
	env, err := in.Envelope.decode()
	return engine.NewEnvelope{Envelope: env, Urgent: in.Urgent}, err
}

// sameAsSlow fails unless the general way accepts body into the envelope
// the fast path read.
func sameAsSlow(t *testing.T, body []byte, fast engine.NewEnvelope) {
	t.Helper()
	slow, err := readSlow(body)
	if err != nil {
		t.Fatalf("the fast path accepted a body the general way refuses (%v): %.300q", err, body)
	}
	f, _ := json.Marshal(fast.Envelope)
	s, _ := json.Marshal(slow.Envelope)
	if !bytes.Equal(f, s) || fast.Urgent != slow.Urgent {
		t.Fatalf("the fast path read\n %.500s (urgent %v)\nthe general way\n %.500s (urgent %v)", f, fast.Urgent, s, slow.Urgent)
	}
}

// TestEnvelopeFastPath: the bodies clients send take the fast path, into
// the envelope the general way reads; anything else — escapes, unknown,
// repeated, misspelt or missing members, nulls, other number forms, text
// that is not unpadded base64url, fields past their length limits, trailing
// bytes — is left to the general way, which answers as it always did.
func TestEnvelopeFastPath(t *testing.T) {
	t.Parallel()
	env := sealedBody(t, 3)
	forms := envelopeForms(t, env)
	for name, body := range forms {
		in, ok := parseEnvelope(body)
		if !ok {
			t.Errorf("%s: not read by the fast path: %.300s", name, body)
			continue
		}
		if !in.Urgent || in.Envelope.SenderSeq != 7 || len(in.Envelope.Recipients) != 3 {
			t.Errorf("%s: read %+v", name, in)
		}
		sameAsSlow(t, body, in)
	}
	canonical := string(forms["canonical"])
	sig := `"signature":"` + base64.RawURLEncoding.EncodeToString(env.Signature) + `"`
	nonce := `"nonce":"` + base64.RawURLEncoding.EncodeToString(env.Nonce) + `"`
	edit := func(old, new string) string {
		if !strings.Contains(canonical, old) {
			t.Fatalf("no %q in the body", old)
		}
		return strings.Replace(canonical, old, new, 1)
	}
	for name, body := range map[string]string{
		"escape in a binary field":     edit(`"nonce":"`, `"nonce":"\u0041`),
		"escaped line break in base64": edit(`"nonce":"`, `"nonce":"\n`),
		"raw line break in base64":     edit(`"nonce":"`, "\"nonce\":\"\n"),
		"escape in an id":              edit(`"thread_id":"`, `"thread_id":"\u0030`),
		"escaped member name":          edit(`"thread_id"`, `"thread\u005fid"`),
		"unknown member":               edit(`"v":1`, `"v":1,"x":1`),
		"repeated member":              edit(`"v":1`, `"v":1,"v":1`),
		"repeated top-level member":    canonical[:len(canonical)-1] + `,"urgent":false}`,
		"misspelt member":              edit(`"signature"`, `"Signature"`),
		"missing member":               edit(","+sig, ""),
		"null":                         `{"envelope":null}`,
		"null field":                   edit(`"urgent":true`, `"urgent":null`),
		"null list":                    edit(`"v":1`, `"v":1,"attachments":null`),
		"fraction":                     edit(`"v":1`, `"v":1.0`),
		"exponent":                     edit(`"v":1`, `"v":1e0`),
		"negative":                     edit(`"sender_seq":7`, `"sender_seq":-7`),
		"leading zero":                 edit(`"sender_seq":7`, `"sender_seq":07`),
		"16 digits":                    edit(`"sender_seq":7`, `"sender_seq":9007199254740991`),
		"suite past uint16":            edit(`"kem":25722`, `"kem":65536`),
		"padded base64":                edit(sig, sig[:len(sig)-1]+`=="`),
		"standard alphabet":            edit(nonce, nonce[:len(nonce)-2]+`+"`),
		"non-ASCII id":                 edit(`"thread_id":"`, `"thread_id":"é`),
		"NUL in an id":                 edit(`"thread_id":"`, "\"thread_id\":\"\x00"),
		"ciphertext past its limit":    edit(`"ciphertext":"`, `"ciphertext":"`+strings.Repeat("A", 87404)),
		"urgent as text":               canonical[:len(canonical)-len(`true}`)] + `"true"}`,
		"trailing bytes":               canonical + "x",
		"two values":                   canonical + "{}",
		"byte order mark":              "\ufeff" + canonical,
		"no envelope":                  `{"urgent":true}`,
		"recipient not an object":      edit(`"recipients":[`, `"recipients":["x",`),
		"trailing comma":               edit(`"v":1,`, `"v":1,,`),
	} {
		if in, ok := parseEnvelope([]byte(body)); ok {
			t.Errorf("%s: read by the fast path: %+v", name, in.Envelope)
		}
	}
}

// TestEnvelopeFastPathMutations: of thousands of random edits of client
// bodies (bytes replaced, removed or inserted, chosen among the ones that
// matter to JSON and base64url), every body the fast path reads is one the
// general way accepts, into the same envelope.
func TestEnvelopeFastPathMutations(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(27, 1))
	special := []byte("{}[]:,\"\\ \t\r\n0123456789-+.eE=/_AZaz\x00\xc3\xa9tfnul")
	var bodies [][]byte
	for _, b := range envelopeForms(t, sealedBody(t, 1)) {
		bodies = append(bodies, b)
	}
	accepted := 0
	for i := range 6000 {
		body := slices.Clone(bodies[i%len(bodies)])
		for range 1 + rng.IntN(3) {
			at := rng.IntN(len(body))
			switch c := special[rng.IntN(len(special))]; rng.IntN(3) {
			case 0:
				body[at] = c
			case 1:
				body = slices.Delete(body, at, at+1)
			default:
				body = slices.Insert(body, at, c)
			}
		}
		if in, ok := parseEnvelope(body); ok {
			accepted++
			sameAsSlow(t, body, in)
		}
	}
	t.Logf("%d of 6000 edited bodies read by the fast path, each as the general way reads it", accepted)
}

// FuzzEnvelopeFastPath: whatever the bytes, a body the fast path reads is
// one the general way accepts, into the same envelope.
func FuzzEnvelopeFastPath(f *testing.F) {
	for _, body := range envelopeForms(f, sealedBody(f, 2)) {
		f.Add(body)
	}
	f.Add([]byte(`{"envelope":{"v":1,"suite":{"kem":1,"kdf":1,"aead":1},"thread_id":"t","sender_device_id":"d","sender_seq":1,` +
		`"nonce":"","ciphertext":"","recipients":[],"record":{"id":"","enc":"","wrapped_key":""},"signature":"","attachments":[]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if in, ok := parseEnvelope(body); ok {
			sameAsSlow(t, body, in)
		}
	})
}
