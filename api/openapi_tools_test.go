package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tendhealth/tend/api"
)

// openAPIToolsDir holds the Node packages that check the OpenAPI document
// from the outside: openapi-typescript, openapi-fetch and tsc for a generated
// client, Spectral and Redocly for lint.
func openAPIToolsDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("openapi", "test"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// requireOpenAPITools returns node and the tools' directory, or skips (fails
// under CI=true) naming what is missing.
func requireOpenAPITools(t *testing.T) (node, dir string) {
	t.Helper()
	dir = openAPIToolsDir(t)
	var missing []string
	node, err := exec.LookPath("node")
	if err != nil {
		missing = append(missing, "Node.js (apt-get install nodejs npm)")
	}
	for _, pkg := range []string{"openapi-typescript", "openapi-fetch", "typescript", "@stoplight/spectral-cli", "@redocly/cli"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
			missing = append(missing, pkg+" (npm ci --prefix api/openapi/test)")
		}
	}
	needTools(t, "OpenAPI tooling", missing)
	return node, dir
}

// needTools skips a test whose tools are missing, naming them; under
// CI=true, where everything is installed, it fails instead.
func needTools(t *testing.T, what string, missing []string) {
	t.Helper()
	if len(missing) == 0 {
		return
	}
	msg := what + " not runnable: missing " + strings.Join(missing, ", ")
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// runNode runs a package's command-line script with node in dir and returns
// its standard output; a failure shows both outputs.
func runNode(t *testing.T, node, dir string, env []string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(node, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\n%s\n%s", strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes()
}

// servedDocument is /openapi.json as the server serves it.
func servedDocument(t *testing.T) []byte {
	t.Helper()
	srv, err := api.New(api.Config{})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", "/openapi.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d", rec.Code)
	}
	return rec.Body.Bytes()
}

// eachOperation calls f with every operation of the OpenAPI document.
func eachOperation(t *testing.T, doc []byte, f func(path, method string, op json.RawMessage)) {
	t.Helper()
	var d struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	for path, item := range d.Paths {
		for method, raw := range item {
			if method != "parameters" {
				f(path, method, raw)
			}
		}
	}
}

// listOperations are the document's list operations (operationId list…).
func listOperations(t *testing.T, doc []byte) []string {
	t.Helper()
	var ops []string
	eachOperation(t, doc, func(_, _ string, raw json.RawMessage) {
		var op struct {
			OperationID string `json:"operationId"`
		}
		if json.Unmarshal(raw, &op) == nil && strings.HasPrefix(op.OperationID, "list") {
			ops = append(ops, op.OperationID)
		}
	})
	slices.Sort(ops)
	if len(ops) < 10 {
		t.Fatalf("only %d list operations found: %v", len(ops), ops)
	}
	return ops
}

// typeHoles are what openapi-typescript writes for a schema it cannot type:
// an array of unknown, an empty object, an intersection that adds nothing.
var typeHoles = regexp.MustCompile(`unknown\[\]|Record<string, never>\[\]|& Record<string, never>|& unknown\b|: Record<string, never>;`)

// TestTypeScriptClient generates TypeScript types from the served OpenAPI
// document with openapi-typescript, type-checks a small openapi-fetch client
// with tsc --strict (every list operation, typed fields of each item, a
// schedule creation; no cast), and runs it against a live server whose
// exchanges are also validated against the document.
func TestTypeScriptClient(t *testing.T) {
	t.Parallel()
	node, dir := requireOpenAPITools(t)
	s := newSetup(t)
	patientToken := s.userToken(t, map[string]any{"name": "Sam Lee", "role": "patient", "patient_id": s.patientID})
	var users struct{ Items []struct{ ID string } }
	s.admin.do("GET", "/v1/users?role=clinician", nil).decode(t, &users)
	if len(users.Items) != 1 {
		t.Fatalf("clinicians: %+v", users)
	}
	r := s.admin.do("GET", "/openapi.json", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d", r.status)
	}

	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "openapi.json"), r.body, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"client.ts", "tsconfig.json", "package.json"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "node_modules"), filepath.Join(work, "node_modules")); err != nil {
		t.Fatal(err)
	}
	bin := func(pkg, script string) string { return filepath.Join(dir, "node_modules", pkg, script) }
	runNode(t, node, work, nil, bin("openapi-typescript", "bin/cli.js"), "openapi.json", "-o", "schema.d.ts")
	types, err := os.ReadFile(filepath.Join(work, "schema.d.ts"))
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(types), "\n") {
		if typeHoles.MatchString(line) && !strings.Contains(line, "webhooks") && !strings.Contains(line, "$defs") &&
			!strings.Contains(line, `"application/json": Record<string, never>`) { // a body that must be {}
			t.Errorf("schema.d.ts:%d has a hole: %s", i+1, strings.TrimSpace(line))
		}
	}
	runNode(t, node, work, nil, bin("typescript", "bin/tsc"), "-p", ".")

	env, _ := json.Marshal(map[string]string{"url": s.admin.base, "admin": s.admin.token, "clinician": s.clinician.token,
		"patient": patientToken, "patient_id": s.patientID, "clinician_id": users.Items[0].ID})
	out := runNode(t, node, work, []string{"TEND_CLIENT_ENV=" + string(env)}, filepath.Join("out", "client.js"))
	var res struct {
		OK     bool     `json:"ok"`
		Called []string `json:"called"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &res); err != nil || !res.OK {
		t.Fatalf("client output: %v\n%s", err, out)
	}
	for _, op := range listOperations(t, r.body) {
		if !slices.Contains(res.Called, op) {
			t.Errorf("the TypeScript client does not call %s (api/openapi/test/client.ts)", op)
		}
	}
	if !slices.Contains(res.Called, "createSchedule") {
		t.Error("the TypeScript client does not create a schedule")
	}
}

// keptWarnings are the lint warnings the document keeps, with the reason.
// Any error, or any other warning, fails TestOpenAPILint.
var keptWarnings = map[string]string{
	// Spectral: an operation's summary says what it does; a description is
	// written where there is more to say (paging, idempotency, limits).
	"operation-description": "summaries carry the meaning; descriptions only where there is more to say",
}

// TestOpenAPILint lints the served document with Spectral (spectral:oas)
// and Redocly (recommended): no errors, and no warnings but the kept ones.
func TestOpenAPILint(t *testing.T) {
	t.Parallel()
	node, dir := requireOpenAPITools(t)
	work := t.TempDir()
	doc := filepath.Join(work, "openapi.json")
	if err := os.WriteFile(doc, servedDocument(t), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("spectral", func(t *testing.T) {
		cmd := exec.Command(node, filepath.Join(dir, "node_modules", "@stoplight", "spectral-cli", "dist", "index.js"),
			"lint", "--ruleset", filepath.Join(dir, ".spectral.yaml"), "--format", "json", "--fail-severity", "error", doc)
		out, err := cmd.Output()
		if err != nil {
			t.Errorf("spectral: %v", err)
		}
		var results []struct {
			Code     string `json:"code"`
			Message  string `json:"message"`
			Severity int    `json:"severity"`
			Path     []any  `json:"path"`
		}
		if err := json.Unmarshal(out, &results); err != nil {
			t.Fatalf("spectral output: %v\n%s", err, out)
		}
		for _, r := range results {
			if _, kept := keptWarnings[r.Code]; r.Severity == 0 || !kept {
				t.Errorf("spectral %s (severity %d) at %v: %s", r.Code, r.Severity, r.Path, r.Message)
			}
		}
	})
	t.Run("redocly", func(t *testing.T) {
		cmd := exec.Command(node, filepath.Join(dir, "node_modules", "@redocly", "cli", "bin", "cli.js"),
			"lint", "--config", filepath.Join(dir, "redocly.yaml"), "--format", "json", doc)
		cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true")
		out, err := cmd.Output()
		if err != nil {
			t.Errorf("redocly: %v", err)
		}
		var res struct {
			Totals   struct{ Errors, Warnings int }
			Problems []struct {
				RuleID   string `json:"ruleId"`
				Severity string `json:"severity"`
				Message  string `json:"message"`
			}
		}
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("redocly output: %v\n%s", err, out)
		}
		for _, p := range res.Problems {
			if _, kept := keptWarnings[p.RuleID]; p.Severity == "error" || !kept {
				t.Errorf("redocly %s (%s): %s", p.RuleID, p.Severity, p.Message)
			}
		}
	})
}
