package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/cmd/tend/internal/pgcluster"
)

// cluster is a private PostgreSQL cluster in the harness's directory, run
// as the postgres user (PostgreSQL refuses to run as root), so that it can
// be restarted with -m immediate without touching anyone else's server.
type cluster struct {
	h    *harness
	data string
	port int
}

// newCluster initialises and starts a cluster named name, with a database
// tend.
func (h *harness) newCluster(ctx context.Context, name string) (*cluster, error) {
	bin, err := pgcluster.Bin()
	if err != nil {
		return nil, err
	}
	port, err := pgcluster.FreePort()
	if err != nil {
		return nil, err
	}
	c := &cluster{h: h, data: filepath.Join(h.dir, name), port: port}
	out, err := pgcluster.Command(ctx, filepath.Join(bin, "initdb"), "-D", c.data, "-U", "postgres", "-A", "trust", "--no-sync").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	if err := c.pgctl(ctx, "start", "-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=64MB", port, h.dir)); err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(ctx, c.url("postgres"))
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE DATABASE tend`); err != nil {
		return nil, fmt.Errorf("create database: %w", err)
	}
	return c, nil
}

func (c *cluster) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// pgctl runs pg_ctl on the cluster, waiting for the action to finish.
func (c *cluster) pgctl(ctx context.Context, args ...string) error {
	bin, err := pgcluster.Bin()
	if err != nil {
		return err
	}
	full := append([]string{"-D", c.data, "-l", c.data + ".log", "-w", "-t", "120"}, args...)
	if out, err := pgcluster.Command(ctx, filepath.Join(bin, "pg_ctl"), full...).CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// restartImmediate is `pg_ctl -m immediate restart`: every backend is
// killed without a checkpoint, and the server recovers from its WAL.
func (c *cluster) restartImmediate(ctx context.Context) error {
	return c.pgctl(ctx, "-m", "immediate", "restart")
}

// stop stops the cluster at once (its data is thrown away after).
func (c *cluster) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = c.pgctl(ctx, "-m", "immediate", "stop")
}

// terminateTend ends every server process connected to database tend (the
// pg_terminate_backend an operator or a failover does) and returns how many.
func terminateTend(ctx context.Context, adminURL string) (int, error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
		FROM pg_stat_activity WHERE datname = 'tend' AND pid <> pg_backend_pid()`).Scan(&n)
	return n, err
}
