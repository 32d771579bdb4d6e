package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// tend org create makes an organisation; tend token create --org gives it its
// first admin, who sees that organisation only; --role super_admin makes an
// operator, who belongs to none; bad input is refused without storing
// anything.
func TestOrgCommands(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := enginetest.NewDatabase(t)
	env := envMap(map[string]string{"TEND_DATABASE_URL": db})
	run := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := runEnv(ctx, env, args, &out, &errOut); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, errOut.String())
		}
		return strings.TrimSpace(out.String())
	}
	id, err := uuid.Parse(run("org", "create", "--name", "Northside Heart Clinic", "--slug", "northside", "--timezone", "Europe/London"))
	if err != nil {
		t.Fatalf("org create printed no id: %v", err)
	}
	if list := run("org", "list"); !strings.Contains(list, id.String()) || !strings.Contains(list, "northside") ||
		!strings.Contains(list, "default") {
		t.Fatalf("org list:\n%s", list)
	}
	adminTok := run("token", "create", "--role", "admin", "--name", "North admin", "--org", "northside")
	opTok := run("token", "create", "--role", "super_admin", "--name", "Operator")
	eng, done, err := adminEngine(ctx, env, io.Discard, db)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	a, err := eng.Authenticate(ctx, adminTok)
	if err != nil || a.OrgID != id || a.Role != engine.RoleAdmin {
		t.Fatalf("the new admin = %+v, %v; want an admin of %s", a, err, id)
	}
	me, err := eng.Me(ctx, a)
	if err != nil || me.Organisation == nil || me.Organisation.Slug != "northside" || me.Organisation.Timezone != "Europe/London" {
		t.Fatalf("me = %+v, %v", me, err)
	}
	op, err := eng.Authenticate(ctx, opTok)
	if err != nil || op.Role != engine.RoleSuperAdmin || op.OrgID != uuid.Nil {
		t.Fatalf("the operator = %+v, %v", op, err)
	}
	for _, args := range [][]string{
		{"org", "create", "--name", "Again", "--slug", "northside"}, // slug taken
		{"org", "create", "--name", "Bad", "--slug", "Not A Slug"},  // slug
		{"org", "create", "--name", "Zone", "--slug", "z", "--timezone", "Mars/Base"},
		{"org", "create", "--slug", "noname"},                              // name
		{"token", "create", "--role", "admin", "--org", "nowhere"},         // unknown org
		{"token", "create", "--role", "super_admin", "--org", "northside"}, // operators belong to none
	} {
		var out, errOut bytes.Buffer
		if err := runEnv(ctx, env, args, &out, &errOut); err == nil {
			t.Errorf("%v succeeded: %s", args, out.String())
		}
	}
	orgs, err := eng.ListOrganisations(ctx, engine.System("test"))
	if err != nil || len(orgs) != 2 {
		t.Fatalf("organisations after refusals: %d, %v; want 2", len(orgs), err)
	}
}
