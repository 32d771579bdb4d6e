package main

import (
	"fmt"
	"io"
	"runtime/debug"
)

// commit is the VCS revision, set by `make build` with
// -ldflags "-X main.commit=…" (the Makefile builds with -buildvcs=false, so
// the build info may not carry it).
var commit string

func version(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", "", "Prints the module version, the VCS commit and the Go version the binary was built with.", stdout, stderr)
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	info, _ := debug.ReadBuildInfo()
	fmt.Fprintln(stdout, versionLine(info, commit))
	return nil
}

// versionLine describes a build: the module version ("(devel)" for a local
// build), the commit (the build info's vcs.revision, else ldCommit, else
// "unknown"; "+dirty" when built from modified files) and the Go version.
func versionLine(info *debug.BuildInfo, ldCommit string) string {
	if info == nil {
		info = &debug.BuildInfo{}
	}
	ver := info.Main.Version
	if ver == "" {
		ver = "(devel)"
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		rev = ldCommit
	}
	if rev == "" {
		rev = "unknown"
	}
	if dirty {
		rev += "+dirty"
	}
	goVer := info.GoVersion
	if goVer == "" {
		goVer = "unknown Go"
	}
	return fmt.Sprintf("tend %s (commit %s, %s)", ver, rev, goVer)
}
