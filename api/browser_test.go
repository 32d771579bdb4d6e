package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The web pages' tests run in Node: unit tests with Node's own runner, and
// browser tests that drive Debian's Chromium with playwright-core. Each page
// keeps its scripts and node_modules in its own test directory.

// pageTestDir is the test directory of a web page the API serves
// ("console", "app"): its scripts and node_modules.
func pageTestDir(t *testing.T, page string) string {
	dir, err := filepath.Abs(filepath.Join(page, "test"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// servePage serves srv and gets the page at path: HTML, under a
// Content-Security-Policy that has every one of want and allows no inline
// code. It returns a client of the server and the page's answer.
func servePage(t *testing.T, srv http.Handler, path string, want ...string) (client, response) {
	t.Helper()
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	c := client{t: t, base: hs.URL}
	r := c.do("GET", path, nil)
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET %s: %d %s", path, r.status, r.header.Get("Content-Type"))
	}
	csp := r.header.Get("Content-Security-Policy")
	for _, w := range want {
		if !strings.Contains(csp, w) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, w)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("Content-Security-Policy allows inline code: %q", csp)
	}
	return c, r
}

// pageBrowser runs a web page's browser test script: node and Chromium,
// in the page's test directory.
type pageBrowser struct {
	dir, node, chromium string
}

// newPageBrowser finds what a page's browser test needs (Node, Chromium and
// the npm modules), or skips (fails under CI=true) naming what is missing.
func newPageBrowser(t *testing.T, page string, modules ...string) pageBrowser {
	t.Helper()
	dir := pageTestDir(t, page)
	node, chromium := requireNodeBrowser(t, dir, modules...)
	return pageBrowser{dir: dir, node: node, chromium: chromium}
}

// command runs script until ctx ends, with the server's address (BASE_URL),
// Chromium (CHROMIUM) and env in its environment.
func (p pageBrowser) command(ctx context.Context, script, baseURL string, env ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, p.node, script)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), "BASE_URL="+baseURL, "CHROMIUM="+p.chromium)
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

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
