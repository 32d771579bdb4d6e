// Package enginetest gives tests a fresh, fully migrated Postgres database of
// their own: a template database is migrated once per migration set (keyed by
// a hash of the migration files), and each test gets a clone of it, dropped
// when the test ends. Cloning a template takes a few tens of milliseconds.
//
// The server is TEST_DATABASE_URL, else TEND_DATABASE_URL, else the local
// server at 127.0.0.1:5432 (user postgres). The role needs CREATEDB.
//
// The work is done by engine/internal/pgtest, which the engine's own packages
// use in their internal tests (this package imports the engine, so they
// cannot); enginetest adds the engine's pool configuration.
package enginetest

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/internal/pgtest"
)

// ServerURL is the connection string of the server tests run against.
func ServerURL() string { return pgtest.ServerURL() }

// NewDatabase creates a migrated database for t and returns its URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return pgtest.NewDatabase(t)
}

// NewPool returns a pool on a fresh migrated database, configured as the
// engine configures its pools, closed when t ends.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return pgtest.NewPool(t, engine.ConfigurePool)
}

// Open is NewPool for code without a testing.TB (examples): a pool on a
// fresh migrated database, configured as the engine configures its pools,
// and a function that closes it and drops the database.
func Open() (*pgxpool.Pool, func(), error) { return pgtest.Open(engine.ConfigurePool) }

// TerminateBackend ends the server process pid of a connection to the
// database at url and waits until it is gone: how tests break a connection
// the way a failover or pg_terminate_backend does.
func TerminateBackend(t testing.TB, url string, pid uint32) { pgtest.TerminateBackend(t, url, pid) }
