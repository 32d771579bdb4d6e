package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

// secretEnv holds a secret in every variable a default could leak from.
var secretEnv = map[string]string{
	"TEND_DATABASE_URL":         "postgres://tend:db-s3cret@db.internal:5432/tend",
	"TEND_TOKEN":                "tok-s3cret",
	"TEND_VAPID_PRIVATE_KEY":    "vapid-s3cret",
	"TEND_FCM_CREDENTIALS_FILE": "/etc/tend/fcm-s3cret.json",
	"TEND_APNS_KEY_FILE":        "/etc/tend/apns-s3cret.p8",
	"TEND_TLS_KEY_FILE":         "/etc/tend/tls-s3cret.key",
	"TEND_AUDIT_SIGNING_KEY":    "audit-s3cret",
	"TEND_ENCRYPTION_KEYS":      "k1:s3cret" + strings.Repeat("A", 37) + "=",
}

// cliCommands is every command and subcommand with the flags its -h must list.
var cliCommands = []struct {
	args  []string
	flags []string
}{
	{[]string{"serve"}, []string{"-addr", "-database-url"}},
	{[]string{"worker"}, []string{"-database-url"}},
	{[]string{"migrate"}, []string{"up", "status"}},
	{[]string{"migrate", "up"}, []string{"-database-url"}},
	{[]string{"migrate", "status"}, []string{"-database-url"}},
	{[]string{"token"}, []string{"create", "revoke"}},
	{[]string{"token", "revoke"}, []string{"-database-url"}},
	{[]string{"token", "create"}, []string{"-role", "-name", "-user", "-patient", "-org", "-database-url"}},
	{[]string{"org"}, []string{"create", "list"}},
	{[]string{"org", "create"}, []string{"-name", "-slug", "-timezone", "-database-url"}},
	{[]string{"org", "list"}, []string{"-database-url"}},
	{[]string{"retention"}, []string{"run"}},
	{[]string{"retention", "run"}, []string{"-dry-run", "-database-url"}},
	{[]string{"demo"}, []string{"-duration", "-patients", "-interval", "-env-file"}},
	{[]string{"load"}, []string{"-url", "-token", "-devices", "-patients", "-duration", "-warmup", "-rate", "-batch", "-abnormal", "-mode"}},
	{[]string{"rules"}, []string{"check", "backtest"}},
	{[]string{"rules", "check"}, []string{"FILE"}},
	{[]string{"rules", "backtest"}, []string{"-rule-id", "-file", "-since", "-until", "-examples", "-json", "-patient", "-program", "-database-url"}},
	{[]string{"audit"}, []string{"verify", "checkpoint"}},
	{[]string{"audit", "verify"}, []string{"-checkpoint", "-public-key", "-database-url"}},
	{[]string{"audit", "checkpoint"}, []string{"-database-url"}},
	{[]string{"simulate"}, []string{"-pack", "-seed", "-patients", "-weeks", "-artefact-rate", "-html"}},
	{[]string{"keys"}, []string{"generate", "rotate"}},
	{[]string{"keys", "generate"}, []string{"-id", "-rotate"}},
	{[]string{"keys", "rotate"}, []string{"-batch", "-database-url"}},
	{[]string{"records"}, []string{"keygen", "export"}},
	{[]string{"patient"}, []string{"export", "erase", "restrict"}},
	{[]string{"patient", "export"}, []string{"-patient", "-out", "-database-url"}},
	{[]string{"patient", "erase"}, []string{"-patient", "-reason", "-database-url"}},
	{[]string{"patient", "restrict"}, []string{"-patient", "-reason", "-lift", "-database-url"}},
	{[]string{"records", "keygen"}, []string{"-out"}},
	{[]string{"records", "export"}, []string{"-record-key", "-patient", "-database-url"}},
	{[]string{"vapid"}, []string{"generate"}},
	{[]string{"vapid", "generate"}, nil},
	{[]string{"push-receiver"}, []string{"-subscription"}},
	{[]string{"version"}, nil},
}

// TestEveryCommandAnswersHelp: -h and --help print the command's usage and
// flags on stdout and succeed, do nothing else (no file opened, no key made,
// no database touched) and show no secret from the environment.
func TestEveryCommandAnswersHelp(t *testing.T) {
	t.Chdir(t.TempDir()) // a file named -h here would be opened by a naive `rules check`
	if err := os.WriteFile("-h", []byte("not: [a rule pack"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range cliCommands {
		for _, h := range []string{"-h", "--help"} {
			args := append(append([]string{}, c.args...), h)
			var out, errOut bytes.Buffer
			err := runEnv(context.Background(), envMap(secretEnv), args, &out, &errOut)
			if err != nil {
				t.Errorf("tend %s: %v (exit %d); want success", strings.Join(args, " "), err, exitCode(err))
				continue
			}
			if !strings.HasPrefix(out.String(), "usage: tend "+c.args[0]) {
				t.Errorf("tend %s: stdout does not start with its usage:\n%s", strings.Join(args, " "), out.String())
			}
			for _, f := range c.flags {
				if !strings.Contains(out.String(), f) {
					t.Errorf("tend %s does not list %s:\n%s", strings.Join(args, " "), f, out.String())
				}
			}
			all := out.String() + errOut.String()
			if strings.Contains(all, "s3cret") {
				t.Errorf("tend %s shows a secret from the environment:\n%s", strings.Join(args, " "), all)
			}
			if strings.Contains(all, "PRIVATE_KEY=") || strings.Contains(all, "not: [a rule pack") {
				t.Errorf("tend %s did its work instead of answering -h:\n%s", strings.Join(args, " "), all)
			}
		}
	}
	var out bytes.Buffer
	for _, top := range []string{"-h", "--help", "help"} {
		out.Reset()
		if err := runEnv(context.Background(), envMap(secretEnv), []string{top}, &out, &out); err != nil || !strings.Contains(out.String(), "tend serve") {
			t.Errorf("tend %s: %v\n%s", top, err, out.String())
		}
	}
}

// TestHelpCoversEveryCommand: every command the top-level usage lists is in
// cliCommands, so a new command cannot skip the -h test.
func TestHelpCoversEveryCommand(t *testing.T) {
	tested := map[string]bool{}
	for _, c := range cliCommands {
		tested[strings.Join(c.args, " ")] = true
	}
	re := regexp.MustCompile(`(?m)^  tend ([a-z][a-z-]*)(?: ([a-z|]+))?`)
	for _, m := range re.FindAllStringSubmatch(usage, -1) {
		if !tested[m[1]] {
			t.Errorf("tend %s is not in cliCommands", m[1])
		}
		for sub := range strings.SplitSeq(m[2], "|") {
			if sub != "" && !tested[m[1]+" "+sub] {
				t.Errorf("tend %s %s is not in cliCommands", m[1], sub)
			}
		}
	}
	if len(tested) < 16 {
		t.Errorf("only %d commands found", len(tested))
	}
}

// TestBadFlagsExit2: a bad flag or subcommand prints the usage on stderr and
// exits 2 (not 0 and not 1).
func TestBadFlagsExit2(t *testing.T) {
	for _, args := range [][]string{{"serve", "--bogus"}, {"migrate", "sideways"}, {"token"}, {"rules", "check"},
		{"rules", "check", "a", "b"}, {"vapid", "generate", "extra"},
		{"keys"}, {"keys", "spin"}, {"keys", "rotate", "--batch", "0"}, {"version", "--bogus"}, {"nope"}} {
		var out, errOut bytes.Buffer
		err := runEnv(context.Background(), envMap(secretEnv), args, &out, &errOut)
		if exitCode(err) != 2 {
			t.Errorf("tend %s: exit %d (%v), want 2", strings.Join(args, " "), exitCode(err), err)
		}
		if strings.Contains(out.String()+errOut.String(), "s3cret") {
			t.Errorf("tend %s shows a secret", strings.Join(args, " "))
		}
	}
}

func TestVersionLine(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: module, Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}}}
	if got, want := versionLine(info, "ignored"), "tend v1.2.3 (commit abc123+dirty, go1.26.8)"; got != want {
		t.Errorf("with VCS info: %q, want %q", got, want)
	}
	// -buildvcs=false: the commit comes from -ldflags -X main.commit.
	info = &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: module, Version: "(devel)"}}
	if got, want := versionLine(info, "def456"), "tend (devel) (commit def456, go1.26.8)"; got != want {
		t.Errorf("with ldflags: %q, want %q", got, want)
	}
	if got := versionLine(nil, ""); got != "tend (devel) (commit unknown, unknown Go)" {
		t.Errorf("no build info: %q", got)
	}
	var out bytes.Buffer
	if err := runEnv(context.Background(), envMap(nil), []string{"version"}, &out, &out); err != nil || !strings.HasPrefix(out.String(), "tend ") {
		t.Errorf("tend version: %v, %q", err, out.String())
	}
}
