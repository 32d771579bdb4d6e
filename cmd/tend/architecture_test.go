package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/tendhealth/tend"

// goList runs `go list` with a template over the given packages.
func goList(t *testing.T, format string, pkgs ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list", "-f", format}, pkgs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	return strings.Fields(string(out))
}

func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	return strings.Fields(string(out))
}

// TestImports guards the architecture (docs/architecture.md): rpm and rules are pure,
// notify never learns clinical vocabulary, and the layers point one way.
func TestImports(t *testing.T) {
	// Pure packages: no I/O, clock-free by review, and no I/O anywhere below them.
	ioPkgs := []string{"net", "net/http", "database/sql", "os/exec", "log", "log/slog"}
	for _, pkg := range []string{module + "/rpm", module + "/rules", module + "/rules/sim", module + "/fhir"} {
		for _, d := range deps(t, pkg) {
			// fhir handles ids as github.com/google/uuid values; that package
			// links net (for version-1 node ids), which fhir never calls.
			if pkg == module+"/fhir" && d == "net" {
				continue
			}
			if slices.Contains(ioPkgs, d) || strings.HasPrefix(d, "github.com/jackc/") || strings.HasPrefix(d, "github.com/riverqueue/") {
				t.Errorf("%s depends on %s: it must stay pure", pkg, d)
			}
			if strings.HasPrefix(d, module+"/") && d != pkg && d != module+"/rpm" && !(pkg == module+"/rules/sim" && d == module+"/rules") {
				t.Errorf("%s depends on %s: only rpm is allowed", pkg, d)
			}
		}
		for _, imp := range goList(t, `{{join .Imports " "}}`, pkg) {
			if imp == "os" || imp == "io/fs" && pkg != module+"/rules" {
				t.Errorf("%s imports %s directly: it must not touch files", pkg, imp)
			}
		}
	}
	// notify and its providers carry no clinical data.
	for _, pkg := range goList(t, "{{.ImportPath}}", module+"/notify/...") {
		for _, d := range deps(t, pkg) {
			if d == module+"/rpm" || d == module+"/rules" || d == module+"/engine" {
				t.Errorf("%s depends on %s: push code must not know clinical data", pkg, d)
			}
		}
	}
	// Layers point one way: engine below api below cmd.
	for pkg, banned := range map[string][]string{
		module + "/engine":     {module + "/api", module + "/cmd/tend"},
		module + "/api":        {module + "/cmd/tend"},
		module + "/migrations": {module + "/engine", module + "/api", module + "/rules"},
		// The test runner and pgping are build tools: they know Postgres, not Tend.
		module + "/cmd/tend/internal/testrun": {module + "/engine", module + "/api", module + "/rules", module + "/notify"},
		module + "/cmd/tend/internal/pgping":  {module + "/engine", module + "/api", module + "/rules", module + "/notify"},
	} {
		for _, d := range deps(t, pkg) {
			if slices.Contains(banned, d) {
				t.Errorf("%s depends on %s", pkg, d)
			}
		}
	}
	// Firebase's large graph stays inside notify/fcm (and the binary).
	for _, pkg := range []string{module + "/engine", module + "/api", module + "/notify/notifytest"} {
		for _, d := range deps(t, pkg) {
			if strings.HasPrefix(d, "firebase.google.com/") {
				t.Errorf("%s depends on %s: keep Firebase inside notify/fcm", pkg, d)
			}
		}
	}
}
