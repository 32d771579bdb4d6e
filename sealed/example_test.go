package sealed_test

import (
	"fmt"

	"github.com/tendhealth/tend/sealed"
)

func Example() {
	// In production the text comes from TEND_ENCRYPTION_KEYS; the first key seals.
	text, _ := sealed.Generate("2026-06")
	ring, err := sealed.ParseKeyring(text)
	if err != nil {
		panic(err)
	}
	aad := sealed.AAD("message.body", "thread-7", "message-42")
	keyID, ct := ring.Seal([]byte("Ankle still swollen"), aad)

	body, err := ring.Open(keyID, ct, aad)
	fmt.Println(string(body), err)

	// The same ciphertext in another row does not open.
	_, err = ring.Open(keyID, ct, sealed.AAD("message.body", "thread-8", "message-42"))
	fmt.Println(err)
	// Output:
	// Ankle still swollen <nil>
	// sealed: ciphertext does not authenticate
}
