package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
)

const orgUsage = `usage: tend org create --name N --slug S [--timezone Z]
       tend org list
  create   create an organisation; prints only its id
  list     list the organisations: id, slug, name
Run tend org create -h for the flags. An organisation's first admin: tend token create --role admin --org SLUG.`

func orgCmd(ctx context.Context, env getenv, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "create":
			return orgCreate(ctx, env, args[1:], stdout, stderr)
		case "list":
			return orgList(ctx, env, args[1:], stdout, stderr)
		}
	}
	return groupUsage(args, orgUsage, stdout)
}

// orgCreate creates an organisation as Tend itself (audited) and prints its
// id.
func orgCreate(ctx context.Context, env getenv, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("org create", "--name N --slug S [--timezone Z]", "Creates an organisation and prints (only) its id. Its first\n"+
		"admin comes next: tend token create --role admin --name N --org SLUG.", stdout, stderr)
	name := fs.String("name", "", "the organisation's name")
	slug := fs.String("slug", "", "a short unique name: lowercase letters, digits and hyphens")
	tz := fs.String("timezone", "", "default time zone of its users (IANA; default UTC)")
	dbURL := fs.String("database-url", "", databaseURLUsage)
	if err := fs.parse(args); err != nil {
		return err
	}
	if *name == "" || *slug == "" {
		return &exitError{code: 2, err: errors.New("--name and --slug are required")}
	}
	eng, done, err := adminEngine(ctx, env, stderr, cmp.Or(*dbURL, env("TEND_DATABASE_URL")))
	if err != nil {
		return err
	}
	defer done()
	o, err := eng.CreateOrganisation(ctx, engine.System("cli:org-create"), engine.NewOrganisation{Name: *name, Slug: *slug, Timezone: *tz})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, o.ID)
	return nil
}

// orgList prints every organisation.
func orgList(ctx context.Context, env getenv, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("org list", "[flags]", "Lists the organisations: id, slug and name.", stdout, stderr)
	dbURL := fs.String("database-url", "", databaseURLUsage)
	if err := fs.parse(args); err != nil {
		return err
	}
	eng, done, err := adminEngine(ctx, env, stderr, cmp.Or(*dbURL, env("TEND_DATABASE_URL")))
	if err != nil {
		return err
	}
	defer done()
	orgs, err := eng.ListOrganisations(ctx, engine.System("cli:org-list"))
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSLUG\tNAME")
	for _, o := range orgs {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", o.ID, o.Slug, o.Name)
	}
	return tw.Flush()
}

// orgID resolves --org (an organisation's id or slug) to its id; "" is the
// default organisation (uuid.Nil).
func orgID(ctx context.Context, eng *engine.Engine, ref string) (uuid.UUID, error) {
	if ref == "" {
		return uuid.Nil, nil
	}
	if id, err := uuid.Parse(ref); err == nil {
		return id, nil
	}
	orgs, err := eng.ListOrganisations(ctx, engine.System("cli:org"))
	if err != nil {
		return uuid.Nil, err
	}
	for _, o := range orgs {
		if o.Slug == ref {
			return o.ID, nil
		}
	}
	return uuid.Nil, &exitError{code: 2, err: fmt.Errorf("--org: no organisation with id or slug %q (tend org list)", ref)}
}
