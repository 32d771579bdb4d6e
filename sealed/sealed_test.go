package sealed_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tendhealth/tend/sealed"
)

func key(t testing.TB, id string) string {
	t.Helper()
	text, err := sealed.Generate(id)
	if err != nil {
		t.Fatal(err)
	}
	return text
}

func ring(t testing.TB, text string) *sealed.Keyring {
	t.Helper()
	k, err := sealed.ParseKeyring(text)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	k := ring(t, key(t, "k1"))
	aad := sealed.AAD("message.body", "thread-1", "message-1")
	for _, pt := range [][]byte{nil, []byte("My ankle is swollen again"), bytes.Repeat([]byte{0xff}, 1<<20)} {
		id, ct := k.Seal(pt, aad)
		if id != "k1" {
			t.Errorf("sealed under %q, want k1", id)
		}
		if len(pt) > 0 && bytes.Contains(ct, pt[:min(len(pt), 16)]) {
			t.Error("ciphertext contains the plaintext")
		}
		if len(ct) != len(pt)+29 {
			t.Errorf("ciphertext is %d bytes for %d of plaintext, want +29", len(ct), len(pt))
		}
		got, err := k.Open(id, ct, aad)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("Open = %d bytes, %v; want the %d plaintext bytes", len(got), err, len(pt))
		}
	}
	// Random nonces: sealing twice gives two ciphertexts.
	_, a := k.Seal([]byte("same"), aad)
	_, b := k.Seal([]byte("same"), aad)
	if bytes.Equal(a, b) {
		t.Error("two seals of one plaintext are identical")
	}
}

func TestOpenRejects(t *testing.T) {
	t.Parallel()
	k := ring(t, key(t, "k1")+","+key(t, "k2"))
	other := ring(t, key(t, "k1")) // same id, different key
	aad := sealed.AAD("message.body", "thread-1", "message-1")
	id, ct := k.Seal([]byte("Chest pain since this morning"), aad)

	if _, err := k.Open(id, ct, sealed.AAD("message.body", "thread-1", "message-2")); !errors.Is(err, sealed.ErrOpen) {
		t.Errorf("other message id: err = %v, want ErrOpen", err)
	}
	if _, err := k.Open(id, ct, sealed.AAD("message.body", "thread-2", "message-1")); !errors.Is(err, sealed.ErrOpen) {
		t.Errorf("other thread id (row copied): err = %v, want ErrOpen", err)
	}
	if _, err := k.Open(id, ct, sealed.AAD("symptom.note", "thread-1", "message-1")); !errors.Is(err, sealed.ErrOpen) {
		t.Errorf("other purpose: err = %v, want ErrOpen", err)
	}
	if _, err := k.Open(id, ct, nil); !errors.Is(err, sealed.ErrOpen) {
		t.Errorf("no aad: err = %v, want ErrOpen", err)
	}
	if _, err := k.Open("k2", ct, aad); !errors.Is(err, sealed.ErrOpen) {
		t.Errorf("wrong key id in the row: err = %v, want ErrOpen", err)
	}
	if _, err := other.Open(id, ct, aad); !errors.Is(err, sealed.ErrOpen) {
		t.Errorf("another key under the same id: err = %v, want ErrOpen", err)
	}
	if _, err := k.Open("k9", ct, aad); !errors.Is(err, sealed.ErrUnknownKey) {
		t.Errorf("unknown key id: err = %v, want ErrUnknownKey", err)
	}
	for i := range ct {
		for _, bit := range []byte{0x01, 0x80} {
			bad := bytes.Clone(ct)
			bad[i] ^= bit
			if pt, err := k.Open(id, bad, aad); !errors.Is(err, sealed.ErrOpen) || pt != nil {
				t.Fatalf("byte %d flipped (%#x): %q, %v; want ErrOpen", i, bit, pt, err)
			}
		}
	}
	for _, n := range []int{0, 1, 28, len(ct) - 1} {
		if _, err := k.Open(id, ct[:n], aad); !errors.Is(err, sealed.ErrOpen) {
			t.Errorf("truncated to %d bytes: err = %v, want ErrOpen", n, err)
		}
	}
	if _, err := k.Open(id, append(bytes.Clone(ct), 0), aad); !errors.Is(err, sealed.ErrOpen) {
		t.Errorf("extended: err = %v, want ErrOpen", err)
	}
}

func TestAADIsUnambiguous(t *testing.T) {
	t.Parallel()
	pairs := [][2][]string{
		{{"ab", "c"}, {"a", "bc"}},
		{{"a", ""}, {"a"}},
		{{""}, {}},
		{{"thread", "1"}, {"thread1"}},
	}
	for _, p := range pairs {
		if bytes.Equal(sealed.AAD(p[0]...), sealed.AAD(p[1]...)) {
			t.Errorf("AAD(%q) == AAD(%q)", p[0], p[1])
		}
	}
}

func TestRotation(t *testing.T) {
	t.Parallel()
	oldText := key(t, "2026-01")
	old := ring(t, oldText)
	aad := sealed.AAD("message.body", "t", "m")
	oldID, oldCT := old.Seal([]byte("take two tablets"), aad)

	rotated := ring(t, key(t, "2026-06")+","+oldText)
	if rotated.Current() != "2026-06" || !slicesEqual(rotated.IDs(), []string{"2026-06", "2026-01"}) {
		t.Errorf("current %q, ids %v", rotated.Current(), rotated.IDs())
	}
	if !rotated.NeedsRotation(oldID) || rotated.NeedsRotation("2026-06") || !rotated.NeedsRotation("gone") {
		t.Error("NeedsRotation: want true for the old and unknown ids, false for the current one")
	}
	pt, err := rotated.Open(oldID, oldCT, aad)
	if err != nil || string(pt) != "take two tablets" {
		t.Fatalf("old ciphertext after rotation: %q, %v", pt, err)
	}
	newID, newCT := rotated.Seal(pt, aad)
	if newID != "2026-06" {
		t.Errorf("re-sealed under %q, want the current key", newID)
	}
	if _, err := old.Open(newID, newCT, aad); !errors.Is(err, sealed.ErrUnknownKey) {
		t.Errorf("old keyring opening new ciphertext: %v, want ErrUnknownKey", err)
	}
	// Dropping the old key once everything is re-sealed.
	if _, err := ring(t, key(t, "2026-06")).Open(oldID, oldCT, aad); !errors.Is(err, sealed.ErrUnknownKey) {
		t.Errorf("retired key: %v, want ErrUnknownKey", err)
	}
}

func slicesEqual(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") }

func TestParseKeyringErrors(t *testing.T) {
	t.Parallel()
	good := key(t, "k1")
	_, goodB64, _ := strings.Cut(good, ":")
	short := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xab}, 31))
	long := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xcd}, 33))
	tests := []struct {
		name, text, want string
	}{
		{"empty", "", "no keys"},
		{"spaces only", " \n ", "no keys"},
		{"no colon (a bare key)", goodB64, "entry 1: has no ':'"},
		{"empty id", ":" + goodB64, "entry 1: id must be"},
		{"id too long", strings.Repeat("a", 33) + ":" + goodB64, "entry 1: id must be"},
		{"id with a dot", "k.1:" + goodB64, "entry 1: id must be"},
		{"key and id swapped", goodB64 + ":k1", "entry 1: id must be"},
		{"short key", "k2:" + short, `entry 1: key "k2" is 31 bytes, want 32`},
		{"long key", "k2:" + long, `entry 1: key "k2" is 33 bytes, want 32`},
		{"url-safe base64", "k2:" + strings.NewReplacer("+", "-", "/", "_").Replace(goodB64) + "-_", "not standard base64"},
		{"unpadded", "k2:" + strings.TrimRight(goodB64, "="), "not standard base64"},
		{"duplicate id", good + "," + "k1:" + base64.StdEncoding.EncodeToString(make([]byte, 32)), `entry 2: id "k1" repeats`},
		{"trailing comma", good + ",", "entry 2: is empty"},
		{"several problems", "a:" + short + ",b:" + long, "entry 2"},
		{"too many", strings.Repeat(good+",", 64) + good, "at most 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := sealed.ParseKeyring(tt.text)
			if err == nil {
				t.Fatalf("accepted %s", k)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to contain %q", err, tt.want)
			}
			assertNoKeyMaterial(t, tt.text, err.Error())
		})
	}
	// Accepted: whitespace around entries.
	if k, err := sealed.ParseKeyring(" " + good + " ,\n k2:" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n"); err != nil || len(k.IDs()) != 2 {
		t.Errorf("whitespace: %v, %v", k, err)
	}
}

// assertNoKeyMaterial fails when msg contains any 8-character run of a key
// part of text (the part after an entry's first ':', or a whole entry
// without one), or the key's decoded bytes.
func assertNoKeyMaterial(t *testing.T, text, msg string) {
	t.Helper()
	// Valid ids may be echoed; take them out first so an id that happens to
	// look like part of another entry's key is not a false alarm.
	for e := range strings.SplitSeq(text, ",") {
		if id, _, ok := strings.Cut(strings.TrimSpace(e), ":"); ok && sealed.ValidID(id) {
			msg = strings.ReplaceAll(msg, `"`+id+`"`, `""`)
		}
	}
	for e := range strings.SplitSeq(text, ",") {
		e = strings.TrimSpace(e)
		secret := e
		if _, after, ok := strings.Cut(e, ":"); ok {
			secret = after
		}
		if sealed.ValidID(secret) && !strings.Contains(e, ":") {
			continue // a lone valid id holds no key material
		}
		for i := 0; i+8 <= len(secret); i++ {
			if strings.Contains(msg, secret[i:i+8]) {
				t.Fatalf("error %q contains key material %q", msg, secret[i:i+8])
			}
		}
		if raw, err := base64.StdEncoding.DecodeString(secret); err == nil && len(raw) >= 4 && strings.Contains(msg, string(raw)) {
			t.Fatalf("error %q contains decoded key bytes", msg)
		}
	}
}

func TestKeyringPrintsNoKeys(t *testing.T) {
	t.Parallel()
	text := key(t, "k1")
	_, b64, _ := strings.Cut(text, ":")
	raw, _ := base64.StdEncoding.DecodeString(b64)
	k := ring(t, text)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(verb, k)
		if strings.Contains(out, b64[:8]) || strings.Contains(out, string(raw[:8])) || !strings.Contains(out, "k1") {
			t.Errorf("%s of a keyring = %q", verb, out)
		}
	}
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	a, b := key(t, "x"), key(t, "x")
	if a == b {
		t.Error("two generated keys are equal")
	}
	_, b64, _ := strings.Cut(a, ":")
	if raw, err := base64.StdEncoding.DecodeString(b64); err != nil || len(raw) != 32 {
		t.Errorf("generated key decodes to %d bytes, %v", len(raw), err)
	}
	for _, id := range []string{"", "a b", strings.Repeat("z", 33), "ü"} {
		if _, err := sealed.Generate(id); err == nil {
			t.Errorf("Generate(%q) accepted", id)
		}
	}
}

func BenchmarkSeal(b *testing.B) {
	k := ring(b, key(b, "k1"))
	aad := sealed.AAD("message.body", "3f1c2a9e-thread", "8b7d1e44-message")
	body := bytes.Repeat([]byte("a"), 500)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		k.Seal(body, aad)
	}
}

func BenchmarkOpen(b *testing.B) {
	k := ring(b, key(b, "k1"))
	aad := sealed.AAD("message.body", "3f1c2a9e-thread", "8b7d1e44-message")
	body := bytes.Repeat([]byte("a"), 500)
	id, ct := k.Seal(body, aad)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Open(id, ct, aad); err != nil {
			b.Fatal(err)
		}
	}
}

// TestKey: a data key opens what it sealed, with the same associated data
// only, and another key (or a keyring) does not.
func TestKey(t *testing.T) {
	k, raw := sealed.NewKey()
	again, err := sealed.KeyFrom(raw)
	if err != nil {
		t.Fatal(err)
	}
	ct := k.Seal([]byte("hello"), sealed.AAD("x", "1"))
	if pt, err := again.Open(ct, sealed.AAD("x", "1")); err != nil || string(pt) != "hello" {
		t.Fatalf("open = %q, %v", pt, err)
	}
	if _, err := again.Open(ct, sealed.AAD("x", "2")); !errors.Is(err, sealed.ErrOpen) {
		t.Fatalf("other aad: %v", err)
	}
	other, _ := sealed.NewKey()
	if _, err := other.Open(ct, sealed.AAD("x", "1")); !errors.Is(err, sealed.ErrOpen) {
		t.Fatalf("other key: %v", err)
	}
	if _, err := sealed.KeyFrom(raw[:31]); err == nil {
		t.Fatal("short key accepted")
	}
	if s := fmt.Sprintf("%v %#v", k, k); strings.Contains(s, base64.StdEncoding.EncodeToString(raw)) {
		t.Fatal("key printed")
	}
}
