package e2ee_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/tendhealth/tend/e2ee"
)

// FuzzEnvelope decodes arbitrary JSON as an envelope: decoding and Check
// never panic, and an envelope Check accepts re-encodes to the same signed
// bytes.
func FuzzEnvelope(f *testing.F) {
	if b, err := os.ReadFile("testdata/vectors.json"); err == nil {
		var v struct {
			Envelope json.RawMessage `json:"envelope"`
		}
		if json.Unmarshal(b, &v) == nil {
			f.Add([]byte(v.Envelope))
		}
	}
	f.Add([]byte(`{"v":1,"suite":{"kem":25722,"kdf":1,"aead":2},"recipients":[{"id":"x","enc":"AA"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var e e2ee.Envelope
		if json.Unmarshal(data, &e) != nil {
			return
		}
		if e2ee.Check(&e) != nil {
			return
		}
		again, err := json.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		var back e2ee.Envelope
		if err := json.Unmarshal(again, &back); err != nil || string(back.SignedBytes()) != string(e.SignedBytes()) {
			t.Fatalf("a checked envelope does not survive a JSON round trip: %v", err)
		}
	})
}
