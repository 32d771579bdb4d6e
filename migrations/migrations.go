// Package migrations holds Tend's schema as numbered SQL files embedded in the
// binary and runs them, together with River's own migrations, against a
// database.
//
// Files are named NNNNN_name.sql with goose's `-- +goose Up` / `-- +goose Down`
// sections. River's tables (river_job and friends) are migrated first by
// rivermigrate so that Tend's migrations may refer to them.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed *.sql
var files embed.FS

// FS returns the embedded migration files.
func FS() fs.FS { return files }

// Step is one migration and whether it has been applied.
type Step struct {
	// Component is "river" or "tend".
	Component string
	Version   int64
	Name      string
	Applied   bool
}

// Up applies every pending River and Tend migration and returns the steps it
// applied.
func Up(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) ([]Step, error) {
	var applied []Step
	rm, err := riverMigrator(pool, logger)
	if err != nil {
		return nil, err
	}
	res, err := rm.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return nil, fmt.Errorf("river migrations: %w", err)
	}
	for _, v := range res.Versions {
		applied = append(applied, Step{Component: "river", Version: int64(v.Version), Name: v.Name, Applied: true})
	}
	p, db, err := provider(pool)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	results, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("tend migrations: %w", err)
	}
	for _, r := range results {
		applied = append(applied, Step{Component: "tend", Version: r.Source.Version, Name: r.Source.Path, Applied: true})
	}
	return applied, nil
}

// Status lists every River and Tend migration and whether it is applied.
func Status(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) ([]Step, error) {
	rm, err := riverMigrator(pool, logger)
	if err != nil {
		return nil, err
	}
	existing, err := rm.ExistingVersions(ctx)
	if err != nil {
		return nil, fmt.Errorf("river migration status: %w", err)
	}
	have := make(map[int]bool, len(existing))
	for _, m := range existing {
		have[m.Version] = true
	}
	var steps []Step
	for _, m := range rm.AllVersions() {
		steps = append(steps, Step{Component: "river", Version: int64(m.Version), Name: m.Name, Applied: have[m.Version]})
	}
	p, db, err := provider(pool)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	statuses, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("tend migration status: %w", err)
	}
	for _, s := range statuses {
		steps = append(steps, Step{Component: "tend", Version: s.Source.Version, Name: s.Source.Path, Applied: s.State == goose.StateApplied})
	}
	return steps, nil
}

// ErrPending is returned by Check when migrations are not applied.
var ErrPending = errors.New("database migrations pending: run `tend migrate up`")

// Check returns ErrPending (wrapped with a count) unless every migration is applied.
func Check(ctx context.Context, pool *pgxpool.Pool) error {
	steps, err := Status(ctx, pool, nil)
	if err != nil {
		return err
	}
	pending := 0
	for _, s := range steps {
		if !s.Applied {
			pending++
		}
	}
	if pending > 0 {
		return fmt.Errorf("%d %w", pending, ErrPending)
	}
	return nil
}

func riverMigrator(pool *pgxpool.Pool, logger *slog.Logger) (*rivermigrate.Migrator[pgxTx], error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("river migrator: %w", err)
	}
	return m, nil
}

func provider(pool *pgxpool.Pool) (*goose.Provider, *sql.DB, error) {
	db := stdlib.OpenDBFromPool(pool)
	p, err := goose.NewProvider(goose.DialectPostgres, db, files, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("tend migrations: %w", err)
	}
	return p, db, nil
}

type pgxTx = pgx.Tx

// RiverVersion is the newest River schema version this binary migrates to.
func RiverVersion() int {
	m, err := rivermigrate.New(riverpgxv5.New(nil), nil)
	if err != nil {
		return 0
	}
	all := m.AllVersions()
	if len(all) == 0 {
		return 0
	}
	return all[len(all)-1].Version
}
