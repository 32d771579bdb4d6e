// Package pgtest gives tests a fresh, fully migrated Postgres database of
// their own: a template database is migrated once per migration set (keyed by
// a hash of the migration files), and each test gets a clone of it, dropped
// when the test ends. Cloning a template takes a few tens of milliseconds.
//
// The server is TEST_DATABASE_URL, else TEND_DATABASE_URL, else the local
// server at 127.0.0.1:5432 (user postgres). The role needs CREATEDB.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/migrations"
)

// ServerURL is the connection string of the server tests run against.
func ServerURL() string {
	for _, k := range []string{"TEST_DATABASE_URL", "TEND_DATABASE_URL"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// NewDatabase creates a migrated database for t and returns its URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	url, drop, err := newDatabase()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Log(err)
		}
	})
	return url
}

// newDatabase clones the migrated template into a new database and returns
// its URL and a function that drops it.
func newDatabase() (string, func() error, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	server := ServerURL()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		return "", nil, fmt.Errorf("pgtest: connect to %s: %w (set TEST_DATABASE_URL)", redact(server), err)
	}
	defer conn.Close(context.Background())
	tmpl, err := ensureTemplate(ctx, conn, server)
	if err != nil {
		return "", nil, fmt.Errorf("pgtest: template: %w", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "tend_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, tmpl)); err != nil {
		return "", nil, fmt.Errorf("pgtest: clone template: %w", err)
	}
	drop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, server)
		if err != nil {
			return fmt.Errorf("pgtest: drop %s: %w", name, err)
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
			return fmt.Errorf("pgtest: drop %s: %w", name, err)
		}
		return nil
	}
	return withDatabase(server, name), drop, nil
}

// Open is NewPool for code without a testing.TB (examples): a pool on a
// fresh migrated database, and a function that closes it and drops the
// database.
func Open(configure ...func(*pgxpool.Config)) (*pgxpool.Pool, func(), error) {
	url, drop, err := newDatabase()
	if err != nil {
		return nil, nil, err
	}
	pool, err := openPool(url, configure)
	if err != nil {
		_ = drop()
		return nil, nil, err
	}
	return pool, func() { pool.Close(); _ = drop() }, nil
}

func openPool(url string, configure []func(*pgxpool.Config)) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = 20
	for _, c := range configure {
		c(cfg)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("pgtest: pool: %w", err)
	}
	return pool, nil
}

// NewPool returns a pool on a fresh migrated database, closed when t ends.
// Each configure function adjusts the pool configuration first (the engine's
// codecs, say); pgtest itself imports nothing of the engine, so the engine's
// own packages can use it in their internal tests.
func NewPool(t testing.TB, configure ...func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	pool, err := openPool(NewDatabase(t), configure)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// ensureTemplate creates and migrates the template for the current migration
// set once, serialised across test processes by an advisory lock.
func ensureTemplate(ctx context.Context, conn *pgx.Conn, server string) (string, error) {
	hash, err := migrationsHash()
	if err != nil {
		return "", err
	}
	name := "tend_tmpl_" + hash[:16]
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(727274)`); err != nil {
		return "", err
	}
	defer func() { _, _ = conn.Exec(context.Background(), `SELECT pg_advisory_unlock(727274)`) }()
	var ready bool
	err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)`, name).Scan(&ready)
	if err != nil || ready {
		return name, err
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s", name)); err != nil {
		return "", err
	}
	pool, err := pgxpool.New(ctx, withDatabase(server, name))
	if err != nil {
		return "", err
	}
	_, err = migrations.Up(ctx, pool, nil)
	pool.Close()
	if err != nil {
		return "", fmt.Errorf("migrate: %w", err)
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s WITH is_template true", name)); err != nil {
		return "", err
	}
	return name, nil
}

func migrationsHash() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(migrations.FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS(), path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", path, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "river:%d", migrations.RiverVersion())
	return hex.EncodeToString(h.Sum(nil)), nil
}

func withDatabase(server, db string) string {
	cfg, err := pgx.ParseConfig(server)
	if err != nil {
		return server
	}
	userinfo := cfg.User
	if cfg.Password != "" {
		userinfo += ":" + cfg.Password
	}
	host := cfg.Host
	if strings.HasPrefix(host, "/") {
		return fmt.Sprintf("postgres://%s@/%s?host=%s&port=%d&sslmode=disable", userinfo, db, host, cfg.Port)
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", userinfo, host, cfg.Port, db)
}

func redact(u string) string {
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		return "the test server"
	}
	return fmt.Sprintf("%s@%s:%d", cfg.User, cfg.Host, cfg.Port)
}
