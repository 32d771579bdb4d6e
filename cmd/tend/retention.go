package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/tendhealth/tend/engine"
)

const retentionUsage = `usage: tend retention run [flags]
  run   delete what each organisation keeps no longer (readings, messages, attachments, delivery records)
Run tend retention run -h for the flags.`

// retentionCmd runs the retention subcommands.
func retentionCmd(ctx context.Context, env getenv, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "run" {
		return retentionRun(ctx, env, args[1:], stdout, stderr)
	}
	return groupUsage(args, retentionUsage, stdout)
}

// retentionRun applies every organisation's retention periods now and
// prints what it deleted (or would delete) per organisation and kind.
func retentionRun(ctx context.Context, env getenv, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("retention run", "[--dry-run]", "Deletes, for every organisation, the readings, messages, attachments and\n"+
		"delivery records older than its retention periods (an organisation's setting; none: kept for ever), as the\n"+
		"periodic job of tend serve and tend worker does every hour, and prints one line per organisation and kind\n"+
		"with a period: its id, the kind, the cut-off (rows stored before it go) and how many rows went. Each batch\n"+
		"commits on its own with an audit entry: an interrupted run is resumed by running the command again. A\n"+
		"notification whose delivery has not run, and a message whose push has not, stay. Safe while Tend is running.",
		stdout, stderr)
	dbURL := fs.String("database-url", "", databaseURLUsage)
	dry := fs.Bool("dry-run", false, "count what would be deleted; delete nothing")
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	eng, done, err := adminEngine(ctx, env, stderr, cmp.Or(*dbURL, env("TEND_DATABASE_URL")))
	if err != nil {
		return err
	}
	defer done()
	counts, err := eng.RunRetention(ctx, engine.RetentionOptions{DryRun: *dry})
	verb := "deleted"
	if *dry {
		verb = "would delete"
	}
	for _, c := range counts {
		fmt.Fprintf(stdout, "%s\t%s\tbefore %s\t%s %d\n", c.OrgID, c.Kind, c.Before.Format(time.RFC3339), verb, c.Rows)
	}
	if err != nil {
		return fmt.Errorf("%w (run the command again to resume)", err)
	}
	return nil
}
