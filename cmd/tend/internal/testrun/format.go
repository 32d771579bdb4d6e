package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// event is one line of `go test -json` (a test event or a build event).
type event struct {
	Time        time.Time
	Action      string
	Package     string
	Test        string
	Elapsed     float64
	Output      string
	FailedBuild string
	ImportPath  string
}

// pkgState is what the formatter knows of one package under test.
type pkgState struct {
	started               time.Time
	passed, failed, skips int
	output                strings.Builder             // package-level output (panics, TestMain)
	tests                 map[string]*strings.Builder // each running test's output
	failures              []string                    // output of each failed test
}

// formatter turns `go test -json` into one line per package, the output of
// each failed test, and on every tick the packages still running.
type formatter struct {
	w        io.Writer
	module   string // trimmed from package paths
	now      func() time.Time
	begun    time.Time
	pkgs     map[string]*pkgState
	builds   map[string]*strings.Builder
	skipped  []string
	failed   []string
	noTests  int
	finished int
}

func newFormatter(w io.Writer, module string, now func() time.Time) *formatter {
	return &formatter{w: w, module: module, now: now, begun: now(), pkgs: map[string]*pkgState{}, builds: map[string]*strings.Builder{}}
}

func (f *formatter) short(pkg string) string {
	if s := strings.TrimPrefix(pkg, f.module+"/"); s != pkg {
		return s
	}
	if pkg == f.module {
		return "."
	}
	return pkg
}

func (f *formatter) pkg(name string) *pkgState {
	p := f.pkgs[name]
	if p == nil {
		p = &pkgState{started: f.now(), tests: map[string]*strings.Builder{}}
		f.pkgs[name] = p
	}
	return p
}

// handle processes one event.
func (f *formatter) handle(e event) {
	switch e.Action {
	case "build-output":
		b := f.builds[e.ImportPath]
		if b == nil {
			b = &strings.Builder{}
			f.builds[e.ImportPath] = b
		}
		b.WriteString(e.Output)
		return
	case "build-fail":
		return // reported with the package that needed the build
	}
	if e.Package == "" {
		return
	}
	p := f.pkg(e.Package)
	if e.Test != "" {
		f.handleTest(p, e)
		return
	}
	switch e.Action {
	case "output":
		p.output.WriteString(e.Output)
	case "pass", "fail", "skip":
		f.finished++
		delete(f.pkgs, e.Package)
		f.finishPackage(e, p)
	}
}

func (f *formatter) handleTest(p *pkgState, e event) {
	b := p.tests[e.Test]
	if b == nil {
		b = &strings.Builder{}
		p.tests[e.Test] = b
	}
	switch e.Action {
	case "output":
		b.WriteString(e.Output)
	case "pass":
		p.passed++
		delete(p.tests, e.Test)
	case "skip":
		p.skips++
		f.skipped = append(f.skipped, fmt.Sprintf("%s %s: %s", f.short(e.Package), e.Test, skipReason(b.String())))
		delete(p.tests, e.Test)
	case "fail":
		p.failed++
		p.failures = append(p.failures, b.String())
		delete(p.tests, e.Test)
	}
}

func (f *formatter) finishPackage(e event, p *pkgState) {
	name := f.short(e.Package)
	switch {
	case e.Action == "skip" || (e.Action == "pass" && p.passed+p.skips == 0 && strings.Contains(p.output.String(), "no test files")):
		f.noTests++
		return
	case e.Action == "pass":
		fmt.Fprintf(f.w, "ok    %-28s %7s  %d passed%s\n", name, secs(e.Elapsed), p.passed, plural(p.skips, "skipped"))
		return
	}
	f.failed = append(f.failed, name)
	fmt.Fprintf(f.w, "FAIL  %-28s %7s  %d passed, %d failed%s\n", name, secs(e.Elapsed), p.passed, p.failed, plural(p.skips, "skipped"))
	if e.FailedBuild != "" {
		if b := f.builds[e.FailedBuild]; b != nil {
			fmt.Fprintf(f.w, "    build failed:\n%s", indent(b.String()))
		}
	}
	for _, out := range p.failures {
		fmt.Fprint(f.w, out) // go test indents it already
	}
	// Tests still "running" when the package failed (a panic, a timeout) and
	// output outside any test tell why.
	for _, t := range slices.Sorted(maps.Keys(p.tests)) {
		fmt.Fprint(f.w, indent(p.tests[t].String()))
	}
	if len(p.failures) == 0 || strings.Contains(p.output.String(), "panic:") {
		fmt.Fprint(f.w, indent(p.output.String()))
	}
}

// tick reports the packages still running, or that the build goes on.
func (f *formatter) tick() {
	now := f.now()
	if len(f.pkgs) == 0 {
		fmt.Fprintf(f.w, "…     building (%s, %d packages done)\n", now.Sub(f.begun).Round(time.Second), f.finished)
		return
	}
	var running []string
	for _, name := range slices.Sorted(maps.Keys(f.pkgs)) {
		running = append(running, fmt.Sprintf("%s (%s)", f.short(name), now.Sub(f.pkgs[name].started).Round(time.Second)))
	}
	fmt.Fprintf(f.w, "…     running %s\n", strings.Join(running, ", "))
}

// summary prints the totals and the skipped tests; it reports whether every
// package passed.
func (f *formatter) summary() bool {
	const maxSkips = 25
	if len(f.skipped) > 0 {
		fmt.Fprintf(f.w, "\nskipped tests (%d):\n", len(f.skipped))
		for i, s := range f.skipped {
			if i == maxSkips {
				fmt.Fprintf(f.w, "  … and %d more\n", len(f.skipped)-maxSkips)
				break
			}
			fmt.Fprintf(f.w, "  %s\n", s)
		}
	}
	fmt.Fprintf(f.w, "\n%d packages tested in %s (%d without tests)", f.finished-f.noTests, f.now().Sub(f.begun).Round(time.Second), f.noTests)
	if len(f.failed) > 0 {
		fmt.Fprintf(f.w, "; FAILED: %s\n", strings.Join(f.failed, ", "))
		return false
	}
	fmt.Fprintln(f.w, "; all passed")
	return true
}

// run reads events until r ends, ticking on tick (nil: never).
func (f *formatter) run(r io.Reader, tick <-chan time.Time) {
	lines := make(chan []byte)
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
		for sc.Scan() {
			lines <- slices.Clone(sc.Bytes())
		}
		close(lines)
	}()
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				return
			}
			var e event
			if err := json.Unmarshal(line, &e); err != nil {
				fmt.Fprintf(f.w, "%s\n", line) // not JSON: pass through (e.g. go's own errors)
				continue
			}
			f.handle(e)
		case <-tick:
			f.tick()
		}
	}
}

func skipReason(out string) string {
	for line := range strings.SplitSeq(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "=== ") || strings.HasPrefix(line, "--- SKIP") {
			continue
		}
		return line
	}
	return "(no reason given)"
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	var b strings.Builder
	for line := range strings.SplitSeq(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("    " + line + "\n")
	}
	return b.String()
}

func secs(s float64) string { return fmt.Sprintf("%.1fs", s) }

func plural(n int, what string) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", %d %s", n, what)
}
