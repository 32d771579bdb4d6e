package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/tendhealth/tend/notify"
	"github.com/tendhealth/tend/rules"
)

// Config configures an Engine. Only Pool is required.
type Config struct {
	// Pool is the Postgres connection pool. Required. Set MaxConns explicitly:
	// River holds one connection for LISTEN.
	Pool *pgxpool.Pool
	// Logger receives operational logs (ids only, never PHI). Defaults to a
	// discarding logger.
	Logger *slog.Logger
	// Rules is the rule pack evaluated on ingest until the stored rules are
	// loaded (by Start, or by the first rule change through this engine).
	// Defaults to the embedded default pack (rules.Default).
	Rules *rules.Pack
	// RulesRefresh is how often a started engine checks the database for rule
	// changes made by other processes. Defaults to 2 seconds; negative
	// disables polling (changes through this engine still apply at once).
	RulesRefresh time.Duration
	// MissingDataInterval is how often the missing-data check runs (a
	// periodic River job, with RunWorkers). Defaults to 10 minutes; negative
	// disables it.
	MissingDataInterval time.Duration
	// Senders deliver pushes per platform. A platform without a sender is off:
	// its devices' deliveries are recorded as undeliverable.
	Senders notify.Senders
	// Now returns the current time. Defaults to time.Now.
	Now func() time.Time
	// Registerer receives the engine's Prometheus metrics. Defaults to a new,
	// private registry.
	Registerer prometheus.Registerer
	// RunWorkers starts River workers (delivery, maintenance) in Start. When
	// false the engine only inserts jobs (API-only processes and tests).
	RunWorkers bool
	// NotifyWorkers is the number of concurrent push deliveries per process.
	// Defaults to 100.
	NotifyWorkers int
	// FetchCooldown is River's minimum time between job fetches per queue.
	// Defaults to 20ms.
	FetchCooldown time.Duration
	// RescueStuckJobsAfter is how long a running job may go without finishing
	// before another worker runs it again (after a crash). Defaults to 1
	// minute: a push whose process died mid-send goes out again within about a
	// minute of restart. Jobs that may run longer (the missing-data check) are
	// idempotent, so a rescue while they still run costs work, not duplicates.
	RescueStuckJobsAfter time.Duration
	// WebPushAllowedHosts lists the hosts a Web Push endpoint may point at
	// ("*" allows any). Defaults to DefaultWebPushHosts.
	WebPushAllowedHosts []string
	// APNsTopic is the default APNs topic for devices registered without one.
	APNsTopic string
	// IngestTransactions bounds the ingest transactions in flight at once per
	// process; concurrent ingests beyond it share transactions (group
	// commit). Fewer, larger transactions are faster as long as they keep
	// the database busy. Defaults to the number of CPUs, at least 2.
	IngestTransactions int
	// ObservedHorizon is the earliest observed_at a reading may have; older
	// readings are rejected unless the request is an explicit backfill.
	// Defaults to DefaultObservedHorizon (2000-01-01).
	ObservedHorizon time.Time
	// AuthCacheTTL is how long a successful token lookup is remembered, and so
	// how long a revoked token or a disabled user may still work. Defaults to
	// 1 second; negative disables the cache.
	AuthCacheTTL time.Duration
}

// DefaultObservedHorizon is the default of Config.ObservedHorizon.
var DefaultObservedHorizon = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// BackfillHorizon is the earliest observed_at any reading may have, even in
// an explicit backfill.
var BackfillHorizon = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

// DefaultWebPushHosts are the push services of the major browsers.
var DefaultWebPushHosts = []string{
	"fcm.googleapis.com", "updates.push.services.mozilla.com", "web.push.apple.com",
	"*.notify.windows.com", "push.services.mozilla.com",
}

// Engine runs Tend's use cases against Postgres and River.
type Engine struct {
	pool    *pgxpool.Pool
	log     *slog.Logger
	rules   atomic.Pointer[rules.Pack] // swapped when rules change; read with pack()
	senders notify.Senders
	now     func() time.Time
	river   *river.Client[pgx.Tx]
	metrics *metrics
	cfg     Config

	notifyMetrics *notifyMetrics // quiet hours, undelivered (notifymetrics.go)

	partitionsMu sync.Mutex
	partitions   map[string]bool // months known to have a readings partition

	auth     *authCache
	ingester *batcher[ingestJob] // group commit (groupcommit.go)

	ruleSync ruleSync // stored rules: seed, reload, refresh (rulestore.go)

	// clientID is this process's River client id; with the heartbeat it lets
	// other processes rescue its jobs quickly after a crash (heartbeat.go).
	clientID      string
	stopHeartbeat context.CancelFunc
	heartbeatDone chan struct{}
}

// New validates cfg and builds an Engine. Call Start to run workers.
func New(cfg Config) (*Engine, error) {
	if cfg.Pool == nil {
		return nil, errors.New("engine: Config.Pool is required")
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rules == nil {
		p, err := rules.Default()
		if err != nil {
			return nil, fmt.Errorf("engine: default rules: %w", err)
		}
		cfg.Rules = p
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	if cfg.WebPushAllowedHosts == nil {
		cfg.WebPushAllowedHosts = DefaultWebPushHosts
	}
	cfg.NotifyWorkers = cmp.Or(cfg.NotifyWorkers, 100)
	cfg.FetchCooldown = cmp.Or(cfg.FetchCooldown, 20*time.Millisecond)
	cfg.RescueStuckJobsAfter = cmp.Or(cfg.RescueStuckJobsAfter, time.Minute)
	cfg.AuthCacheTTL = cmp.Or(cfg.AuthCacheTTL, time.Second)
	if cfg.ObservedHorizon.IsZero() {
		cfg.ObservedHorizon = DefaultObservedHorizon
	}
	if cfg.ObservedHorizon.Before(BackfillHorizon) {
		return nil, fmt.Errorf("engine: ObservedHorizon %s is before %s", cfg.ObservedHorizon.Format(time.DateOnly), BackfillHorizon.Format(time.DateOnly))
	}
	cfg.RulesRefresh = cmp.Or(cfg.RulesRefresh, 2*time.Second)
	cfg.MissingDataInterval = cmp.Or(cfg.MissingDataInterval, 10*time.Minute)

	e := &Engine{
		pool:       cfg.Pool,
		log:        cfg.Logger.With("component", "engine"),
		senders:    cfg.Senders,
		now:        cfg.Now,
		cfg:        cfg,
		partitions: map[string]bool{},
		auth:       newAuthCache(cfg.AuthCacheTTL, 50_000),
	}
	e.rules.Store(cfg.Rules)
	e.ingester = e.newIngester(cmp.Or(cfg.IngestTransactions, max(2, runtime.GOMAXPROCS(0))))
	m, err := newMetrics(cfg.Registerer, cfg.Pool)
	if err != nil {
		return nil, err
	}
	e.metrics = m
	if e.notifyMetrics, err = newNotifyMetrics(cfg.Registerer, cfg.Pool); err != nil {
		return nil, err
	}

	workers := river.NewWorkers()
	river.AddWorker(workers, &deliverWorker{e: e})
	notifyPeriodic := e.addNotifyWorkers(workers) // quiet-hours catch-ups (catchup.go)
	river.AddWorker(workers, &partitionWorker{e: e})
	river.AddWorker(workers, &missingWorker{e: e})
	e.clientID = newClientID()
	rc := &river.Config{
		ID:                   e.clientID,
		Logger:               cfg.Logger.With("component", "river"),
		Workers:              workers,
		RescueStuckJobsAfter: cfg.RescueStuckJobsAfter,
		FetchCooldown:        cfg.FetchCooldown,
		JobTimeout:           time.Minute,
	}
	if cfg.RunWorkers {
		rc.Queues = map[string]river.QueueConfig{
			river.QueueDefault: {MaxWorkers: 10},
			queueNotify:        {MaxWorkers: cfg.NotifyWorkers},
		}
		rc.PeriodicJobs = []*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(6*time.Hour),
				func() (river.JobArgs, *river.InsertOpts) { return partitionArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true}),
		}
		rc.PeriodicJobs = append(rc.PeriodicJobs, notifyPeriodic...)
		if cfg.MissingDataInterval > 0 {
			rc.PeriodicJobs = append(rc.PeriodicJobs, river.NewPeriodicJob(river.PeriodicInterval(cfg.MissingDataInterval),
				func() (river.JobArgs, *river.InsertOpts) { return missingArgs{}, nil }, nil))
		}
	}
	client, err := river.NewClient(riverpgxv5.New(cfg.Pool), rc)
	if err != nil {
		return nil, fmt.Errorf("engine: river client: %w", err)
	}
	e.river = client
	return e, nil
}

// Start loads the stored rules (seeding them from the default pack when there
// are none) and keeps them fresh, and runs the River workers when
// Config.RunWorkers is set.
func (e *Engine) Start(ctx context.Context) error {
	if err := e.startRules(ctx); err != nil {
		return err
	}
	if !e.cfg.RunWorkers {
		return nil
	}
	if err := e.river.Start(ctx); err != nil {
		return fmt.Errorf("engine: start workers: %w", err)
	}
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.stopHeartbeat, e.heartbeatDone = cancel, make(chan struct{})
	go e.runHeartbeat(hctx, e.heartbeatDone)
	return nil
}

// Stop stops the workers, letting running jobs finish until ctx is done.
func (e *Engine) Stop(ctx context.Context) error {
	e.stopRules()
	if !e.cfg.RunWorkers {
		return nil
	}
	if err := e.river.Stop(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("engine: stop workers: %w", err)
	}
	if e.stopHeartbeat != nil {
		e.stopHeartbeat()
		<-e.heartbeatDone
		e.forgetHeartbeat(context.WithoutCancel(ctx))
	}
	return nil
}

// River returns the engine's River client (for job inspection and tests).
func (e *Engine) River() *river.Client[pgx.Tx] { return e.river }

// Pool returns the engine's connection pool.
func (e *Engine) Pool() *pgxpool.Pool { return e.pool }

// Rules returns the active rule pack.
func (e *Engine) Rules() *rules.Pack { return e.rules.Load() }

// pack is the rule pack in force now; an ingest takes it once and uses it
// throughout, so a concurrent rule change never splits one evaluation.
func (e *Engine) pack() *rules.Pack { return e.rules.Load() }

// inTx runs fn in a transaction, committing when it returns nil.
func (e *Engine) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return e.inTxOpts(ctx, pgx.TxOptions{}, fn)
}

// readTx runs fn in a read-only, repeatable-read transaction: one consistent
// snapshot that cannot write anything.
func (e *Engine) readTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return e.inTxOpts(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// inTxOpts runs fn in a transaction with opts, committing when fn returns nil.
func (e *Engine) inTxOpts(ctx context.Context, opts pgx.TxOptions, fn func(tx pgx.Tx) error) error {
	tx, err := e.pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		var pe *pgconn.PgError
		if !errors.As(err, &pe) && unavailable(err) {
			return fmt.Errorf("commit: %w: %w", ErrCommitUnknown, err)
		}
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
