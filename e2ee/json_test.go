package e2ee_test

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/tendhealth/tend/e2ee"
)

// sealedForTest seals text from a fresh sender to n fresh devices and a
// record key; with files, a version 2 envelope.
func sealedForTest(t testing.TB, n int, text string, files ...e2ee.FileRef) *e2ee.Envelope {
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
		SenderSeq: 1<<53 - 1, SigningKey: sender.Signing, Attachments: files,
		Record: e2ee.Recipient{ID: e2ee.RecordKeyID(record.HPKEPublic), PublicKey: record.HPKEPublic}}
	for i := range n {
		p.Recipients = append(p.Recipients, e2ee.Recipient{ID: "0190b5a4-6c2e-7d4f-9a31-00000000010" + string(rune('0'+i)),
			PublicKey: keys().HPKEPublic})
	}
	env, err := e2ee.Seal(p, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// TestAppendJSONIsMarshal: AppendJSON writes the very bytes json.Marshal
// does — for sealed envelopes of both versions, the test vectors, and
// envelopes whose strings need escaping — after any prefix.
func TestAppendJSONIsMarshal(t *testing.T) {
	t.Parallel()
	_, ref, err := e2ee.EncryptFile("0190b5a4-6c2e-7d4f-9a31-2b8c5e7f1d20", "0190b5a4-6c2e-7d4f-9a31-000000000001", "a.png",
		"image/png", []byte("png"))
	if err != nil {
		t.Fatal(err)
	}
	ref.ID = "0190b5a4-6c2e-7d4f-9a31-0000000000f1"
	envs := []*e2ee.Envelope{sealedForTest(t, 10, "hello"), sealedForTest(t, 1, strings.Repeat("x", 65536)),
		sealedForTest(t, 2, "with a file", ref), {}, {Recipients: []e2ee.Wrap{}, Attachments: []string{}},
		{ThreadID: "<script>&\"\\\x00\u2028é\xff", SenderDevice: "ünïcode", Attachments: []string{"a", "<b>"},
			Recipients: []e2ee.Wrap{{ID: "\n"}}, Record: e2ee.Wrap{ID: "\t"}, Version: -3},
		{Version: math.MinInt, SenderSeq: math.MaxUint64, Suite: e2ee.Suite{KEM: math.MaxUint16}}, {Version: math.MaxInt}}
	if b, err := os.ReadFile("testdata/vectors.json"); err == nil {
		var v struct {
			Envelope *e2ee.Envelope `json:"envelope"`
			V2       struct {
				Envelope *e2ee.Envelope `json:"envelope"`
			} `json:"v2"`
		}
		if err := json.Unmarshal(b, &v); err != nil || v.Envelope == nil || v.V2.Envelope == nil {
			t.Fatalf("vectors: %v", err)
		}
		envs = append(envs, v.Envelope, v.V2.Envelope)
	}
	for i, e := range envs {
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Errorf("envelope %d:\n got %.300s\nwant %.300s", i, got, want)
		}
		if got := e.AppendJSON([]byte("prefix")); !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Errorf("envelope %d after a prefix: %.300s", i, got)
		}
	}
}

// TestAppendJSONAllocs: a checked envelope is written in one allocation.
func TestAppendJSONAllocs(t *testing.T) {
	e := sealedForTest(t, 10, "hello")
	if n := testing.AllocsPerRun(20, func() { e.AppendJSON(nil) }); n != 1 {
		t.Errorf("AppendJSON: %.0f allocations, want 1", n)
	}
}

// FuzzAppendJSON: for whatever envelope JSON decodes to, AppendJSON writes
// what json.Marshal writes.
func FuzzAppendJSON(f *testing.F) {
	f.Add([]byte(`{"v":1,"suite":{"kem":25722,"kdf":1,"aead":2},"thread_id":"<&>","recipients":[{"id":"x","enc":"AA"}]}`))
	f.Add([]byte(`{"attachments":["\u2028","\ud800"],"record":{"id":"\u0000"},"sender_seq":18446744073709551615}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var e e2ee.Envelope
		if json.Unmarshal(data, &e) != nil {
			return
		}
		want, err := json.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON\n %q\nwant\n %q", got, want)
		}
	})
}
