package main

import (
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine"
)

// repoRoot is the repository, two levels above cmd/tend.
const repoRoot = "../.."

// goSources calls f with every non-test Go file of the repository.
func goSources(t *testing.T, f func(path string, src []byte)) {
	t.Helper()
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != repoRoot {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			f(path, src)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// envVarsInCode lists every TEND_* variable the code reads: each string
// literal that is exactly a variable name (comments and usage texts aside).
func envVarsInCode(t *testing.T) map[string]string {
	t.Helper()
	name := regexp.MustCompile(`^TEND_[A-Z0-9_]+$`)
	found := map[string]string{}
	goSources(t, func(path string, src []byte) {
		f, err := parser.ParseFile(gotoken.NewFileSet(), path, src, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == gotoken.STRING {
				if v, err := strconv.Unquote(lit.Value); err == nil && name.MatchString(v) {
					found[v] = path
				}
			}
			return true
		})
	})
	return found
}

// readmeConfig maps each variable of README's configuration table to its
// default cell.
func readmeConfig(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "## Configuration")
	if !ok {
		t.Fatal("README.md has no Configuration section")
	}
	section, _, _ := strings.Cut(after, "\n## ")
	vars := regexp.MustCompile("`(TEND_[A-Z0-9_]+)`")
	out := map[string]string{}
	for line := range strings.SplitSeq(section, "\n") {
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		if len(cells) != 3 {
			continue
		}
		for _, m := range vars.FindAllStringSubmatch(cells[0], -1) {
			out[m[1]] = strings.TrimSpace(cells[2])
		}
	}
	return out
}

// TestEveryVariableIsDocumented: every TEND_* variable the code reads has a
// row in README's configuration table whose default is the code's. A default
// that is a value must appear as `value`; one that is a behaviour (off,
// computed) must be described with the words given here.
func TestEveryVariableIsDocumented(t *testing.T) {
	s, err := loadSettings(envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	value := func(v string) string { return "`" + v + "`" }
	// The default each variable has in the code, as the README must show it.
	want := map[string]string{
		"TEND_DATABASE_URL":          "127.0.0.1:5432",
		"TEND_ADDR":                  value(s.Addr),
		"TEND_PUBLIC_URL":            "the request's scheme and Host",
		"TEND_TLS_CERT_FILE":         "plain HTTP",
		"TEND_TLS_KEY_FILE":          "plain HTTP",
		"TEND_DB_MAX_CONNS":          value(strconv.Itoa(int(s.DBMaxConns))),
		"TEND_NOTIFY_WORKERS":        value(strconv.Itoa(s.NotifyWorkers)),
		"TEND_FETCH_COOLDOWN":        value(s.FetchCooldown.String()),
		"TEND_INGEST_TRANSACTIONS":   "number of CPUs, at least 2",
		"TEND_OBSERVED_HORIZON":      value(engine.DefaultObservedHorizon.Format(time.DateOnly)),
		"TEND_RATE_LIMIT":            value(strconv.FormatFloat(s.RateLimit, 'f', -1, 64)),
		"TEND_FAILED_AUTH_RATE":      value(strconv.FormatFloat(s.FailedAuthRate, 'f', -1, 64)),
		"TEND_OIDC_ISSUER":           "single sign-on off",
		"TEND_OIDC_AUDIENCE":         "single sign-on off",
		"TEND_OIDC_ALGORITHMS":       "`RS256,ES256`",
		"TEND_AUDIT_SIGNING_KEY":     "checkpoints unsigned",
		"TEND_AUDIT_PUBLIC_KEY":      "the signing key's public half",
		"TEND_WEBPUSH_ALLOWED_HOSTS": "major browser push services",
		"TEND_VAPID_PUBLIC_KEY":      "Web Push off",
		"TEND_VAPID_PRIVATE_KEY":     "Web Push off",
		"TEND_VAPID_SUBJECT":         value(s.VAPIDSubject),
		"TEND_FCM_CREDENTIALS_FILE":  "FCM off",
		"TEND_FCM_PROJECT_ID":        "FCM off",
		"TEND_FCM_ENDPOINT":          "FCM off",
		"TEND_APNS_KEY_FILE":         "APNs off",
		"TEND_APNS_KEY_ID":           "APNs off",
		"TEND_APNS_TEAM_ID":          "APNs off",
		"TEND_APNS_TOPIC":            "APNs off",
		"TEND_APNS_ENDPOINT":         "APNs off",
		"TEND_APNS_CRITICAL_ALERTS":  value(strconv.FormatBool(s.APNsCritical)),
		"TEND_LOG_LEVEL":             value(strings.ToLower(s.LogLevel.String())),
		"TEND_PPROF_ADDR":            "off",
		"TEND_TOKEN":                 "none",
		"TEND_ENCRYPTION_KEYS":       "none",
		"TEND_RECORD_PUBLIC_KEY":     "end-to-end encryption off",
		"TEND_MESSAGE_PUSH_HOLD":     value(s.MessagePushHold.String()),
		"TEND_ATTACHMENT_MAX_BYTES":  value(strconv.FormatInt(s.AttachmentMaxBytes, 10)),
		"TEND_MEDIA_MAX_BYTES":       value(strconv.FormatInt(s.MediaMaxBytes, 10)),
		"TEND_PRESENCE_IDLE":         value(s.PresenceIdle.String()),
		"TEND_MQTT_ADDR":             "MQTT off",
		"TEND_MQTT_TLS_CERT":         "plain MQTT",
		"TEND_MQTT_TLS_KEY":          "plain MQTT",
		"TEND_MQTT_WS_ADDR":          "off",
		"TEND_MQTT_QOS0":             value(strconv.FormatBool(s.MQTT.QoS0)),
		"TEND_MQTT_BROKER":           "broker-cluster mode off",
		"TEND_MQTT_BROKER_CLIENT_ID": "`tend-` and the host name",
		"TEND_APP_NAME":              value(s.App.Name),
		"TEND_APP_COLOR":             value(s.App.Color),
		"TEND_APP_BACKGROUND":        value(s.App.Background),
		"TEND_APP_IDLE_LOCK":         value(s.App.IdleLock.String()),
		"TEND_CORS_ORIGINS":          "same origin only",
	}
	if s.TLSCertFile != "" || s.TLSKeyFile != "" {
		t.Errorf("TLS is on by default: %q, %q", s.TLSCertFile, s.TLSKeyFile)
	}
	documented := readmeConfig(t)
	inCode := envVarsInCode(t)
	if len(inCode) < 20 {
		t.Fatalf("found only %d variables in the code: the scan is broken", len(inCode))
	}
	for v, path := range inCode {
		w, known := want[v]
		if !known {
			t.Errorf("%s (read in %s) has no expected default here: add it, and a row in README's configuration table", v, path)
			continue
		}
		cell, ok := documented[v]
		switch {
		case !ok:
			t.Errorf("%s (read in %s) is not in README's configuration table", v, path)
		case !strings.Contains(cell, w):
			t.Errorf("README gives %s the default %q; the code's is %s", v, cell, w)
		}
	}
	for v := range documented {
		if _, ok := inCode[v]; !ok {
			t.Errorf("README documents %s, which no code reads", v)
		}
	}
}

// TestEveryMetricIsDocumented: every metric the code registers is listed in
// docs/operations.md, and the page lists none the code does not register.
func TestEveryMetricIsDocumented(t *testing.T) {
	re := regexp.MustCompile(`(?:Name:\s*|NewDesc\(\s*)"(tend_[a-z0-9_]+)"`)
	inCode := map[string]string{}
	goSources(t, func(path string, src []byte) {
		for _, m := range re.FindAllSubmatch(src, -1) {
			inCode[string(m[1])] = path
		}
	})
	if len(inCode) < 10 {
		t.Fatalf("found only %d metrics in the code: the scan is broken", len(inCode))
	}
	b, err := os.ReadFile(filepath.Join(repoRoot, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	ops := string(b)
	for m, path := range inCode {
		if !regexp.MustCompile("`" + m + "[`{]").MatchString(ops) {
			t.Errorf("metric %s (registered in %s) is not listed in docs/operations.md", m, path)
		}
	}
	for _, m := range regexp.MustCompile("`(tend_[a-z0-9_]+)[`{]").FindAllStringSubmatch(ops, -1) {
		if _, ok := inCode[m[1]]; !ok {
			t.Errorf("docs/operations.md lists %s, which the code does not register", m[1])
		}
	}
}

// docFiles is README.md and every page under docs/.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	return append(files, filepath.Join(repoRoot, "README.md"))
}

// TestDocLinksResolve: every relative link in the docs points at a file or
// directory of the repository.
func TestDocLinksResolve(t *testing.T) {
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	checked := 0
	for _, f := range docFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target, _, _ := strings.Cut(m[1], "#")
			if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			checked++
			if _, err := os.Stat(filepath.Join(filepath.Dir(f), target)); err != nil {
				t.Errorf("%s links to %s, which is not in the repository", strings.TrimPrefix(f, repoRoot+"/"), m[1])
			}
		}
	}
	if checked == 0 {
		t.Error("no relative link found: the scan is broken")
	}
}

// TestDocsStandAlone: the docs never send the reader to a specification the
// repository does not ship.
func TestDocsStandAlone(t *testing.T) {
	spec := regexp.MustCompile(`\bSPEC\b`)
	for _, f := range docFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if spec.MatchString(line) {
				t.Errorf("%s:%d mentions a SPEC: %s", strings.TrimPrefix(f, repoRoot+"/"), i+1, strings.TrimSpace(line))
			}
		}
	}
	if !slices.ContainsFunc(docFiles(t), func(f string) bool { return strings.HasSuffix(f, "operations.md") }) {
		t.Error("docs/operations.md not found")
	}
}
