package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// tend token revoke revokes a token by its id: it no longer authenticates.
func TestTokenRevokeCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := enginetest.NewDatabase(t)
	env := envMap(map[string]string{"TEND_DATABASE_URL": db})
	var out, errOut bytes.Buffer
	if err := runEnv(ctx, env, []string{"token", "create", "--role", "admin", "--name", "Ops"}, &out, &errOut); err != nil {
		t.Fatalf("token create: %v\n%s", err, errOut.String())
	}
	secret := strings.TrimSpace(out.String())
	eng, done, err := adminEngine(ctx, env, io.Discard, db)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	a, err := eng.Authenticate(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	toks, err := eng.ListTokens(ctx, engine.System("test"), a.UserID)
	if err != nil || len(toks) != 1 {
		t.Fatalf("tokens = %v, %v", toks, err)
	}
	if err := runEnv(ctx, env, []string{"token", "revoke", toks[0].ID.String()}, &out, &errOut); err != nil {
		t.Fatalf("token revoke: %v\n%s", err, errOut.String())
	}
	fresh, done2, err := adminEngine(ctx, env, io.Discard, db)
	if err != nil {
		t.Fatal(err)
	}
	defer done2()
	if _, err := fresh.Authenticate(ctx, secret); err == nil {
		t.Fatal("a revoked token still authenticates")
	}
	if err := runEnv(ctx, env, []string{"token", "revoke", "not-a-uuid"}, &out, &errOut); err == nil {
		t.Fatal("revoking a malformed id succeeded")
	}
}
