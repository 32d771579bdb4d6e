package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/engine"
)

const patientUsage = `usage: tend patient export|erase|restrict [flags]
  export     write everything Tend holds about a patient to a zip (FHIR R4 Bundle and attachments)
  erase      erase a patient's personal data where no retention duty applies (crypto-shredding)
  restrict   restrict the processing of a patient's data (no rules, no reminders), or lift it with --lift
Run tend patient export -h, tend patient erase -h or tend patient restrict -h for the flags.`

// patientCmd runs the patient subcommands.
func patientCmd(ctx context.Context, env getenv, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "export" {
		return patientExport(ctx, env, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "erase" {
		return patientErase(ctx, env, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "restrict" {
		return patientRestrict(ctx, env, args[1:], stdout, stderr)
	}
	return groupUsage(args, patientUsage, stdout)
}

// patientErase erases a patient (what POST /v1/patients/{id}/erase does
// for an admin) and prints what it did as JSON.
func patientErase(ctx context.Context, env getenv, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("patient erase", "--patient ID --reason TEXT", "Erases a patient's personal data where no retention duty applies, as\n"+
		"POST /v1/patients/{id}/erase does for an admin: destroys the patient's data key (their messages, notes and\n"+
		"attachments open nowhere after), pseudonymises them, ends their accounts, tokens and devices, deletes their\n"+
		"readings older than the organisation's retention period and restricts their processing for good. It cannot\n"+
		"be undone. Prints the counts as JSON; audited as patient.erase, with the reason's length and SHA-256\n"+
		"(docs/data-rights.md).", stdout, stderr)
	dbURL := fs.String("database-url", "", databaseURLUsage)
	patient := fs.String("patient", "", "the patient's id")
	reason := fs.String("reason", "", "why (required; the audit entry keeps its length and SHA-256, not its text)")
	if err := fs.parse(args); err != nil {
		return err
	}
	id, err := uuid.Parse(*patient)
	if err != nil {
		return &exitError{code: 2, err: errors.New("--patient must be a patient's id (UUID)")}
	}
	if strings.TrimSpace(*reason) == "" {
		return &exitError{code: 2, err: errors.New("--reason is required: why the patient is erased")}
	}
	eng, done, err := adminEngine(ctx, env, stderr, cmp.Or(*dbURL, env("TEND_DATABASE_URL")))
	if err != nil {
		return err
	}
	defer done()
	out, err := eng.ErasePatient(ctx, engine.System("cli:patient-erase"), id, *reason)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// patientRestrict sets or lifts a patient's restriction of processing (what
// POST and DELETE /v1/patients/{id}/restriction do for an admin) and prints
// the patient's restricted flag.
func patientRestrict(ctx context.Context, env getenv, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("patient restrict", "--patient ID (--reason TEXT | --lift)", "Restricts the processing of a patient's data (GDPR article 18), as\n"+
		"POST /v1/patients/{id}/restriction does for an admin: their readings are still stored, but no rule judges\n"+
		"them, no alert, retake request, reminder or missing-data alert follows. --lift ends it, as DELETE does.\n"+
		"Prints restricted: true or false. Audited (docs/data-rights.md).", stdout, stderr)
	dbURL := fs.String("database-url", "", databaseURLUsage)
	patient := fs.String("patient", "", "the patient's id")
	reason := fs.String("reason", "", "why (required to restrict)")
	lift := fs.Bool("lift", false, "lift the restriction instead")
	if err := fs.parse(args); err != nil {
		return err
	}
	id, err := uuid.Parse(*patient)
	if err != nil {
		return &exitError{code: 2, err: errors.New("--patient must be a patient's id (UUID)")}
	}
	if *lift == (strings.TrimSpace(*reason) != "") {
		return &exitError{code: 2, err: errors.New("give either --reason (to restrict) or --lift")}
	}
	eng, done, err := adminEngine(ctx, env, stderr, cmp.Or(*dbURL, env("TEND_DATABASE_URL")))
	if err != nil {
		return err
	}
	defer done()
	sys := engine.System("cli:patient-restrict")
	var p engine.Patient
	if *lift {
		p, err = eng.LiftPatientRestriction(ctx, sys, id)
	} else {
		p, err = eng.RestrictPatient(ctx, sys, id, *reason)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restricted: %v\n", p.Restricted)
	return nil
}

// patientExport writes a patient's export (what GET /v1/patients/{id}/export
// answers an admin) to a new file.
func patientExport(ctx context.Context, env getenv, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("patient export", "--patient ID --out FILE", "Writes everything Tend holds about a patient to a new zip file, as\n"+
		"GET /v1/patients/{id}/export answers an admin: a FHIR R4 collection Bundle (patient-bundle.json), each\n"+
		"attachment's bytes and a manifest. Opening messages needs TEND_ENCRYPTION_KEYS. The Bundle's full URLs start\n"+
		"with TEND_PUBLIC_URL (default http://localhost:8080). Audited as patient.export.", stdout, stderr)
	dbURL := fs.String("database-url", "", databaseURLUsage)
	patient := fs.String("patient", "", "the patient's id")
	out := fs.String("out", "", "the zip file to write (must not exist)")
	if err := fs.parse(args); err != nil {
		return err
	}
	id, err := uuid.Parse(*patient)
	if err != nil {
		return &exitError{code: 2, err: errors.New("--patient must be a patient's id (UUID)")}
	}
	if *out == "" {
		return &exitError{code: 2, err: errors.New("--out is required: the zip file to write")}
	}
	eng, done, err := adminEngine(ctx, env, stderr, cmp.Or(*dbURL, env("TEND_DATABASE_URL")))
	if err != nil {
		return err
	}
	defer done()
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	base := strings.TrimSuffix(cmp.Or(env("TEND_PUBLIC_URL"), "http://localhost:8080"), "/") + "/fhir/r4"
	err = api.WritePatientExport(ctx, eng, engine.System("cli:patient-export"), id, base, func() io.Writer { return f })
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(*out)
		return err
	}
	fmt.Fprintf(stderr, "wrote the export of patient %s to %s\n", id, *out)
	return nil
}
