package main

import (
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
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
	for _, pkg := range []string{module + "/rpm", module + "/rules", module + "/rules/sim", module + "/fhir", module + "/internal/text"} {
		for _, d := range deps(t, pkg) {
			// fhir handles ids as github.com/google/uuid values; that package
			// links net (for version-1 node ids), which fhir never calls.
			if pkg == module+"/fhir" && d == "net" {
				continue
			}
			if slices.Contains(ioPkgs, d) || strings.HasPrefix(d, "github.com/jackc/") || strings.HasPrefix(d, "github.com/riverqueue/") {
				t.Errorf("%s depends on %s: it must stay pure", pkg, d)
			}
			if strings.HasPrefix(d, module+"/") && d != pkg && d != module+"/rpm" && d != module+"/internal/text" &&
				!(pkg == module+"/rules/sim" && d == module+"/rules") {
				t.Errorf("%s depends on %s: only rpm and internal/text are allowed", pkg, d)
			}
		}
		for _, imp := range goList(t, `{{join .Imports " "}}`, pkg) {
			if imp == "os" || imp == "io/fs" && pkg != module+"/rules" {
				t.Errorf("%s imports %s directly: it must not touch files", pkg, imp)
			}
		}
	}
	// sealed (encryption at rest) and e2ee (end-to-end encryption) are crypto
	// and encoding only: no network, database, logging or other Tend package
	// anywhere below them.
	for _, pkg := range []string{module + "/sealed", module + "/e2ee"} {
		for _, d := range deps(t, pkg) {
			if d == pkg {
				continue
			}
			if slices.Contains(ioPkgs, d) || strings.Contains(strings.Split(d, "/")[0], ".") {
				t.Errorf("%s depends on %s: it must stay crypto and encoding only", pkg, d)
			}
		}
		for _, imp := range goList(t, `{{join .Imports " "}}`, pkg) {
			if !strings.HasPrefix(imp, "crypto/") && !strings.HasPrefix(imp, "encoding/") && !slices.Contains([]string{"errors", "fmt", "strings"}, imp) {
				t.Errorf("%s imports %s: only crypto, encoding, errors, fmt and strings", pkg, imp)
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
		module + "/api":        {module + "/cmd/tend", module + "/api/mqtt"},
		module + "/api/mqtt":   {module + "/cmd/tend"},
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
	// One LISTEN connection per process, for the live stream: only
	// engine/stream imports pgxlisten.
	for _, line := range goList(t, `{{.ImportPath}}|{{join .Imports ","}}`, module+"/...") {
		pkg, imps, _ := strings.Cut(line, "|")
		if pkg != module+"/engine/stream" && slices.Contains(strings.Split(imps, ","), "github.com/jackc/pgxlisten") {
			t.Errorf("%s imports pgxlisten: only engine/stream listens", pkg)
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

// TestEngineRooms guards the engine's rooms: use-case packages never import
// each other; they share only access, audit, alerting, delivery and
// engine/internal/*; the shared packages import no use case; and only the
// root (the composition root) wires use cases together.
func TestEngineRooms(t *testing.T) {
	shared := map[string]bool{"access": true, "audit": true, "alerting": true, "delivery": true}
	// What each shared room may import of the engine, beyond engine/internal/*.
	sharedMay := map[string][]string{
		"access":   {},
		"audit":    {"access"},
		"delivery": {"access", "audit"},
		"alerting": {"access", "audit", "delivery"},
	}
	pkgs := goList(t, "{{.ImportPath}}", module+"/engine/...")
	rooms := 0
	for _, pkg := range pkgs {
		room, ok := strings.CutPrefix(pkg, module+"/engine/")
		if !ok || room == "enginetest" || strings.HasPrefix(room, "enginetest/") {
			continue // the root wires everything; enginetest and enginetest/pushtest are test helpers
		}
		rooms++
		internal := strings.HasPrefix(room, "internal/")
		for _, imp := range goList(t, `{{join .Imports " "}}`, pkg) {
			dep, ok := strings.CutPrefix(imp, module+"/engine")
			if !ok {
				continue
			}
			dep = strings.TrimPrefix(dep, "/")
			switch {
			case dep == "":
				t.Errorf("%s imports the composition root %s", pkg, imp)
			case strings.HasPrefix(dep, "internal/"):
				// every room may use the internal toolbox
			case internal:
				if dep != "access" {
					t.Errorf("%s imports %s: engine/internal/* may use only access", pkg, imp)
				}
			case shared[room]:
				if !slices.Contains(sharedMay[room], dep) {
					t.Errorf("%s imports %s: the shared room %s may import only %v and engine/internal/*", pkg, imp, room, sharedMay[room])
				}
			case !shared[dep]:
				t.Errorf("%s imports %s: use-case packages never import each other (only access, audit, alerting, delivery, engine/internal/*)", pkg, imp)
			}
		}
	}
	if rooms < 10 {
		t.Fatalf("found only %d engine packages", rooms)
	}
	// api and its MQTT listener reach the use cases through the root's
	// narrow interfaces, never a room directly.
	for _, pkg := range []string{module + "/api", module + "/api/mqtt"} {
		for _, imp := range goList(t, `{{join .Imports " "}}`, pkg) {
			if strings.HasPrefix(imp, module+"/engine/") {
				t.Errorf("%s imports %s: depend on the engine root's interfaces", pkg, imp)
			}
			// The MQTT listener is a transport beside HTTP: it answers
			// through api's transport-neutral entry points and never
			// touches the database or the job queue itself.
			if strings.HasPrefix(imp, "github.com/jackc/") || strings.HasPrefix(imp, "github.com/riverqueue/") {
				t.Errorf("%s imports %s: go through the engine", pkg, imp)
			}
		}
	}
}

// TestInjectedClock: engine and api read the time only through their
// injected clocks, so tests can move it; a new time.Now() call fails here.
func TestInjectedClock(t *testing.T) {
	dirs := goList(t, "{{.Dir}}", module+"/engine/...", module+"/api", module+"/api/mqtt")
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") || strings.Contains(f, "enginetest") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for i, line := range strings.Split(string(src), "\n") {
				if strings.Contains(line, "time.Now()") {
					t.Errorf("%s:%d calls time.Now(): use the injected clock", f, i+1)
				}
			}
		}
	}
}

// Size limits: a function fits on a screen and a file reads in one sitting.
const (
	maxFuncLines = 80
	maxFileLines = 600
)

// longFuncs are the functions over maxFuncLines that stay one piece, each
// with the reason. At most five: a new long function is split, not listed.
var longFuncs = map[string]string{
	"api/server.go:routes":             "the one list of every route, read top to bottom",
	"fhir/encode.go:appendObservation": "one Observation's JSON in field order, the allocation-free encoder's hot path",
}

// TestSize: no function over maxFuncLines and no file over maxFileLines
// outside tests, test helpers and fakes (packages named …test) and the
// reviewed list above.
func TestSize(t *testing.T) {
	if len(longFuncs) > 5 {
		t.Errorf("%d long functions allowed; at most 5 may stay one piece", len(longFuncs))
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	over := map[string]int{} // file or file:function → lines
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if name == "node_modules" || name == "testdata" || strings.HasPrefix(name, ".") || strings.HasSuffix(name, "test") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		return measure(filepath.ToSlash(rel), path, over)
	})
	if err != nil {
		t.Fatal(err)
	}
	for what, n := range over {
		if longFuncs[what] == "" {
			t.Errorf("%s has %d lines: split it (functions at most %d lines, files at most %d)", what, n, maxFuncLines, maxFileLines)
		}
	}
	for what := range longFuncs {
		if _, ok := over[what]; !ok {
			t.Errorf("%s is listed in longFuncs but is no longer over the limit (or gone): remove it from the list", what)
		}
	}
}

// measure records the file at path (rel from the module root) and its
// functions when they are over the limits.
func measure(rel, path string, over map[string]int) error {
	fset := gotoken.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, 0)
	if err != nil {
		return err
	}
	if n := fset.File(f.Pos()).LineCount(); n > maxFileLines {
		over[rel] = n
	}
	for _, decl := range f.Decls {
		fd, ok := decl.(*ast.FuncDecl)
		if !ok || fd.Body == nil {
			continue
		}
		if n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1; n > maxFuncLines {
			over[rel+":"+fd.Name.Name] = n
		}
	}
	return nil
}
