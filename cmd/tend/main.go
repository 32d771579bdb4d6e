// Command tend runs Tend: the API and workers, migrations, administration,
// the demo and the load generator. It only parses flags and the environment
// and wires the packages together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `tend — remote patient monitoring and care-team messaging

Usage:
  tend serve                     API and workers
  tend worker                    workers only
  tend migrate up|status         apply or list database migrations (Tend's and River's)
  tend token create --role R [--name N] [--patient ID] [--org O] | --user ID
                                 create a bearer token (and its user when no --user)
  tend org create --name N --slug S [--timezone Z]
                                 create an organisation (print its id); tend org list lists them
  tend token revoke ID           revoke a token
  tend demo [--duration D]       the whole system on a local Postgres with simulated patients
  tend load --url U --token T    post readings (or -mode messages) to a running server and report throughput
  tend audit verify [--checkpoint FILE]
                                 walk the audit hash chain; name the first broken entry
  tend audit checkpoint          print the chain's head (signed with TEND_AUDIT_SIGNING_KEY when set)
  tend rules check FILE          validate a YAML rule pack
  tend rules backtest (--rule-id ID | --file F) [--org O] [--since T --until T]
                                 what a rule would have raised over stored data (creates nothing)
  tend simulate [--pack FILE] [--seed N] [--patients N] [--weeks N] [--artefact-rate X] [--html FILE]
                                 score rule packs over a synthetic cohort (no database)
  tend keys generate [--id ID] [--rotate]
                                 print a new encryption key as a TEND_ENCRYPTION_KEYS line
  tend keys rotate [--batch N]   re-encrypt messages, symptom notes, attachments and broadcasts under the current key
  tend records keygen --out FILE write the organisation's record key pair; print TEND_RECORD_PUBLIC_KEY
  tend records export --record-key FILE --patient ID
                                 decrypt a patient's end-to-end encrypted conversations (JSON lines)
  tend patient export --patient ID --out FILE
                                 everything about a patient as a zip (FHIR R4 Bundle and attachments)
  tend patient erase --patient ID --reason TEXT
                                 erase a patient's personal data where no retention duty applies
  tend patient restrict --patient ID (--reason TEXT | --lift)
                                 restrict processing of a patient's data (no rules, no reminders), or lift it
  tend retention run [--dry-run] delete what each organisation keeps no longer (its retention periods)
  tend vapid generate            print a new VAPID key pair for Web Push
  tend push-receiver [--subscription FILE]
                                 a local Web Push service standing in for a browser: prints the pushes it gets
  tend version                   print the version and the commit it was built from

Every command answers -h with its flags (docs/commands.md shows them all). Configuration comes from the
environment (see README): TEND_DATABASE_URL, TEND_ADDR, TEND_PUBLIC_URL, TEND_TLS_*, TEND_ENCRYPTION_KEYS,
TEND_MESSAGE_PUSH_HOLD, TEND_RECORD_PUBLIC_KEY, TEND_VAPID_*, TEND_FCM_*, TEND_APNS_*, TEND_WEBPUSH_ALLOWED_HOSTS.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "tend:", err)
		stop()
		os.Exit(exitCode(err))
	}
}

// exitError carries a specific exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runEnv(ctx, envFromOS(), args, stdout, stderr)
}

// runEnv runs one command with the given environment. A command's -h has
// printed its usage to stdout and succeeds.
func runEnv(ctx context.Context, env getenv, args []string, stdout, stderr io.Writer) error {
	if err := dispatch(ctx, env, args, stdout, stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		return err
	}
	return nil
}

func dispatch(ctx context.Context, env getenv, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &exitError{code: 2, err: errors.New("no command given")}
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return serve(ctx, env, rest, stdout, stderr, true)
	case "worker":
		return serve(ctx, env, rest, stdout, stderr, false)
	case "migrate":
		return migrate(ctx, env, rest, stdout, stderr)
	case "token":
		return token(ctx, env, rest, stdout, stderr)
	case "demo":
		return demo(ctx, env, rest, stdout, stderr)
	case "load":
		return load(ctx, env, rest, stdout, stderr)
	case "audit":
		return auditCmd(ctx, env, rest, stdout, stderr)
	case "rules":
		return rulesCmd(ctx, env, rest, stdout, stderr)
	case "simulate":
		return simulate(rest, stdout, stderr)
	case "keys":
		return keys(ctx, env, rest, stdout, stderr)
	case "records":
		return records(ctx, env, rest, stdout, stderr)
	case "patient":
		return patientCmd(ctx, env, rest, stdout, stderr)
	case "org":
		return orgCmd(ctx, env, rest, stdout, stderr)
	case "retention":
		return retentionCmd(ctx, env, rest, stdout, stderr)
	case "vapid":
		return vapid(rest, stdout, stderr)
	case "push-receiver":
		return pushReceiver(ctx, rest, stdout, stderr)
	case "version":
		return version(rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return &exitError{code: 2, err: fmt.Errorf("unknown command %q", cmd)}
	}
}
