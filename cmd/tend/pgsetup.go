package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/cmd/tend/internal/pgcluster"
)

// localServer is where a newcomer's Postgres usually answers.
const localServer = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// resolveDatabase decides which database to use: TEND_DATABASE_URL when set;
// else database dbName on a local server at 127.0.0.1:5432 (created if
// missing); else, when mayStart, a private cluster started from the installed
// PostgreSQL binaries. cleanup stops what was started.
func resolveDatabase(ctx context.Context, url, dbName string, mayStart bool, log *slog.Logger) (string, func(), error) {
	return resolveDatabaseOpts(ctx, url, dbName, mayStart, false, log)
}

// resolveDatabaseOpts is resolveDatabase; with fresh, a database Tend owns
// (dbName on the local server; never TEND_DATABASE_URL) is dropped and
// created anew, so a demo starts without a previous run's leftovers.
func resolveDatabaseOpts(ctx context.Context, url, dbName string, mayStart, fresh bool, log *slog.Logger) (string, func(), error) {
	noop := func() {}
	if url != "" {
		return url, noop, nil
	}
	if fresh {
		if err := dropDatabase(ctx, localServer, dbName); err != nil {
			log.Debug("no local database to reset", "error", err)
		}
	}
	if err := ensureDatabase(ctx, localServer, dbName); err == nil {
		log.Info("using the local PostgreSQL server", "database", dbName)
		return withDatabase(localServer, dbName), noop, nil
	} else if !mayStart {
		return "", noop, fmt.Errorf("TEND_DATABASE_URL is not set and no PostgreSQL answers at 127.0.0.1:5432 (%v)", err)
	}
	log.Info("no PostgreSQL at 127.0.0.1:5432: starting a private cluster")
	base, stop, err := startPrivateCluster(ctx, log)
	if err != nil {
		return "", noop, err
	}
	if err := ensureDatabase(ctx, base, dbName); err != nil {
		stop()
		return "", noop, err
	}
	return withDatabase(base, dbName), stop, nil
}

func withDatabase(url, db string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return url
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, db)
}

// ensureDatabase connects to the server of url and creates db if missing.
func ensureDatabase(ctx context.Context, url, db string) error {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(cctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, db).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(cctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
		var exists bool
		if qerr := conn.QueryRow(cctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, db).Scan(&exists); qerr == nil && exists {
			return nil // created concurrently
		}
		return fmt.Errorf("create database %s: %w", db, err)
	}
	return nil
}

// dropDatabase drops db on the server of url, disconnecting its sessions.
func dropDatabase(ctx context.Context, url, db string) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(cctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)")
	return err
}

// startPrivateCluster runs initdb and pg_ctl from the newest installed
// PostgreSQL into a directory of its own, on a free port. PostgreSQL refuses
// to run as root, so as root it runs as the postgres system user.
func startPrivateCluster(ctx context.Context, log *slog.Logger) (string, func(), error) {
	bin, err := pgcluster.Bin()
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "tend-pg-")
	if err != nil {
		return "", nil, err
	}
	port, err := pgcluster.FreePort()
	if err != nil {
		return "", nil, err
	}
	if err := pgcluster.GiveToPostgres(dir); err != nil {
		return "", nil, err
	}
	data := filepath.Join(dir, "data")
	runPG := func(name string, args ...string) error {
		out, err := pgcluster.Command(ctx, filepath.Join(bin, name), args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w: %s", name, err, out)
		}
		return nil
	}
	if err := runPG("initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"); err != nil {
		return "", nil, err
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", port, dir)
	if err := runPG("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "start"); err != nil {
		return "", nil, err
	}
	log.Info("private PostgreSQL started", "port", port, "dir", dir)
	stop := func() {
		_ = pgcluster.Command(context.Background(), filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "fast", "stop").Run()
		_ = os.RemoveAll(dir)
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), stop, nil
}
