package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSimulate(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"simulate", "-h"}, &out, &errOut); err != nil {
		t.Fatalf("-h: %v", err)
	}
	for _, f := range []string{"-pack", "-seed", "-patients", "-weeks", "-artefact-rate", "-html"} {
		if !strings.Contains(out.String(), f) {
			t.Errorf("-h does not list %s", f)
		}
	}
	dir := t.TempDir()
	pack := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(pack, []byte("- id: hr\n  title: HR\n  kind: heart_rate\n  when: value > 100.0\n  urgency: high\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	html := filepath.Join(dir, "r.html")
	out.Reset()
	if err := run(context.Background(), []string{"simulate", "--patients", "20", "--weeks", "2", "--pack", pack, "--html", html}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "hf_decompensation") || !strings.Contains(out.String(), pack) {
		t.Errorf("output:\n%s", out.String())
	}
	if b, err := os.ReadFile(html); err != nil || !bytes.Contains(b, []byte("<svg")) {
		t.Errorf("html: %v", err)
	}
	for _, bad := range [][]string{{"--patients", "0"}, {"--artefact-rate", "-1"}, {"--bogus"}, {"extra"}} {
		err := run(context.Background(), append([]string{"simulate"}, bad...), &out, &errOut)
		if exitCode(err) != 2 {
			t.Errorf("%v: exit %d (%v), want 2", bad, exitCode(err), err)
		}
	}
}
