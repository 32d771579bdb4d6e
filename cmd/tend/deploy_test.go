package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func readRepoFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSystemdUnit: the unit runs `tend serve` hardened, and systemd itself
// (systemd-analyze verify, where installed) finds nothing to say about it.
func TestSystemdUnit(t *testing.T) {
	unit := readRepoFile(t, "deploy/tend.service")
	for _, want := range []string{"ExecStart=/usr/local/bin/tend serve", "DynamicUser=yes", "NoNewPrivileges=yes",
		"ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "CapabilityBoundingSet=\n", "KillSignal=SIGTERM",
		"SystemCallFilter=@system-service", "RestrictAddressFamilies=", "MemoryDenyWriteExecute=yes"} {
		if !strings.Contains(unit, want) {
			t.Errorf("deploy/tend.service lacks %q", strings.TrimSpace(want))
		}
	}
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed: unit not verified by systemd")
	}
	// verify wants the binary to exist: point ExecStart at this test binary.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "tend.service")
	if err := os.WriteFile(f, []byte(strings.ReplaceAll(unit, "/usr/local/bin/tend", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", f).CombinedOutput()
	// It exits 0 on unknown keys and bad values, only warning: any output fails.
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestContainerfile: a multi-stage build of a static binary on the Go the
// module asks for, run as a non-root user.
func TestContainerfile(t *testing.T) {
	cf := readRepoFile(t, "deploy/Containerfile")
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)(?:\s+AS\s+(\S+))?`).FindAllStringSubmatch(cf, -1)
	if len(froms) < 2 || froms[0][2] == "" {
		t.Fatalf("deploy/Containerfile is not a multi-stage build: %v", froms)
	}
	goVer := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(readRepoFile(t, "go.mod"))
	if goVer == nil || !strings.Contains(froms[0][1], "golang:"+goVer[1]) {
		t.Errorf("build stage %s does not use the Go of go.mod (%v)", froms[0][1], goVer)
	}
	if !strings.Contains(cf, "CGO_ENABLED=0") {
		t.Error("the binary is not built static (CGO_ENABLED=0)")
	}
	final := cf[strings.LastIndex(cf, "\nFROM "):]
	user := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindStringSubmatch(final)
	if user == nil || strings.HasPrefix(user[1], "0") || strings.HasPrefix(user[1], "root") {
		t.Errorf("the final stage does not run as a non-root user: %v", user)
	}
	if !strings.Contains(final, `ENTRYPOINT ["/usr/local/bin/tend"]`) {
		t.Error("the image's entry point is not tend")
	}
}

type promRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestPrometheusRules: the example alerting rules parse, each has a severity
// and a summary, they use only metrics Tend registers, and they cover what an
// operator must be woken for.
func TestPrometheusRules(t *testing.T) {
	dec := yaml.NewDecoder(strings.NewReader(readRepoFile(t, "deploy/prometheus-rules.yml")))
	dec.KnownFields(true)
	var rs promRules
	if err := dec.Decode(&rs); err != nil {
		t.Fatalf("deploy/prometheus-rules.yml: %v", err)
	}
	registered := map[string]bool{}
	re := regexp.MustCompile(`(?:Name:\s*|NewDesc\(\s*)"(tend_[a-z0-9_]+)"`)
	goSources(t, func(_ string, src []byte) {
		for _, m := range re.FindAllSubmatch(src, -1) {
			registered[string(m[1])] = true
		}
	})
	used := map[string]bool{}
	names := map[string]bool{}
	for _, g := range rs.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %+v lacks an alert name, expr, severity label or summary", r)
			}
			if names[r.Alert] {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			names[r.Alert] = true
			for _, m := range regexp.MustCompile(`\btend_[a-z0-9_]+`).FindAllString(r.Expr, -1) {
				used[m] = true
				if !registered[m] {
					t.Errorf("alert %s uses %s, which Tend does not register", r.Alert, m)
				}
			}
		}
	}
	for _, m := range []string{"tend_alerts_undelivered", "tend_alerts_undelivered_total", "tend_jobs",
		"tend_push_deliveries_total", "tend_push_payload_too_large_total", "tend_jobs_rescued_total"} {
		if !used[m] {
			t.Errorf("no alert watches %s", m)
		}
	}
}
