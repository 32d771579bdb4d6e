package sealed_test

import (
	"strings"
	"testing"

	"github.com/tendhealth/tend/sealed"
)

// FuzzParseKeyring: the parser never panics, its errors never contain key
// material, and a keyring it accepts seals and opens. Seeds are committed
// under testdata/fuzz/FuzzParseKeyring.
func FuzzParseKeyring(f *testing.F) {
	f.Add("k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	f.Fuzz(func(t *testing.T, text string) {
		k, err := sealed.ParseKeyring(text)
		if err != nil {
			if k != nil {
				t.Fatal("keyring and error both returned")
			}
			assertNoKeyMaterial(t, text, err.Error())
			return
		}
		ids := k.IDs()
		if len(ids) == 0 || ids[0] != k.Current() || len(ids) != strings.Count(strings.TrimSpace(text), ",")+1 {
			t.Fatalf("ids %v, current %q for %d entries", ids, k.Current(), strings.Count(text, ",")+1)
		}
		aad := sealed.AAD("fuzz", text)
		id, ct := k.Seal([]byte(text), aad)
		pt, err := k.Open(id, ct, aad)
		if err != nil || string(pt) != text {
			t.Fatalf("round trip: %q, %v", pt, err)
		}
	})
}
