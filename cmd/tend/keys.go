package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/sealed"
)

const keysUsage = `usage: tend keys generate|rotate [flags]
  generate  print a new encryption key as a TEND_ENCRYPTION_KEYS line
  rotate    re-encrypt message bodies, symptom notes, attachments and broadcasts under the current key
            (the first of TEND_ENCRYPTION_KEYS)
Run tend keys generate -h or tend keys rotate -h for the flags.`

// keys runs the key subcommands.
func keys(ctx context.Context, env getenv, args []string, stdout, stderr io.Writer) error {
	switch {
	case len(args) > 0 && args[0] == "generate":
		return keysGenerate(env, args[1:], stdout, stderr)
	case len(args) > 0 && args[0] == "rotate":
		return keysRotate(ctx, env, args[1:], stdout, stderr)
	}
	return groupUsage(args, keysUsage, stdout)
}

// keysGenerate prints a new random key as a TEND_ENCRYPTION_KEYS line; with
// --rotate, ahead of the keys already configured, ready for a rotation.
func keysGenerate(env getenv, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keys generate", "[flags]", "Prints a new random 32-byte key as a line TEND_ENCRYPTION_KEYS=id:base64key, for\n"+
		"`export $(tend keys generate)` or an environment file. With --rotate, the new key comes first and the keys of\n"+
		"TEND_ENCRYPTION_KEYS follow: restart with that list, then run tend keys rotate. Keep the keys secret, and backed\n"+
		"up apart from the database: a record whose every key is lost cannot be read.", stdout, stderr)
	id := fs.String("id", "", "the new key's id, 1 to 32 of A-Z a-z 0-9 _ - (default: k and today's date, such as k20261122)")
	rotate := fs.Bool("rotate", false, "put the new key before the keys of $TEND_ENCRYPTION_KEYS")
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	*id = cmp.Or(*id, "k"+time.Now().UTC().Format("20060102"))
	key, err := sealed.Generate(*id)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--id: %w", err)}
	}
	if *rotate {
		old := env("TEND_ENCRYPTION_KEYS")
		if old == "" {
			return &exitError{code: 2, err: errors.New("--rotate: TEND_ENCRYPTION_KEYS is not set, so there is nothing to rotate from")}
		}
		ring, err := sealed.ParseKeyring(old)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("TEND_ENCRYPTION_KEYS: %w", err)}
		}
		if slices.Contains(ring.IDs(), *id) {
			return &exitError{code: 2, err: fmt.Errorf("--id: %q is already in TEND_ENCRYPTION_KEYS: choose another id", *id)}
		}
		key += "," + old
	}
	fmt.Fprintf(stdout, "TEND_ENCRYPTION_KEYS=%s\n", key)
	return nil
}

// keysRotate re-seals every record not sealed under the current key, in
// batches that each commit: an interrupted run is resumed by running it
// again.
func keysRotate(ctx context.Context, env getenv, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keys rotate", "[flags]", "Re-encrypts, under the current key (the first entry of TEND_ENCRYPTION_KEYS), every message\n"+
		"body, symptom note, attachment and broadcast body sealed under an older key (and seals notes stored before\n"+
		"notes were encrypted), and re-wraps every patient's data key (what those keys seal is not touched).\n"+
		"TEND_ENCRYPTION_KEYS must list the new key first and every older key still in use after it. Each batch\n"+
		"commits on its own: an interrupted run is resumed by running the command again. Once it reports\n"+
		"nothing left, the older keys may be removed from TEND_ENCRYPTION_KEYS. Safe while Tend is running.",
		stdout, stderr)
	dbURL := fs.String("database-url", "", databaseURLUsage)
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
		fmt.Fprintf(stderr, "re-encrypted %d messages, %d notes; re-wrapped %d patient keys\n", r.Messages, r.Notes, r.PatientKeys)
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
	fmt.Fprintf(stdout, "re-encrypted %d messages and %d notes, re-wrapped %d patient keys; %d records left under older keys\n",
		total.Messages, total.Notes, total.PatientKeys, after.Stale)
	return nil
}
