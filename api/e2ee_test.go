package api_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/tendhealth/tend/e2ee"
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
func (d *e2eeClient) seal(t testing.TB, k threadKeys, text string) map[string]any {
	t.Helper()
	d.seq++
	p := e2ee.SealParams{ThreadID: k.ThreadID, SenderDevice: d.id, SenderSeq: d.seq, SigningKey: d.keys.Signing,
		Record: e2ee.Recipient{ID: k.RecordKey.ID, PublicKey: k.RecordKey.PublicKey}}
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
