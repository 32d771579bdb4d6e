package main

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/sealed"
)

// TestKeysRotateCommand: with messages sealed under k1, tend serve refuses
// to start without keys (and says why); tend keys rotate with k2,k1
// re-encrypts them, after which k2 alone opens every message; a second run
// has nothing left to do.
func TestKeysRotateCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := enginetest.NewDatabase(t)
	k1, _ := sealed.Generate("k1")
	k2, _ := sealed.Generate("k2")
	old := envMap(map[string]string{"TEND_DATABASE_URL": db, "TEND_ENCRYPTION_KEYS": k1})
	eng, done, err := adminEngine(ctx, old, io.Discard, db)
	if err != nil {
		t.Fatal(err)
	}
	clinician, p := teamWithPatient(t, ctx, eng, "Team", "Dr A", "Pat")
	threads, _, err := eng.ListThreads(ctx, clinician, engine.ThreadFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var th uuid.UUID
	for _, x := range threads {
		if x.Kind == "patient" && x.PatientID != nil && *x.PatientID == p.ID {
			th = x.ID
		}
	}
	for i := range 3 {
		if _, err := eng.PostMessage(ctx, clinician, th, engine.NewMessage{Body: strings.Repeat("hi ", i+1)}); err != nil {
			t.Fatal(err)
		}
	}
	done()

	var out, errOut bytes.Buffer
	noKeys := envMap(map[string]string{"TEND_DATABASE_URL": db, "TEND_ADDR": "127.0.0.1:0"})
	err = runEnv(ctx, noKeys, []string{"serve"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "TEND_ENCRYPTION_KEYS is not set") || !strings.Contains(err.Error(), "encrypted messages") {
		t.Fatalf("serve without keys = %v, want a refusal that names TEND_ENCRYPTION_KEYS", err)
	}

	both := envMap(map[string]string{"TEND_DATABASE_URL": db, "TEND_ENCRYPTION_KEYS": k2 + "," + k1})
	out.Reset()
	if err := runEnv(ctx, both, []string{"keys", "rotate", "--batch", "2"}, &out, &errOut); err != nil {
		t.Fatalf("keys rotate: %v\n%s", err, errOut.String())
	}
	// The patient's messages are under their data key: rotating re-wraps it.
	if !strings.Contains(out.String(), "re-encrypted 0 messages and 0 notes, re-wrapped 1 patient keys; 0 records left") {
		t.Errorf("keys rotate said %q", out.String())
	}
	if strings.Contains(out.String()+errOut.String(), strings.TrimPrefix(k1, "k1:")) {
		t.Error("keys rotate printed a key")
	}
	out.Reset()
	if err := runEnv(ctx, both, []string{"keys", "rotate"}, &out, &errOut); err != nil || !strings.Contains(out.String(), "re-encrypted 0 messages and 0 notes, re-wrapped 0 patient keys") {
		t.Errorf("second run: %v %q", err, out.String())
	}
	fresh, done2, err := adminEngine(ctx, envMap(map[string]string{"TEND_DATABASE_URL": db, "TEND_ENCRYPTION_KEYS": k2}), io.Discard, db)
	if err != nil {
		t.Fatal(err)
	}
	defer done2()
	page, err := fresh.ListMessages(ctx, clinician, th, engine.MessageFilter{})
	if err != nil || len(page.Items) != 3 {
		t.Fatalf("messages = %+v, %v", page, err)
	}
	for _, m := range page.Items {
		if m.Error != "" || !strings.HasPrefix(m.Body, "hi") {
			t.Errorf("after rotation, message %d = %q / %q", m.Seq, m.Body, m.Error)
		}
	}
}

// TestKeysGenerate: tend keys generate prints one TEND_ENCRYPTION_KEYS line
// whose key Tend accepts; with --rotate the new key comes first, before the
// configured ones, and an id already in use is refused.
func TestKeysGenerate(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := runEnv(context.Background(), envMap(nil), []string{"keys", "generate", "--id", "k2"}, &out, &errOut); err != nil {
		t.Fatalf("keys generate: %v\n%s", err, errOut.String())
	}
	line := strings.TrimSuffix(out.String(), "\n")
	list, ok := strings.CutPrefix(line, "TEND_ENCRYPTION_KEYS=")
	if !ok || strings.Contains(line, "\n") {
		t.Fatalf("output %q is not one TEND_ENCRYPTION_KEYS line", out.String())
	}
	ring, err := sealed.ParseKeyring(list)
	if err != nil || ring.Current() != "k2" {
		t.Fatalf("the key %q does not parse: %v", list, err)
	}
	out.Reset()
	old := envMap(map[string]string{"TEND_ENCRYPTION_KEYS": list})
	if err := runEnv(context.Background(), old, []string{"keys", "generate", "--id", "k3", "--rotate"}, &out, &errOut); err != nil {
		t.Fatalf("keys generate --rotate: %v", err)
	}
	rotated, _ := strings.CutPrefix(strings.TrimSpace(out.String()), "TEND_ENCRYPTION_KEYS=")
	if ring, err := sealed.ParseKeyring(rotated); err != nil || !slices.Equal(ring.IDs(), []string{"k3", "k2"}) ||
		!strings.HasSuffix(rotated, ","+list) {
		t.Fatalf("rotated list %q: %v", rotated, err)
	}
	if err := runEnv(context.Background(), old, []string{"keys", "generate", "--id", "k2", "--rotate"}, io.Discard, io.Discard); exitCode(err) != 2 {
		t.Errorf("an id already in use: %v", err)
	}
}
