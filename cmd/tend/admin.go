package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/migrations"
	"github.com/tendhealth/tend/notify/webpush"
)

// adminEngine connects for a one-shot command (no workers).
func adminEngine(ctx context.Context, env getenv, stderr io.Writer, dbURL string) (*engine.Engine, func(), error) {
	s, err := loadSettings(env)
	if err != nil {
		return nil, nil, err
	}
	log := newLogger(stderr, s.LogLevel)
	url, cleanup, err := resolveDatabase(ctx, dbURL, "tend", false, log)
	if err != nil {
		return nil, nil, err
	}
	pool, err := openPool(ctx, url, 4)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	eng, err := engine.New(engine.Config{Pool: pool, Logger: log, Keys: s.Keys, RecordPublicKey: s.RecordPublicKey})
	if err != nil {
		pool.Close()
		cleanup()
		return nil, nil, err
	}
	return eng, func() { pool.Close(); cleanup() }, nil
}

const migrateUsage = `usage: tend migrate up|status [flags]
  up       apply every pending migration (Tend's and River's); idempotent
  status   list every migration, applied or pending
Run tend migrate up -h for the flags.`

func migrate(ctx context.Context, env getenv, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "up" && args[0] != "status") {
		return groupUsage(args, migrateUsage, stdout)
	}
	about := "Applies every pending migration of Tend and of River, in order."
	if args[0] == "status" {
		about = "Lists every migration of Tend and of River with its state (applied or pending)."
	}
	fs := newFlags("migrate "+args[0], "[flags]", about, stdout, stderr)
	var dbURL string
	fs.StringVar(&dbURL, "database-url", "", databaseURLUsage)
	if err := fs.parse(args[1:]); err != nil {
		return err
	}
	s, err := loadSettings(env)
	if err != nil {
		return err
	}
	s.DatabaseURL = cmp.Or(dbURL, s.DatabaseURL)
	log := newLogger(stderr, s.LogLevel)
	url, cleanup, err := resolveDatabase(ctx, s.DatabaseURL, "tend", false, log)
	if err != nil {
		return err
	}
	defer cleanup()
	pool, err := openPool(ctx, url, 4)
	if err != nil {
		return err
	}
	defer pool.Close()
	if args[0] == "up" {
		// Each step is printed below: River's own line per migration
		// would say it twice.
		steps, err := migrations.Up(ctx, pool, newLogger(stderr, max(s.LogLevel, slog.LevelWarn)))
		if err != nil {
			return err
		}
		if len(steps) == 0 {
			fmt.Fprintln(stdout, "migrations: up to date")
		}
		for _, st := range steps {
			fmt.Fprintf(stdout, "applied %s %d %s\n", st.Component, st.Version, st.Name)
		}
		return nil
	}
	steps, err := migrations.Status(ctx, pool, log)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tVERSION\tNAME\tSTATE")
	pending := 0
	for _, st := range steps {
		state := "applied"
		if !st.Applied {
			state, pending = "pending", pending+1
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", st.Component, st.Version, st.Name, state)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d pending\n", pending)
	return nil
}

const tokenUsage = `usage: tend token create --role R [--name N] [--patient ID] [--org O] | --user ID
       tend token revoke ID
  create   create a bearer token (and its user when no --user); prints only the token
  revoke   revoke a token by its id; it stops working within a second on every process
Run tend token create -h or tend token revoke -h for the flags.`

func token(ctx context.Context, env getenv, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "revoke" {
		return tokenRevoke(ctx, env, args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "create" {
		return groupUsage(args, tokenUsage, stdout)
	}
	fs := newFlags("token create", "(--role R [--name N] [--patient ID] [--org O] | --user ID) [flags]",
		"Creates a bearer token and prints it (only it) on stdout; with --role, creates its user first\n"+
			"(in the default organisation unless --org names another; a patient's or device's user in\n"+
			"their patient's). --role super_admin creates an operator, who belongs to no organisation.", stdout, stderr)
	role := fs.String("role", "", "role of the new user: admin, clinician, scheduler, patient, device, super_admin")
	org := fs.String("org", "", "the new user's organisation: its id or slug (default: the default organisation)")
	name := fs.String("name", "", "name of the new user (defaults to the role)")
	userID := fs.String("user", "", "existing user id to issue the token for (no user is created)")
	patient := fs.String("patient", "", "patient id, for patient and device users")
	dbURL := fs.String("database-url", "", databaseURLUsage)
	if err := fs.parse(args[1:]); err != nil {
		return err
	}
	*dbURL = cmp.Or(*dbURL, env("TEND_DATABASE_URL"))
	if (*role == "") == (*userID == "") {
		return &exitError{code: 2, err: errors.New("give either --role (to create a user) or --user (an existing user)")}
	}
	eng, done, err := adminEngine(ctx, env, stderr, *dbURL)
	if err != nil {
		return err
	}
	defer done()
	sys := engine.System("cli:token-create")
	var id uuid.UUID
	if *userID != "" {
		if id, err = uuid.Parse(*userID); err != nil {
			return &exitError{code: 2, err: errors.New("--user must be a user id (UUID)")}
		}
	} else {
		in := engine.NewUser{Name: orDefault(*name, *role), Role: engine.Role(*role)}
		if in.OrgID, err = orgID(ctx, eng, *org); err != nil {
			return err
		}
		if *patient != "" {
			if in.PatientID, err = uuid.Parse(*patient); err != nil {
				return &exitError{code: 2, err: errors.New("--patient must be a patient id (UUID)")}
			}
		}
		u, err := eng.CreateUser(ctx, sys, in)
		if err != nil {
			return err
		}
		id = u.ID
		fmt.Fprintf(stderr, "created user %s (%s)\n", u.ID, u.Role)
	}
	tok, err := eng.CreateToken(ctx, sys, id)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// tokenRevoke revokes a token by id, as the system (audited).
func tokenRevoke(ctx context.Context, env getenv, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token revoke", "ID [flags]", "Revokes the token with this id (GET /v1/users/{id}/tokens lists them); "+
		"it stops working within a second on every process.", stdout, stderr)
	dbURL := fs.String("database-url", "", databaseURLUsage)
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &exitError{code: 2, err: errors.New("give the id of the token to revoke")}
	}
	id, err := uuid.Parse(fs.Arg(0))
	if err != nil {
		return &exitError{code: 2, err: errors.New("the token id must be a UUID")}
	}
	*dbURL = cmp.Or(*dbURL, env("TEND_DATABASE_URL"))
	eng, done, err := adminEngine(ctx, env, stderr, *dbURL)
	if err != nil {
		return err
	}
	defer done()
	if err := eng.RevokeToken(ctx, engine.System("cli:token-revoke"), id); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "revoked token %s\n", id)
	return nil
}

const vapidUsage = `usage: tend vapid generate
  generate   print a new VAPID key pair for Web Push, as TEND_VAPID_* lines`

func vapid(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "generate" {
		return groupUsage(args, vapidUsage, stdout)
	}
	fs := newFlags("vapid generate", "", "Prints a new VAPID key pair (P-256) as TEND_VAPID_PUBLIC_KEY and TEND_VAPID_PRIVATE_KEY lines.\n"+
		"Keep the private key secret; changing it invalidates every browser subscription.", stdout, stderr)
	if err := fs.parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	pub, priv, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "TEND_VAPID_PUBLIC_KEY=%s\nTEND_VAPID_PRIVATE_KEY=%s\n", pub, priv)
	return nil
}
