package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/tendhealth/tend/engine"
)

const keysUsage = `usage: tend keys rotate [flags]
  rotate   re-encrypt message bodies and symptom notes under the current key (the first of TEND_ENCRYPTION_KEYS)
Run tend keys rotate -h for the flags.`

// keys runs the key subcommands.
func keys(ctx context.Context, env getenv, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "rotate" {
		return groupUsage(args, keysUsage, stdout)
	}
	return keysRotate(ctx, env, args[1:], stdout, stderr)
}

// keysRotate re-seals every record not sealed under the current key, in
// batches that each commit: an interrupted run is resumed by running it
// again.
func keysRotate(ctx context.Context, env getenv, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keys rotate", "[flags]", "Re-encrypts, under the current key (the first entry of TEND_ENCRYPTION_KEYS), every message\n"+
		"body and symptom note sealed under an older key (and seals notes stored before notes were encrypted).\n"+
		"TEND_ENCRYPTION_KEYS must list the new key first and every older key still in use after it. Each batch\n"+
		"commits on its own: an interrupted run is resumed by running the command again. Once it reports\n"+
		"nothing left, the older keys may be removed from TEND_ENCRYPTION_KEYS. Safe while Tend is running.",
		stdout, stderr)
	dbURL := fs.String("database-url", "", "Postgres connection string (default: $TEND_DATABASE_URL)")
	batch := fs.Int("batch", engine.DefaultRotateBatch, "records re-encrypted per transaction")
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if *batch < 1 || *batch > 100000 {
		return &exitError{code: 2, err: errors.New("--batch must be from 1 to 100000")}
	}
	if env("TEND_ENCRYPTION_KEYS") == "" {
		return &exitError{code: 2, err: errors.New("TEND_ENCRYPTION_KEYS is not set: list the new key first, then the older ones")}
	}
	*dbURL = cmp.Or(*dbURL, env("TEND_DATABASE_URL"))
	eng, done, err := adminEngine(ctx, env, stderr, *dbURL)
	if err != nil {
		return err
	}
	defer done()
	before, err := eng.Sealed(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%d records to re-encrypt\n", before.Stale)
	total, err := eng.RotateKeys(ctx, *batch, func(r engine.Rotated) error {
		fmt.Fprintf(stderr, "re-encrypted %d messages, %d notes\n", r.Messages, r.Notes)
		return ctx.Err()
	})
	if err != nil {
		return fmt.Errorf("%w (after %d messages and %d notes; run the command again to resume)", err, total.Messages, total.Notes)
	}
	files, err := eng.RotateAttachmentKeys(ctx)
	if err != nil {
		return fmt.Errorf("%w (after %d messages and %d notes; run the command again to resume)", err, total.Messages, total.Notes)
	}
	fmt.Fprintf(stderr, "re-encrypted %d attachments and %d broadcasts\n", files.Attachments, files.Broadcasts)
	if files.Unreadable > 0 {
		return fmt.Errorf("%d attachments or broadcasts did not open with any configured key (logged by id): keep the old keys", files.Unreadable)
	}
	after, err := eng.Sealed(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "re-encrypted %d messages and %d notes; %d records left under older keys\n", total.Messages, total.Notes, after.Stale)
	return nil
}
