package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var updateCommands = flag.Bool("update-commands", false, "rewrite docs/commands.md from the commands' -h")

// commandsDoc is the page that shows every command's -h.
var commandsDoc = filepath.Join(repoRoot, "docs", "commands.md")

// commandWord is a word of a command's name in the usage text ("keys",
// "push-receiver", "up|status").
var commandWord = regexp.MustCompile(`^[a-z][a-z-]*(\|[a-z][a-z-]*)*$`)

// usageCommands lists the commands `tend -h` names, in its order: each
// usage line's leading words, an alternative (up|status) giving one command
// each.
func usageCommands(t *testing.T) []string {
	t.Helper()
	var out []string
	for line := range strings.SplitSeq(usage, "\n") {
		rest, ok := strings.CutPrefix(line, "  tend ")
		if !ok {
			continue
		}
		rest, _, _ = strings.Cut(rest, "  ") // the description column
		var words []string
		for w := range strings.FieldsSeq(rest) {
			if !commandWord.MatchString(w) {
				break
			}
			words = append(words, w)
		}
		last := words[len(words)-1]
		for alt := range strings.SplitSeq(last, "|") {
			out = append(out, strings.Join(append(words[:len(words)-1:len(words)-1], alt), " "))
		}
	}
	if len(out) < 15 {
		t.Fatalf("only %d commands found in tend -h: the scan is broken", len(out))
	}
	return out
}

// helpText is what `tend <command> -h` prints (`tend -h` for "").
func helpText(t *testing.T, command string) string {
	t.Helper()
	args := append(strings.Fields(command), "-h")
	var stdout, stderr bytes.Buffer
	if err := runEnv(context.Background(), envMap(nil), args, &stdout, &stderr); err != nil {
		t.Fatalf("tend %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	if stdout.Len() == 0 {
		t.Fatalf("tend %s printed nothing", strings.Join(args, " "))
	}
	return stdout.String()
}

// docSections maps each "## tend …" heading of docs/commands.md to its
// first text block.
func docSections(t *testing.T, page string) (map[string]string, []string) {
	t.Helper()
	sections := map[string]string{}
	var order []string
	for _, part := range strings.Split(page, "\n## ")[1:] {
		heading, body, _ := strings.Cut(part, "\n")
		name := strings.TrimSpace(strings.Trim(heading, "`"))
		_, block, ok := strings.Cut(body, "```text\n")
		if ok {
			block, _, ok = strings.Cut(block, "```")
		}
		if !ok {
			t.Errorf("docs/commands.md: section %q has no text block", name)
			continue
		}
		sections[name] = block
		order = append(order, name)
	}
	return sections, order
}

// renderCommands writes docs/commands.md from the commands' -h.
func renderCommands(t *testing.T, commands []string) string {
	var b strings.Builder
	b.WriteString("# Commands\n\nEvery command of `tend`, with what its `-h` prints. `make test` holds this page to the program\n" +
		"(`go test ./cmd/tend -run TestCommandHelpMatchesDocs -update-commands` rewrites it after a change). The\n" +
		"environment variables are described in the README's Configuration section.\n")
	for _, c := range append([]string{""}, commands...) {
		fmt.Fprintf(&b, "\n## `%s`\n\n```text\n%s```\n", strings.TrimSpace("tend "+c), helpText(t, c))
	}
	return b.String()
}

// TestCommandHelpMatchesDocs: every command tend -h names has a section in
// docs/commands.md showing exactly what its -h prints, and the page shows no
// command the program lacks.
func TestCommandHelpMatchesDocs(t *testing.T) {
	commands := usageCommands(t)
	if *updateCommands {
		if err := os.WriteFile(commandsDoc, []byte(renderCommands(t, commands)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	page, err := os.ReadFile(commandsDoc)
	if err != nil {
		t.Fatal(err)
	}
	sections, order := docSections(t, string(page))
	want := []string{"tend"}
	for _, c := range commands {
		want = append(want, "tend "+c)
	}
	for _, name := range want {
		doc, ok := sections[name]
		if !ok {
			t.Errorf("docs/commands.md has no section for %s", name)
			continue
		}
		if got := helpText(t, strings.TrimSpace(strings.TrimPrefix(name, "tend"))); got != doc {
			t.Errorf("docs/commands.md shows for %s -h:\n%s\nthe program prints:\n%s", name, doc, got)
		}
	}
	for _, name := range order {
		if !slices.Contains(want, name) {
			t.Errorf("docs/commands.md has a section for %s, which tend -h does not name", name)
		}
	}
}
