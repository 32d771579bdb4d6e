package api_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/e2ee"
	"github.com/tendhealth/tend/engine"
)

// e2eeClient is a client device with keys, as the matrices and the HTTP
// tests drive it: it registers over the API and seals to the keys the API
// lists.
type e2eeClient struct {
	keys *e2ee.DeviceKeys
	id   string
	seq  uint64
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// newE2EEClient generates keys and registers them as c's user.
func newE2EEClient(t testing.TB, c client) *e2eeClient {
	t.Helper()
	k, err := e2ee.GenerateDeviceKeys()
	if err != nil {
		t.Fatal(err)
	}
	r := c.do("POST", "/v1/me/e2ee-devices", map[string]any{"label": "test device",
		"hpke_public_key": b64url(k.HPKEPublic), "signing_public_key": b64url(k.SigningPublic())})
	if r.status != http.StatusCreated {
		t.Fatalf("register e2ee device: %d %s", r.status, r.body)
	}
	var d struct{ ID string }
	r.decode(t, &d)
	return &e2eeClient{keys: k, id: d.ID}
}

// threadKeys is GET /v1/threads/{id}/keys as JSON decodes it.
type threadKeys struct {
	ThreadID string `json:"thread_id"`
	Devices  []struct {
		ID            string     `json:"id"`
		UserID        string     `json:"user_id"`
		HPKEPublicKey e2ee.Bytes `json:"hpke_public_key"`
		Fingerprint   string     `json:"fingerprint"`
	} `json:"devices"`
	RecordKey struct {
		ID        string     `json:"id"`
		PublicKey e2ee.Bytes `json:"public_key"`
	} `json:"record_key"`
}

func fetchKeys(t testing.TB, c client, thread string) threadKeys {
	t.Helper()
	r := c.do("GET", "/v1/threads/"+thread+"/keys", nil)
	if r.status != http.StatusOK {
		t.Fatalf("thread keys: %d %s", r.status, r.body)
	}
	var k threadKeys
	r.decode(t, &k)
	return k
}

// seal seals text to keys and returns the body of POST
// /v1/threads/{id}/envelopes as a generic JSON value.
func (d *e2eeClient) seal(t testing.TB, k threadKeys, text string, files ...e2ee.FileRef) map[string]any {
	t.Helper()
	d.seq++
	p := e2ee.SealParams{ThreadID: k.ThreadID, SenderDevice: d.id, SenderSeq: d.seq, SigningKey: d.keys.Signing,
		Record: e2ee.Recipient{ID: k.RecordKey.ID, PublicKey: k.RecordKey.PublicKey}, Attachments: files}
	for _, dev := range k.Devices {
		p.Recipients = append(p.Recipients, e2ee.Recipient{ID: dev.ID, PublicKey: dev.HPKEPublicKey})
	}
	env, err := e2ee.Seal(p, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return map[string]any{"envelope": out}
}

// upload encrypts file on d for thread and uploads the ciphertext as c; it
// returns the reference (its id set) and the ciphertext.
func (d *e2eeClient) upload(t testing.TB, c client, thread, name, typ string, file []byte) (e2ee.FileRef, []byte) {
	t.Helper()
	ct, ref, err := e2ee.EncryptFile(thread, d.id, name, typ, file)
	if err != nil {
		t.Fatal(err)
	}
	r := c.doWithBytes("POST", "/v1/threads/"+thread+"/attachments", engine.EncryptedAttachmentType, ct)
	if r.status != http.StatusCreated {
		t.Fatalf("upload the ciphertext: %d %s", r.status, r.body)
	}
	var att struct{ ID, SHA256 string }
	r.decode(t, &att)
	if att.SHA256 != ref.SHA256 {
		t.Fatalf("the server's SHA-256 %s is not the ciphertext's %s", att.SHA256, ref.SHA256)
	}
	ref.ID = att.ID
	return ref, ct
}

// doWithBytes sends raw bytes with a Content-Type.
func (c client) doWithBytes(method, path, contentType string, body []byte) response {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return response{status: resp.StatusCode, body: b, header: resp.Header}
}

// TestEncryptedAttachmentAnswers: over HTTP, a plain file uploaded to an
// encrypted thread and an encrypted one to a plain thread are 409s; an
// envelope referencing an attachment that is not the sender's encrypted
// upload to the thread is a 422 naming envelope.attachments[i]; a valid one
// lists the attachment, whose download is the ciphertext (typed
// application/vnd.tend.encrypted) and decrypts on the recipient's device
// to the same bytes; the message's FHIR Communication has no payload.
func TestEncryptedAttachmentAnswers(t *testing.T) {
	t.Parallel()
	record, err := e2ee.GenerateDeviceKeys()
	if err != nil {
		t.Fatal(err)
	}
	s := newSetupWith(t, engine.Config{RecordPublicKey: record.HPKEPublic})
	pat := s.admin.as(s.userToken(t, map[string]any{"name": "Sam", "role": "patient", "patient_id": s.patientID}))
	doc, me := newE2EEClient(t, s.clinician), newE2EEClient(t, pat)
	var threads struct{ Items []struct{ ID string } }
	pat.do("GET", "/v1/threads", nil).decode(t, &threads)
	th := threads.Items[0].ID
	path := "/v1/threads/" + th
	png := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 32)...)
	r := pat.doWithBytes("POST", path+"/attachments", "image/png", png)
	if r.status != http.StatusCreated {
		t.Fatalf("plain upload to a plain thread: %d %s", r.status, r.body)
	}
	var plain struct{ ID string }
	r.decode(t, &plain)
	wantProblem(t, pat.doWithBytes("POST", path+"/attachments", engine.EncryptedAttachmentType, make([]byte, 64)), http.StatusConflict)
	if r := s.clinician.do("POST", path+"/encrypt", nil); r.status != http.StatusOK {
		t.Fatalf("encrypt: %d %s", r.status, r.body)
	}
	wantProblem(t, pat.doWithBytes("POST", path+"/attachments", "image/png", png), http.StatusConflict)
	wantProblem(t, pat.doWithBytes("POST", path+"/attachments", engine.EncryptedAttachmentType, make([]byte, 5)),
		http.StatusUnprocessableEntity, "body")
	file := []byte("%PDF-1.7\nblood results: potassium 5.9 mmol/L")
	ref, ct := me.upload(t, pat, th, "results.pdf", "application/pdf", file)
	docRef, _ := doc.upload(t, s.clinician, th, "doc.pdf", "application/pdf", []byte("%PDF-1.7\nthe clinician's"))
	keys := fetchKeys(t, pat, th)
	unknown, foreign, plainRef := ref, docRef, ref
	unknown.ID, plainRef.ID = uuid.NewString(), plain.ID
	for _, bad := range []e2ee.FileRef{unknown, foreign, plainRef} {
		wantProblem(t, pat.do("POST", path+"/envelopes", me.seal(t, keys, "x", bad)), http.StatusUnprocessableEntity,
			"envelope.attachments[0]")
	}
	r = pat.do("POST", path+"/envelopes", me.seal(t, keys, "my results", ref))
	if r.status != http.StatusCreated || !strings.Contains(string(r.body), ref.ID) {
		t.Fatalf("post: %d %s", r.status, r.body)
	}
	var page struct {
		Items []struct {
			ID       string         `json:"id"`
			Envelope *e2ee.Envelope `json:"envelope"`
		}
	}
	s.clinician.do("GET", path+"/messages", nil).decode(t, &page)
	c, err := e2ee.OpenContent(page.Items[0].Envelope, e2ee.OpenParams{ThreadID: th, RecipientID: doc.id,
		PrivateKey: doc.keys.HPKEPrivate, SenderKey: me.keys.SigningPublic()})
	if err != nil || len(c.Attachments) != 1 {
		t.Fatalf("open: %+v, %v", c, err)
	}
	r = s.clinician.do("GET", "/v1/attachments/"+ref.ID, nil)
	if r.status != http.StatusOK || r.header.Get("Content-Type") != engine.EncryptedAttachmentType || !bytes.Equal(r.body, ct) {
		t.Fatalf("download: %d %s", r.status, r.header.Get("Content-Type"))
	}
	if got, err := e2ee.DecryptFile(page.Items[0].Envelope, c.Attachments[0], r.body); err != nil || !bytes.Equal(got, file) {
		t.Fatalf("decrypt: %v", err)
	}
	r = s.clinician.do("GET", "/fhir/r4/Communication/"+page.Items[0].ID, nil)
	if r.status != http.StatusOK || strings.Contains(string(r.body), "payload") || strings.Contains(string(r.body), ref.ID) {
		t.Fatalf("Communication: %d %s", r.status, r.body)
	}
}

// TestEnvelopeAnswers: over HTTP, each malformed envelope is a 422 naming
// its field, an envelope missing a recipient is a 409 carrying the thread's
// keys, the same envelope again is a 200 with the stored message, a replayed
// sender sequence a 409 — and a stored message reads back as its envelope,
// which the other participant's device opens.
func TestEnvelopeAnswers(t *testing.T) {
	t.Parallel()
	record, err := e2ee.GenerateDeviceKeys()
	if err != nil {
		t.Fatal(err)
	}
	s := newSetupWith(t, engine.Config{RecordPublicKey: record.HPKEPublic})
	pat := s.admin.as(s.userToken(t, map[string]any{"name": "Sam", "role": "patient", "patient_id": s.patientID}))
	doc, me := newE2EEClient(t, s.clinician), newE2EEClient(t, pat)
	var threads struct{ Items []struct{ ID string } }
	pat.do("GET", "/v1/threads", nil).decode(t, &threads)
	path := "/v1/threads/" + threads.Items[0].ID
	if r := s.clinician.do("POST", path+"/encrypt", nil); r.status != http.StatusOK || !strings.Contains(string(r.body), `"encrypted":true`) {
		t.Fatalf("encrypt: %d %s", r.status, r.body)
	}
	keys := fetchKeys(t, pat, threads.Items[0].ID)
	if len(keys.Devices) != 2 || keys.Devices[0].Fingerprint == "" {
		t.Fatalf("keys: %+v", keys)
	}
	mutate := func(change func(env map[string]any)) map[string]any {
		body := me.seal(t, keys, "malformed")
		change(body["envelope"].(map[string]any))
		return body
	}
	for field, change := range map[string]func(map[string]any){
		"envelope.suite.kem":                 func(e map[string]any) { e["suite"] = map[string]any{"kem": 0x20, "kdf": 1, "aead": 2} },
		"envelope.nonce":                     func(e map[string]any) { e["nonce"] = "AAAA" },
		"envelope.signature":                 func(e map[string]any) { e["signature"] = "not base64!" },
		"envelope.recipients[0].enc":         func(e map[string]any) { e["recipients"].([]any)[0].(map[string]any)["enc"] = "AAAA" },
		"envelope.recipients[1].wrapped_key": func(e map[string]any) { e["recipients"].([]any)[1].(map[string]any)["wrapped_key"] = "A" },
		"envelope.thread_id":                 func(e map[string]any) { e["thread_id"] = uuid.NewString() },
		"envelope.recipients":                func(e map[string]any) { e["recipients"] = []any{} },
	} {
		wantProblem(t, pat.do("POST", path+"/envelopes", mutate(change)), http.StatusUnprocessableEntity, field)
	}
	// Missing the clinician's device: 409 with the current keys.
	short := keys
	short.Devices = keys.Devices[:0]
	for _, d := range keys.Devices {
		if d.ID == me.id {
			short.Devices = append(short.Devices, d)
		}
	}
	r := pat.do("POST", path+"/envelopes", me.seal(t, short, "to myself only"))
	wantProblem(t, r, http.StatusConflict)
	var conflict struct {
		Current threadKeys `json:"current"`
	}
	r.decode(t, &conflict)
	if len(conflict.Current.Devices) != 2 {
		t.Fatalf("409 without the current devices: %s", r.body)
	}
	good := me.seal(t, conflict.Current, "chest pain when climbing stairs")
	if r := pat.do("POST", path+"/envelopes", good); r.status != http.StatusCreated {
		t.Fatalf("post: %d %s", r.status, r.body)
	}
	if r := pat.do("POST", path+"/envelopes", good); r.status != http.StatusOK {
		t.Fatalf("the same envelope again: %d %s", r.status, r.body)
	}
	me.seq--
	wantProblem(t, pat.do("POST", path+"/envelopes", me.seal(t, conflict.Current, "replayed sequence")), http.StatusConflict)
	wantProblem(t, pat.do("POST", path+"/messages", map[string]any{"body": "plain"}), http.StatusConflict)
	var page struct {
		Items []struct {
			Kind     string         `json:"kind"`
			Body     string         `json:"body"`
			Envelope *e2ee.Envelope `json:"envelope"`
		}
	}
	s.clinician.do("GET", path+"/messages", nil).decode(t, &page)
	if len(page.Items) != 1 || page.Items[0].Kind != "encrypted" || page.Items[0].Body != "" || page.Items[0].Envelope == nil {
		t.Fatalf("messages: %+v", page.Items)
	}
	pt, err := e2ee.Open(page.Items[0].Envelope, e2ee.OpenParams{ThreadID: threads.Items[0].ID, RecipientID: doc.id,
		PrivateKey: doc.keys.HPKEPrivate, SenderKey: me.keys.SigningPublic()})
	if err != nil || string(pt) != "chest pain when climbing stairs" {
		t.Fatalf("the clinician's device opens %q, %v", pt, err)
	}
}
