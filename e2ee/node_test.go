package e2ee

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNodeInterop checks the vectors with @hpke/core in Node (an independent
// implementation) and opens, in Go, an envelope Node sealed. It skips without
// Node or testdata/node/node_modules (npm ci --prefix e2ee/testdata/node), and
// fails then under CI=true.
func TestNodeInterop(t *testing.T) {
	node := requireNode(t, "@hpke/hybridkem-x-wing")
	out := filepath.Join(t.TempDir(), "sealed.json")
	cmd := exec.Command(node, "--test", "vectors.test.mjs")
	cmd.Dir = "testdata/node"
	cmd.Env = append(os.Environ(), "E2EE_OUT="+out)
	log, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(log), "# fail 0") {
		t.Fatalf("node vectors test failed: %v\n%s", err, log)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var sealed struct {
		Plaintext string    `json:"plaintext"`
		Envelope  *Envelope `json:"envelope"`
		V2        struct {
			Envelope       *Envelope `json:"envelope"`
			Text           string    `json:"text"`
			File           Bytes     `json:"file"`
			FileCiphertext Bytes     `json:"file_ciphertext"`
		} `json:"v2"`
	}
	if err := json.Unmarshal(data, &sealed); err != nil {
		t.Fatal(err)
	}
	v := loadVectors(t)
	for _, k := range append(v.Recipients, v.Record) {
		pt, err := Open(sealed.Envelope, OpenParams{ThreadID: v.ThreadID, RecipientID: k.ID, PrivateKey: k.HPKEPrivateKey,
			SenderKey: ed25519.PublicKey(v.Sender.SigningPublicKey)})
		if err != nil || string(pt) != sealed.Plaintext {
			t.Fatalf("%s: Go opened Node's envelope as %q, %v", k.ID, pt, err)
		}
		c, err := OpenContent(sealed.V2.Envelope, OpenParams{ThreadID: v.ThreadID, RecipientID: k.ID,
			PrivateKey: k.HPKEPrivateKey, SenderKey: ed25519.PublicKey(v.Sender.SigningPublicKey)})
		if err != nil || c.Text != sealed.V2.Text || len(c.Attachments) != 1 {
			t.Fatalf("%s: Go opened Node's v2 envelope as %+v, %v", k.ID, c, err)
		}
		file, err := DecryptFile(sealed.V2.Envelope, c.Attachments[0], sealed.V2.FileCiphertext)
		if err != nil || !bytes.Equal(file, sealed.V2.File) {
			t.Fatalf("%s: Node's attachment decrypts in Go to %q, %v", k.ID, file, err)
		}
	}
}
