package enginetest

import (
	"context"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/sealed"
)

// Keys returns a fresh keyring of one key, for sealing messages and notes.
func Keys(t testing.TB) *sealed.Keyring {
	t.Helper()
	text, err := sealed.Generate("test")
	if err != nil {
		t.Fatal(err)
	}
	ring, err := sealed.ParseKeyring(text)
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

// Start builds and starts an engine from cfg (with Keys when cfg has none),
// stopped when t ends.
func Start(t testing.TB, cfg engine.Config) *engine.Engine {
	t.Helper()
	if cfg.Keys == nil {
		cfg.Keys = Keys(t)
	}
	eng, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = eng.Stop(ctx)
	})
	return eng
}
