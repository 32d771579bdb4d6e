package e2ee

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestBrowserInterop runs the browser implementation (api/console/assets/
// e2ee.js, with the committed bundle api/console/vendor/hpke.js) in Chromium: it opens an envelope Go sealed, refuses it moved to
// another sender sequence, and seals one that Go opens, its keys wrapped in
// Web Workers under a policy that allows the page's own workers only. It skips without
// Node, Chromium or testdata/node/node_modules, and fails then under CI=true.
func TestBrowserInterop(t *testing.T) {
	node, chromium := requireBrowser(t)
	v := loadVectors(t)
	mux := http.NewServeMux()
	// The page allows its own scripts and workers only, as the console's
	// and the patient app's policies do.
	const csp = "default-src 'none'; script-src 'self'; worker-src 'self'; connect-src 'self'"
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", csp)
		_, _ = w.Write([]byte(`<!doctype html><title>e2ee</title>`))
	})
	// e2ee.js imports the committed bundle of the @hpke packages
	// (../vendor/hpke.js), as the console serves them; its seal wraps keys
	// in module workers (wrapworker.js), which import both.
	files := http.StripPrefix("/console/", http.FileServer(http.Dir("../api/console")))
	mux.HandleFunc("GET /console/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", csp)
		files.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	me := v.Recipients[1]
	type pub struct {
		ID        string `json:"id"`
		PublicKey Bytes  `json:"public_key"`
	}
	in := map[string]any{"thread_id": v.ThreadID, "recipient": me, "sender_signing_public_key": v.Sender.SigningPublicKey,
		"envelope": v.Envelope, "v2": map[string]any{"envelope": v.V2.Envelope, "file_ciphertext": v.V2.FileCiphertext}, "seal": map[string]any{"sender_device_id": me.ID, "sender_seq": 1, "text": "Sealed in Chromium ✓",
			"signing_private_key": me.SigningPrivateKey, "signing_public_key": me.SigningPublicKey,
			"file_text": "A file encrypted in Chromium ✓", "file_id": "0190b5a4-6c2e-7d4f-9a31-0000000000fc",
			"recipients": []pub{{v.Sender.ID, v.Sender.HPKEPublicKey}, {me.ID, me.HPKEPublicKey}},
			"record":     pub{v.Record.ID, v.Record.HPKEPublicKey}}}
	if os.Getenv("TEND_E2EE_BROWSER_BENCH") != "" {
		in["bench"] = browserBench(t)
	}
	file := filepath.Join(t.TempDir(), "in.json")
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "browser.mjs")
	cmd.Dir = "testdata/node"
	cmd.Env = append(os.Environ(), "BASE_URL="+srv.URL, "CHROMIUM="+chromium, "IN="+file)
	out, err := cmd.CombinedOutput()
	_, res, ok := strings.Cut(string(out), "RESULT ")
	if err != nil || !ok {
		t.Fatalf("browser: %v\n%s", err, out)
	}
	var got struct {
		Opened  string    `json:"opened"`
		Moved   string    `json:"moved"`
		Sealed  *Envelope `json:"sealed"`
		SealMS  float64   `json:"seal_ms"`
		Times   []float64 `json:"times"`
		Workers int       `json:"workers"`
		V2      struct {
			Text           string    `json:"text"`
			Name           string    `json:"name"`
			File           Bytes     `json:"file"`
			Swapped        string    `json:"swapped"`
			Sealed         *Envelope `json:"sealed"`
			FileCiphertext Bytes     `json:"file_ciphertext"`
		} `json:"v2"`
	}
	if err := json.Unmarshal([]byte(res), &got); err != nil {
		t.Fatal(err)
	}
	if got.Opened != v.Plaintext {
		t.Errorf("the browser opened %q, want the vector's plaintext", got.Opened)
	}
	if !strings.Contains(got.Moved, "signature") {
		t.Errorf("an envelope moved to another sender sequence: the browser said %q", got.Moved)
	}
	for _, k := range []vectorKey{v.Sender, v.Record} {
		pt, err := Open(got.Sealed, OpenParams{ThreadID: v.ThreadID, RecipientID: k.ID, PrivateKey: k.HPKEPrivateKey,
			SenderKey: ed25519.PublicKey(me.SigningPublicKey)})
		if err != nil || string(pt) != "Sealed in Chromium ✓" {
			t.Errorf("%s: Go opened the browser's envelope as %q, %v", k.ID, pt, err)
		}
	}
	checkBrowserV2(t, v, got.V2.Text, got.V2.Name, got.V2.File, got.V2.Swapped)
	for _, k := range []vectorKey{v.Sender, v.Record} {
		c, err := OpenContent(got.V2.Sealed, OpenParams{ThreadID: v.ThreadID, RecipientID: k.ID, PrivateKey: k.HPKEPrivateKey,
			SenderKey: ed25519.PublicKey(me.SigningPublicKey)})
		if err != nil || len(c.Attachments) != 1 {
			t.Fatalf("%s: Go opened the browser's v2 envelope as %+v, %v", k.ID, c, err)
		}
		file, err := DecryptFile(got.V2.Sealed, c.Attachments[0], got.V2.FileCiphertext)
		if err != nil || string(file) != "A file encrypted in Chromium ✓" || c.Attachments[0].Name != "from-chromium.bin" {
			t.Errorf("%s: the browser's attachment decrypts in Go to %q, %v", k.ID, file, err)
		}
	}
	if got.Workers == 0 {
		t.Error("the browser sealed without its key-wrapping workers")
	}
	t.Logf("the browser sealed to 2 devices and the record key in %.1f ms (%d workers)", got.SealMS, got.Workers)
	if len(got.Times) > 0 {
		slices.Sort(got.Times)
		n := len(got.Times)
		t.Logf("browser: %d seals of 4 KB to 20 devices and the record key: p50 %.1f ms, p99 %.1f ms, max %.1f ms", n,
			got.Times[n/2], got.Times[(n*99)/100], got.Times[n-1])
	}
}

// checkBrowserV2 checks what the browser made of the v2 vector: the text,
// the attachment's sealed name, the identical file bytes, and a refusal of
// an altered ciphertext.
func checkBrowserV2(t *testing.T, v *vectors, text, name string, file []byte, swapped string) {
	t.Helper()
	if text != v.V2.Text || name != v.V2.Attachment.Name || string(file) != string(v.V2.File) {
		t.Errorf("the browser opened the v2 vector as %q, %q, %q", text, name, file)
	}
	if !strings.Contains(swapped, "not the one the sender sent") {
		t.Errorf("an altered attachment ciphertext: the browser said %q", swapped)
	}
}

// browserBench is the measurement TEND_E2EE_BROWSER_BENCH asks for: 200
// seals of a 4 KB text to 20 devices.
func browserBench(t *testing.T) map[string]any {
	t.Helper()
	type pub struct {
		ID        string `json:"id"`
		PublicKey Bytes  `json:"public_key"`
	}
	var rs []pub
	for i := range 20 {
		k, err := GenerateDeviceKeys()
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, pub{ID: fmt.Sprintf("0190b5a4-6c2e-7d4f-9a31-%012d", 100+i), PublicKey: k.HPKEPublic})
	}
	return map[string]any{"recipients": rs, "bytes": 4096, "n": 200}
}

// requireBrowser returns node and Chromium, or skips (fails under CI=true).
func requireBrowser(t *testing.T) (node, chromium string) {
	t.Helper()
	chromium = os.Getenv("TEND_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	return requireNode(t, "playwright-core", chromium), chromium
}

// requireNode returns Node, or skips (fails under CI=true) when it or the
// package pkg of testdata/node/node_modules or one of the files is missing.
func requireNode(t *testing.T, pkg string, files ...string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	for _, f := range append(files, "testdata/node/node_modules/"+pkg) {
		if err == nil {
			_, err = os.Stat(f)
		}
	}
	if err != nil {
		msg := "Node.js, Chromium or e2ee/testdata/node/node_modules missing (make e2ee/testdata/node/node_modules): " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return node
}

// TestHPKEBundle checks that api/console/vendor/hpke.js and hpke.LICENSE are
// what the packages pinned in testdata/node/package-lock.json build
// (testdata/node/bundle.mjs --check; make hpke-bundle rebuilds them).
func TestHPKEBundle(t *testing.T) {
	cmd := exec.Command(requireNode(t, "esbuild"), "bundle.mjs", "--check")
	cmd.Dir = "testdata/node"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}
