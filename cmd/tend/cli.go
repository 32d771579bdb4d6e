package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// cmdFlags is a command's flag set. -h and --help print the command's usage
// and flags to stdout and end the command successfully; a bad flag prints
// them to stderr and exits 2. Defaults shown never come from the
// environment: a flag that falls back to a variable says so in its text.
type cmdFlags struct {
	*flag.FlagSet
	stdout, stderr io.Writer
}

// newFlags makes the flag set of `tend <name>`; synopsis follows the name in
// the usage line and about (optional) explains the command.
// databaseURLUsage describes every command's --database-url: the database
// resolution of resolveDatabase.
const databaseURLUsage = "Postgres connection string (default: $TEND_DATABASE_URL, else the database tend on 127.0.0.1:5432, created if missing)"

func newFlags(name, synopsis, about string, stdout, stderr io.Writer) *cmdFlags {
	fs := flag.NewFlagSet("tend "+name, flag.ContinueOnError)
	f := &cmdFlags{FlagSet: fs, stdout: stdout, stderr: stderr}
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintln(w, strings.TrimSpace("usage: tend "+name+" "+synopsis))
		if about != "" {
			fmt.Fprintf(w, "\n%s\n", about)
		}
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n == 0 {
			fmt.Fprintln(w, "\nno flags")
			return
		}
		fmt.Fprintln(w, "\nflags:")
		fs.PrintDefaults()
	}
	return f
}

// parse parses args. On -h it returns flag.ErrHelp (which run turns into
// success) after printing the usage to stdout.
func (f *cmdFlags) parse(args []string) error {
	var buf bytes.Buffer
	f.SetOutput(&buf)
	err := f.FlagSet.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		_, _ = io.Copy(f.stdout, &buf)
		return flag.ErrHelp
	case err != nil:
		_, _ = io.Copy(f.stderr, &buf)
		return &exitError{code: 2, err: err}
	}
	return nil
}

// isHelp reports whether args asks a command group for its usage.
func isHelp(args []string) bool {
	return len(args) > 0 && slices.Contains([]string{"-h", "-help", "--help", "help"}, args[0])
}

// groupUsage answers `tend <group> -h` with the group's usage on stdout, and a
// missing or unknown subcommand with it on stderr and exit 2.
func groupUsage(args []string, usage string, stdout io.Writer) error {
	if isHelp(args) {
		fmt.Fprintln(stdout, usage)
		return flag.ErrHelp
	}
	if len(args) == 0 {
		return &exitError{code: 2, err: errors.New(usage)}
	}
	return &exitError{code: 2, err: fmt.Errorf("unknown subcommand %q\n%s", args[0], usage)}
}

// set reports whether the flag name was given on the command line.
func (f *cmdFlags) set(name string) bool {
	found := false
	f.Visit(func(fl *flag.Flag) { found = found || fl.Name == name })
	return found
}
