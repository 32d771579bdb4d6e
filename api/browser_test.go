package api_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The web pages' tests run in Node: unit tests with Node's own runner, and
// browser tests that drive Debian's Chromium with playwright-core. Each page
// keeps its scripts and node_modules in its own test directory.

// runNodeUnits runs `node --test file` in dir and fails on any failure; it
// skips (fails under CI=true) without Node.
func runNodeUnits(t *testing.T, dir, file, what string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		msg := "Node.js not installed (apt-get install nodejs): " + what + " cannot run"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	cmd := exec.Command(node, "--test", file)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "# fail 0") {
		t.Fatalf("%s failed: %v\n%s", what, err, out)
	}
}

// requireNodeBrowser returns node and Chromium, or skips (fails under
// CI=true) naming what is missing: Node, Chromium, or one of the npm
// modules under dir/node_modules.
func requireNodeBrowser(t *testing.T, dir string, modules ...string) (node, chromium string) {
	t.Helper()
	chromium = os.Getenv("TEND_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	var missing []string
	node, err := exec.LookPath("node")
	if err != nil {
		missing = append(missing, "Node.js (apt-get install nodejs npm)")
	}
	if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, "Chromium at "+chromium+" (apt-get install chromium)")
	}
	rel, _ := filepath.Rel(filepath.Dir(filepath.Dir(dir)), dir)
	for _, m := range modules {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", m)); err != nil {
			missing = append(missing, fmt.Sprintf("%s (npm ci --prefix api/%s)", m, filepath.ToSlash(rel)))
		}
	}
	if len(missing) > 0 {
		msg := "browser test not runnable: missing " + strings.Join(missing, ", ")
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return node, chromium
}

// driveBrowser runs a browser script that talks over stdin and stdout: each
// line it prints goes to handle, which may answer with reply; its last line,
// "RESULT <json>", is decoded into result. It fails the test when the script
// fails or reports no result.
func driveBrowser(t *testing.T, cmd *exec.Cmd, result any, handle func(line string, reply func(string)) bool) {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reply := func(s string) {
		if _, err := fmt.Fprintln(stdin, s); err != nil {
			t.Fatal(err)
		}
	}
	got := false
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "RESULT "); ok {
			if err := json.Unmarshal([]byte(rest), result); err != nil {
				t.Fatalf("result %q: %v", line, err)
			}
			got = true
		} else if !handle(line, reply) {
			t.Logf("browser: %s", line)
		}
	}
	_, _ = io.Copy(io.Discard, stdout)
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil || !got {
		t.Fatalf("browser test failed (%v):\n%s", err, stderr.String())
	}
}
