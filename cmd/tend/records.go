package main

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/e2ee"
	"github.com/tendhealth/tend/engine"
)

const recordsUsage = `usage: tend records keygen|export [flags]
  keygen   write a new organisation record key pair to a file; print the public key to configure
  export   decrypt a patient's end-to-end encrypted conversations with the record key (docs/e2ee.md)
Run tend records keygen -h or tend records export -h for the flags.`

// records runs the record key subcommands.
func records(ctx context.Context, env getenv, args []string, stdout, stderr io.Writer) error {
	switch {
	case len(args) > 0 && args[0] == "keygen":
		return recordsKeygen(args[1:], stdout, stderr)
	case len(args) > 0 && args[0] == "export":
		return recordsExport(ctx, env, args[1:], stdout, stderr)
	}
	return groupUsage(args, recordsUsage, stdout)
}

// recordsKeygen writes a new record key pair to a new file (mode 0600) and
// prints the public half as a TEND_RECORD_PUBLIC_KEY line.
func recordsKeygen(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("records keygen", "--out FILE", "Generates the organisation's record key pair (HPKE MLKEM768-X25519) and writes it\n"+
		"to a new file readable by its owner only. Every end-to-end encrypted message is also wrapped to its public\n"+
		"half, printed as a TEND_RECORD_PUBLIC_KEY line to configure the server with. Keep the file offline (and a\n"+
		"copy in a safe): the server never holds it, and without it no encrypted conversation can be exported.", stdout, stderr)
	out := fs.String("out", "", "the file to write (must not exist)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if *out == "" {
		return &exitError{code: 2, err: errors.New("--out is required: the file to write the key pair to")}
	}
	k, err := e2ee.GenerateRecordKey()
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("--out: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	fmt.Fprintf(stderr, "wrote record key %s to %s: keep it offline\n", k.ID, *out)
	fmt.Fprintf(stdout, "TEND_RECORD_PUBLIC_KEY=%s\n", base64.RawURLEncoding.EncodeToString(k.PublicKey))
	return nil
}

// exported is one line of tend records export's output.
type exported struct {
	MessageID  uuid.UUID  `json:"message_id"`
	ThreadID   uuid.UUID  `json:"thread_id"`
	ThreadKind string     `json:"thread_kind"`
	Seq        int64      `json:"seq"`
	SenderID   *uuid.UUID `json:"sender_id"`
	SenderRole string     `json:"sender_role"`
	SentAt     time.Time  `json:"sent_at"`
	Text       *string    `json:"text"`
	// Attachments are an encrypted message's files, decrypted with the
	// keys its content carries.
	Attachments []exportedFile `json:"attachments,omitempty"`
	Error       string         `json:"error,omitempty"`
}

// exportedFile is one attachment of an exported message: its sealed
// description and its bytes (base64url), or why they are missing.
type exportedFile struct {
	ID    string     `json:"id"`
	Name  string     `json:"name"`
	Type  string     `json:"type"`
	Size  int64      `json:"size"`
	Data  e2ee.Bytes `json:"data,omitempty"`
	Error string     `json:"error,omitempty"`
}

// recordsExport prints a patient's encrypted messages, opened with the
// record key, one JSON object a line.
func recordsExport(ctx context.Context, env getenv, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("records export", "--record-key FILE --patient ID", "Decrypts, with the record key file of tend records keygen, every end-to-end\n"+
		"encrypted message of a patient's threads (with each care team, and the staff-only threads about them) and\n"+
		"prints one JSON object a line, oldest first per thread, with each message's attachments decrypted (their\n"+
		"name, type and bytes in base64url). A message that does not open (or whose signature does not verify) is\n"+
		"printed with its error and no text. Audited as record.export.", stdout, stderr)
	dbURL := fs.String("database-url", "", databaseURLUsage)
	keyFile := fs.String("record-key", "", "the record key file")
	patient := fs.String("patient", "", "the patient's id")
	if err := fs.parse(args); err != nil {
		return err
	}
	id, err := uuid.Parse(*patient)
	if err != nil {
		return &exitError{code: 2, err: errors.New("--patient must be a patient's id (UUID)")}
	}
	data, err := os.ReadFile(*keyFile)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--record-key: %w", err)}
	}
	key, err := e2ee.ParseRecordKey(data)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--record-key: %w", err)}
	}
	eng, done, err := adminEngine(ctx, env, stderr, cmp.Or(*dbURL, env("TEND_DATABASE_URL")))
	if err != nil {
		return err
	}
	defer done()
	envs, err := eng.RecordEnvelopes(ctx, engine.System("cli:records-export"), id)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	failed := 0
	for _, r := range envs {
		line := openRecord(r, key)
		if line.Error != "" {
			failed++
		}
		if err := enc.Encode(line); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "%d messages exported, %d did not open\n", len(envs)-failed, failed)
	if failed > 0 {
		return fmt.Errorf("%d messages did not open with record key %s", failed, key.ID)
	}
	return nil
}

// openRecord opens one stored envelope with the record key, and its
// attachments.
func openRecord(r engine.RecordEnvelope, key *e2ee.RecordKey) exported {
	line := exported{MessageID: r.MessageID, ThreadID: r.ThreadID, ThreadKind: r.ThreadKind, Seq: r.Seq, SenderID: r.SenderID,
		SenderRole: r.SenderRole, SentAt: r.SentAt, Error: r.Error}
	if r.Envelope == nil {
		line.Error = cmp.Or(line.Error, "no envelope stored")
		return line
	}
	c, err := e2ee.OpenContent(r.Envelope, e2ee.OpenParams{ThreadID: r.ThreadID.String(), RecipientID: key.ID,
		PrivateKey: key.PrivateKey, SenderKey: ed25519.PublicKey(r.SenderKey)})
	if err != nil {
		line.Error = err.Error()
		return line
	}
	line.Text = &c.Text
	for _, ref := range c.Attachments {
		f := exportedFile{ID: ref.ID, Name: ref.Name, Type: ref.Type, Size: ref.Size}
		var err error
		if ct, ok := r.Files[ref.ID]; ok {
			f.Data, err = e2ee.DecryptFile(r.Envelope, ref, ct)
		} else {
			err = errors.New("the attachment's ciphertext is missing or failed its integrity check")
		}
		if err != nil {
			f.Error = err.Error()
			line.Error = cmp.Or(line.Error, "an attachment did not open")
		}
		line.Attachments = append(line.Attachments, f)
	}
	return line
}
