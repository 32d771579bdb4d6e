package main

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/tendhealth/tend/engine"
)

const auditUsage = `usage: tend audit verify [--checkpoint FILE] [flags]
       tend audit checkpoint [flags]
  verify       walk the audit hash chain; names the first broken entry and exits 1
  checkpoint   print the chain's head (seq, count, hash) as JSON, signed when TEND_AUDIT_SIGNING_KEY is set
Run tend audit verify -h or tend audit checkpoint -h for the flags.`

func auditCmd(ctx context.Context, env getenv, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "verify" && args[0] != "checkpoint") {
		return groupUsage(args, auditUsage, stdout)
	}
	if args[0] == "checkpoint" {
		return auditCheckpoint(ctx, env, args[1:], stdout, stderr)
	}
	return auditVerify(ctx, env, args[1:], stdout, stderr)
}

// auditKeys reads TEND_AUDIT_SIGNING_KEY (base64 Ed25519 seed) and
// TEND_AUDIT_PUBLIC_KEY (base64 public key; defaults to the signing key's).
func auditKeys(env getenv, publicFlag string) (ed25519.PrivateKey, ed25519.PublicKey, error) {
	var priv ed25519.PrivateKey
	var pub ed25519.PublicKey
	if v := env("TEND_AUDIT_SIGNING_KEY"); v != "" {
		k, err := engine.ParseAuditSigningKey(v)
		if err != nil {
			return nil, nil, fmt.Errorf("TEND_AUDIT_SIGNING_KEY: %w", err)
		}
		priv, pub = k, k.Public().(ed25519.PublicKey)
	}
	if v := cmp.Or(publicFlag, env("TEND_AUDIT_PUBLIC_KEY")); v != "" {
		k, err := engine.ParseAuditPublicKey(v)
		if err != nil {
			return nil, nil, fmt.Errorf("TEND_AUDIT_PUBLIC_KEY: %w", err)
		}
		pub = k
	}
	return priv, pub, nil
}

func auditCheckpoint(ctx context.Context, env getenv, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("audit checkpoint", "[flags]",
		"Prints the audit chain's head as JSON: the last sealed entry's seq and hash and the number of sealed entries,\n"+
			"signed with Ed25519 when TEND_AUDIT_SIGNING_KEY is set. Keep it apart from the database; a later\n"+
			"tend audit verify --checkpoint FILE detects a chain cut short or rewritten before it.", stdout, stderr)
	dbURL := fs.String("database-url", "", databaseURLUsage)
	if err := fs.parse(args); err != nil {
		return err
	}
	priv, _, err := auditKeys(env, "")
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	eng, done, err := adminEngine(ctx, env, stderr, cmp.Or(*dbURL, env("TEND_DATABASE_URL")))
	if err != nil {
		return err
	}
	defer done()
	cp, err := eng.AuditHead(ctx)
	if err != nil {
		return err
	}
	if priv != nil {
		cp.Sign(priv)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(cp)
}

func auditVerify(ctx context.Context, env getenv, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("audit verify", "[--checkpoint FILE] [flags]",
		"Walks the audit hash chain from its first entry, recomputing every hash and link. On the first break it\n"+
			"names the entry by its sequence number and what is wrong (edited, deleted, reordered, inserted, truncated)\n"+
			"and exits 1. With --checkpoint it also checks that the chain still holds the checkpoint's head; a signed\n"+
			"checkpoint's signature is checked with --public-key (or TEND_AUDIT_PUBLIC_KEY, or the public half of\n"+
			"TEND_AUDIT_SIGNING_KEY).", stdout, stderr)
	dbURL := fs.String("database-url", "", databaseURLUsage)
	file := fs.String("checkpoint", "", "a checkpoint printed earlier by tend audit checkpoint")
	pubFlag := fs.String("public-key", "", "base64 Ed25519 public key that signed the checkpoint (default: $TEND_AUDIT_PUBLIC_KEY)")
	if err := fs.parse(args); err != nil {
		return err
	}
	_, pub, err := auditKeys(env, *pubFlag)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	var cp *engine.AuditCheckpoint
	if *file != "" {
		b, err := os.ReadFile(*file)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("checkpoint: %w", err)}
		}
		cp = new(engine.AuditCheckpoint)
		if err := json.Unmarshal(b, cp); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("checkpoint %s: not a checkpoint: %w", *file, err)}
		}
		switch {
		case pub != nil:
			if err := cp.CheckSignature(pub); err != nil {
				return &exitError{code: 1, err: fmt.Errorf("checkpoint %s: %w", *file, err)}
			}
		case cp.Signature != "":
			fmt.Fprintln(stderr, "warning: the checkpoint is signed but no public key was given; its signature was not checked")
		}
	}
	eng, done, err := adminEngine(ctx, env, stderr, cmp.Or(*dbURL, env("TEND_DATABASE_URL")))
	if err != nil {
		return err
	}
	defer done()
	r, err := eng.VerifyAudit(ctx, cp)
	if err != nil {
		return err
	}
	if r.Break != nil {
		fmt.Fprintf(stdout, "BROKEN at entry %d: %s: %s\n", r.Break.Seq, r.Break.Kind, r.Break.Detail)
		fmt.Fprintf(stdout, "%d entries verified before it\n", r.Sealed)
		return &exitError{code: 1, err: errors.New("the audit chain does not verify")}
	}
	fmt.Fprintf(stdout, "ok: %d entries verified, head seq %d hash %s", r.Sealed, r.HeadSeq, hex.EncodeToString(r.Head))
	if cp != nil {
		fmt.Fprintf(stdout, ", checkpoint at seq %d holds", cp.Seq)
	}
	fmt.Fprintf(stdout, "\n%d entries not sealed yet\n", r.Unsealed)
	return nil
}
