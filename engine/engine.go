package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/alerting"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/care"
	"github.com/tendhealth/tend/engine/delivery"
	"github.com/tendhealth/tend/engine/identity"
	"github.com/tendhealth/tend/engine/ingest"
	"github.com/tendhealth/tend/engine/internal/metrics"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/presence"
	"github.com/tendhealth/tend/engine/internal/rescue"
	"github.com/tendhealth/tend/engine/messaging"
	"github.com/tendhealth/tend/engine/orgs"
	"github.com/tendhealth/tend/engine/records"
	"github.com/tendhealth/tend/engine/reminder"
	"github.com/tendhealth/tend/engine/retention"
	"github.com/tendhealth/tend/engine/rulestore"
	"github.com/tendhealth/tend/engine/stream"
	"github.com/tendhealth/tend/engine/triage"
	"github.com/tendhealth/tend/notify"
	"github.com/tendhealth/tend/rules"
	"github.com/tendhealth/tend/sealed"
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
	// ReminderInterval is how often reminder doses are materialised for the
	// next 48 hours (a periodic River job, with RunWorkers). Defaults to 1
	// hour; negative disables it (creating or changing a schedule still
	// materialises its doses at once).
	ReminderInterval time.Duration
	// MissedDoseInterval is how often pending doses whose grace period has
	// ended are decided (missed, or taken for a measurement already made; a
	// periodic River job, with RunWorkers). Defaults to 15 seconds; negative
	// disables the sweep.
	MissedDoseInterval time.Duration
	// RetentionInterval is how often each organisation's retention periods
	// are applied (a periodic River job, with RunWorkers): readings,
	// messages, attachments and delivery records older than the periods
	// are deleted in batches. Defaults to 1 hour; negative disables the job
	// (`tend retention run` still works).
	RetentionInterval time.Duration
	// RetentionBatch is how many rows one retention transaction deletes.
	// Defaults to 1,000.
	RetentionBatch int
	// EscalationSweepInterval is how often open alerts whose escalation step
	// is due are escalated (a periodic River job, with RunWorkers): a step
	// runs at most this long after its deadline. Defaults to 2 seconds;
	// negative disables the sweep.
	EscalationSweepInterval time.Duration
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
	// FetchPollInterval is how often River looks for jobs that became due
	// without a notification (scheduled jobs reaching their time: a dose's
	// reminder), so it bounds how late such a job starts. Defaults to 200ms.
	FetchPollInterval time.Duration
	// RescueStuckJobsAfter is how long a running job may go without finishing
	// before River runs it again. Defaults to 1 minute. It is the backstop:
	// the jobs of a crashed process are normally re-run within about 12
	// seconds by the worker heartbeat (internal/rescue).
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
	// AuthCacheHold is how long a successful token lookup is remembered
	// while this process checks for revocations twice per AuthCacheTTL (so a
	// revocation still takes effect within AuthCacheTTL, in every process).
	// Defaults to 5 minutes.
	AuthCacheHold time.Duration
	// EventRetention is how long the live stream's events stay in the log,
	// for clients that reconnect to replay what they missed (a periodic job
	// prunes older ones, with RunWorkers). Defaults to 24 hours.
	EventRetention time.Duration
	// AuditSealInterval is how often the audit sealer chains newly committed
	// audit entries (with RunWorkers; one process at a time seals). Defaults
	// to 200 milliseconds.
	AuditSealInterval time.Duration
	// OIDC turns on single sign-on with OpenID Connect ID tokens (nil: off).
	OIDC *OIDCConfig
	// Keys seal message bodies and symptom notes at rest (AES-256-GCM; the
	// first key seals, every key opens). Nil: nothing can be sealed, so
	// posting messages and reporting symptoms fail with ErrNoKeys, and
	// stored messages do not open.
	Keys *sealed.Keyring
	// RecordPublicKey is the organisation's record key (X-Wing public key,
	// 1,216 bytes; `tend records keygen`) that every end-to-end encrypted
	// message is also wrapped to, so the record is kept. One per deployment
	// today (one Tend is one organisation). Nil: no thread can be encrypted.
	RecordPublicKey []byte
	// MessagePushHold is how long a new message waits for the recipient to
	// read it in the app before it is pushed. Defaults to 30 seconds;
	// negative pushes at once.
	MessagePushHold time.Duration
	// AttachmentMaxBytes is the largest attachment accepted (the API's body
	// limit on POST /v1/threads/{id}/attachments). Defaults to 10 MiB.
	AttachmentMaxBytes int64
	// Attachments stores attachments' sealed bytes. Defaults to Postgres
	// (PostgresAttachments).
	Attachments AttachmentStore
	// BroadcastBatch is how many patient threads one broadcast fan-out job
	// serves (in one transaction). Defaults to 500.
	BroadcastBatch int
	// MediaMaxBytes is the largest audio or video attachment accepted.
	// Defaults to 50 MiB.
	MediaMaxBytes int64
	// PresenceHeartbeat is how often a process refreshes the presence of
	// the users connected to it. Defaults to 5 seconds.
	PresenceHeartbeat time.Duration
	// PresenceStale is the age after which a process's presence rows no
	// longer count (its users go offline within it plus one heartbeat when
	// it dies). Defaults to 15 seconds.
	PresenceStale time.Duration
	// PresenceIdle is how long a client waits without its user's input
	// before it reports them away. Defaults to 5 minutes.
	PresenceIdle time.Duration
}

// DefaultRotateBatch is how many records one transaction of RotateKeys
// re-seals by default.
const DefaultRotateBatch = messaging.DefaultRotateBatch

// DefaultMessagePushHold is the default of Config.MessagePushHold.
const DefaultMessagePushHold = messaging.DefaultPushHold

// DefaultObservedHorizon is the default of Config.ObservedHorizon.
var DefaultObservedHorizon = ingest.DefaultObservedHorizon

// BackfillHorizon is the earliest observed_at any reading may have, even in
// an explicit backfill.
var BackfillHorizon = ingest.BackfillHorizon

// DefaultWebPushHosts are the push services of the major browsers.
var DefaultWebPushHosts = []string{
	"fcm.googleapis.com", "updates.push.services.mozilla.com", "web.push.apple.com",
	"*.notify.windows.com", "push.services.mozilla.com",
}

// The use-case services, under names that let Engine embed them side by side.
type (
	identityService = identity.Service
	careService     = care.Service
	ingestService   = ingest.Service
	triageService   = triage.Service
	rulesService    = rulestore.Service
	reminderService = reminder.Service
	messageService  = messaging.Service
)

// Engine is Tend's composition root: it builds one service per use case,
// wires them together, registers their River workers (workers.go) and runs
// them. The use cases' methods are promoted from the embedded services, so a
// caller holds one *Engine; package api depends on narrow interfaces of it.
type Engine struct {
	*identityService
	*careService
	*ingestService
	*triageService
	*rulesService
	*reminderService
	*messageService

	pool      *pgxpool.Pool
	log       *slog.Logger
	cfg       Config
	river     *river.Client[pgx.Tx]
	delivery  *delivery.Service
	alerting  *alerting.Service
	heartbeat *rescue.Heartbeat
	presence  *presence.Tracker
	stopBeat  context.CancelFunc
	beatDone  chan struct{}
	audit     audit.Writer
	stopSeal  context.CancelFunc
	sealDone  chan struct{}
	stream    *stream.Service
	records   *records.Service
	orgs      *orgs.Service
	retention *retention.Service
}

// New validates cfg and builds an Engine. Call Start to run workers.
func New(cfg Config) (*Engine, error) {
	if cfg.Pool == nil {
		return nil, errors.New("engine: Config.Pool is required")
	}
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	m, err := metrics.New(cfg.Registerer, cfg.Pool)
	if err != nil {
		return nil, err
	}
	e := &Engine{pool: cfg.Pool, log: cfg.Logger.With("component", "engine"), cfg: cfg}
	log, now, aw := e.log, cfg.Now, audit.Writer{Now: cfg.Now}
	e.audit = aw
	jobs := func() *river.Client[pgx.Tx] { return e.river }

	e.delivery = delivery.New(delivery.Config{Pool: cfg.Pool, Logger: log, Now: now, Jobs: jobs, Senders: cfg.Senders,
		Metrics: m, Audit: aw, APNsTopic: cfg.APNsTopic,
		OnUndelivered: func(ctx context.Context, id uuid.UUID) { e.alerting.EscalateUndelivered(ctx, id) }})
	e.presence = presence.New(presence.Config{Pool: cfg.Pool, Logger: log, Now: now, Heartbeat: cfg.PresenceHeartbeat,
		Stale: cfg.PresenceStale, Idle: cfg.PresenceIdle})
	e.alerting = alerting.New(alerting.Config{Pool: cfg.Pool, Logger: log, Now: now, Jobs: jobs, Metrics: m, Audit: aw,
		PresenceFresh: e.presence.Fresh})
	e.rulesService = rulestore.New(rulestore.Config{Pool: cfg.Pool, Logger: log, Now: now, Audit: aw, Rules: cfg.Rules,
		RulesRefresh: cfg.RulesRefresh})
	e.identityService = identity.New(identity.Config{Pool: cfg.Pool, Now: now, Audit: aw, Delivery: e.delivery,
		AuthCacheTTL: cfg.AuthCacheTTL, AuthCacheHold: cfg.AuthCacheHold, Log: e.log, WebPushAllowedHosts: cfg.WebPushAllowedHosts, APNsTopic: cfg.APNsTopic, OIDC: cfg.OIDC})
	e.careService = care.New(care.Config{Pool: cfg.Pool, Now: now, Audit: aw, Rules: e.rulesService.PackFor,
		EnsureRules: e.rulesService.EnsureSeeded, Presence: e.presence})
	e.ingestService = ingest.New(ingest.Config{Pool: cfg.Pool, Logger: log, Now: now, Metrics: m, Audit: aw, Alerting: e.alerting,
		Rules: e.rulesService.PackFor, Transactions: cfg.IngestTransactions, ObservedHorizon: cfg.ObservedHorizon, Keys: cfg.Keys})
	e.triageService = triage.New(triage.Config{Pool: cfg.Pool, Now: now, Audit: aw, Jobs: jobs})
	e.reminderService = reminder.New(reminder.Config{Pool: cfg.Pool, Logger: log, Now: now, Jobs: jobs, Audit: aw,
		Alerting: e.alerting, Rules: e.rulesService.PackFor})
	e.messageService = messaging.New(messaging.Config{Pool: cfg.Pool, Logger: log, Now: now, Audit: aw, Jobs: jobs,
		Delivery: e.delivery, Keys: cfg.Keys, PushHold: cfg.MessagePushHold, Transactions: cfg.IngestTransactions,
		Attachments: cfg.Attachments, AttachmentMaxBytes: cfg.AttachmentMaxBytes, MediaMaxBytes: cfg.MediaMaxBytes,
		BroadcastBatch: cfg.BroadcastBatch, Metrics: m, RecordKey: cfg.RecordPublicKey, Presence: e.presence})
	e.records = records.New(records.Config{Pool: cfg.Pool, Now: now, Audit: aw, Keys: cfg.Keys,
		OpenAttachment: e.openForExport})
	e.retention = retention.New(retention.Config{Pool: cfg.Pool, Logger: log, Now: now, Audit: aw, Metrics: m,
		Batch: cfg.RetentionBatch, DeleteBlobs: e.messageService.DeleteBlobs})
	e.orgs = orgs.New(orgs.Config{Pool: cfg.Pool, Now: now, Audit: aw})
	e.stream = stream.New(stream.Config{Pool: cfg.Pool, Logger: log, Now: now, Retention: cfg.EventRetention,
		Presence: e.presence})

	clientID := rescue.NewClientID()
	e.heartbeat = &rescue.Heartbeat{Pool: cfg.Pool, Now: now, Log: log, ClientID: clientID, Rescued: m.Rescued}
	client, err := river.NewClient(riverpgxv5.New(cfg.Pool), e.riverConfig(clientID))
	if err != nil {
		return nil, fmt.Errorf("engine: river client: %w", err)
	}
	e.river = client
	return e, nil
}

// withDefaults fills in the defaults Config documents and checks what
// has none.
func (cfg *Config) withDefaults() error {
	cfg.Logger = cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rules == nil {
		p, err := rules.Default()
		if err != nil {
			return fmt.Errorf("engine: default rules: %w", err)
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
	cfg.FetchPollInterval = max(cmp.Or(cfg.FetchPollInterval, 200*time.Millisecond), cfg.FetchCooldown)
	cfg.RescueStuckJobsAfter = cmp.Or(cfg.RescueStuckJobsAfter, time.Minute)
	cfg.AuthCacheTTL = cmp.Or(cfg.AuthCacheTTL, time.Second)
	cfg.AuthCacheHold = cmp.Or(cfg.AuthCacheHold, 5*time.Minute)
	cfg.RulesRefresh = cmp.Or(cfg.RulesRefresh, 2*time.Second)
	cfg.AuditSealInterval = cmp.Or(cfg.AuditSealInterval, 200*time.Millisecond)
	cfg.MissingDataInterval = cmp.Or(cfg.MissingDataInterval, 10*time.Minute)
	cfg.EscalationSweepInterval = cmp.Or(cfg.EscalationSweepInterval, alerting.DefaultSweepInterval)
	cfg.RetentionInterval = cmp.Or(cfg.RetentionInterval, time.Hour)
	cfg.IngestTransactions = cmp.Or(cfg.IngestTransactions, max(2, runtime.GOMAXPROCS(0)))
	if cfg.ObservedHorizon.IsZero() {
		cfg.ObservedHorizon = DefaultObservedHorizon
	}
	if cfg.ObservedHorizon.Before(BackfillHorizon) {
		return fmt.Errorf("engine: ObservedHorizon %s is before %s", cfg.ObservedHorizon.Format(time.DateOnly), BackfillHorizon.Format(time.DateOnly))
	}
	if cfg.OIDC != nil {
		if err := identity.ValidateOIDCConfig(*cfg.OIDC); err != nil {
			return fmt.Errorf("engine: %w", err)
		}
	}
	return nil
}

// Start loads the stored rules (seeding them from the default pack when there
// are none) and keeps them fresh, and runs the River workers and the worker
// heartbeat when Config.RunWorkers is set.
func (e *Engine) Start(ctx context.Context) error {
	if err := e.rulesService.Start(ctx); err != nil {
		return err
	}
	e.identityService.Start(ctx)
	if !e.cfg.RunWorkers {
		return nil
	}
	if err := e.river.Start(ctx); err != nil {
		return fmt.Errorf("engine: start workers: %w", err)
	}
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.stopBeat, e.beatDone = cancel, make(chan struct{})
	go e.heartbeat.Run(bctx, e.beatDone)
	sctx, stopSeal := context.WithCancel(context.WithoutCancel(ctx))
	e.stopSeal, e.sealDone = stopSeal, make(chan struct{})
	sealer := &audit.Sealer{DB: e.pool, Interval: e.cfg.AuditSealInterval, Log: e.log}
	go sealer.Run(sctx, e.sealDone)
	return nil
}

// Stop ends the live streams and stops the workers, letting running jobs
// finish until ctx is done.
func (e *Engine) Stop(ctx context.Context) error {
	e.rulesService.Stop()
	e.identityService.Stop()
	e.stream.Close()
	if !e.cfg.RunWorkers {
		return nil
	}
	if err := e.river.Stop(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("engine: stop workers: %w", err)
	}
	if e.stopBeat != nil {
		e.stopBeat()
		<-e.beatDone
		e.heartbeat.Forget(context.WithoutCancel(ctx))
	}
	if e.stopSeal != nil {
		e.stopSeal()
		<-e.sealDone
	}
	return nil
}

// ListAudit returns audit entries in order (admins only); the listing is
// itself audited.
func (e *Engine) ListAudit(ctx context.Context, a access.Actor, f audit.Filter) ([]audit.Stored, string, error) {
	return e.audit.List(ctx, e.pool, a, f)
}

// AuditRefused records a refused access (denied, not found or out of scope)
// in its own transaction: the request wrote nothing else.
func (e *Engine) AuditRefused(ctx context.Context, a access.Actor, entry audit.Entry) error {
	entry.Outcome = audit.OutcomeRefused
	return pg.InTx(ctx, e.pool, func(tx pgx.Tx) error { return e.audit.Write(ctx, tx, a, entry) })
}

// SealAudit chains up to max committed audit entries now (the background
// sealer does this every AuditSealInterval) and returns how many it sealed.
func (e *Engine) SealAudit(ctx context.Context, max int) (int, error) {
	return audit.Seal(ctx, e.pool, max)
}

// VerifyAudit walks the audit hash chain (and checks it against cp when not
// nil); Report.Break names the first broken entry.
func (e *Engine) VerifyAudit(ctx context.Context, cp *audit.Checkpoint) (audit.Report, error) {
	return audit.Verify(ctx, e.pool, cp)
}

// AuditHead returns the audit chain's current checkpoint, unsigned.
func (e *Engine) AuditHead(ctx context.Context) (audit.Checkpoint, error) {
	return audit.Head(ctx, e.pool, e.cfg.Now())
}

// Jobs returns the River client, for the operators' job dashboard.
func (e *Engine) Jobs() *river.Client[pgx.Tx] { return e.river }

// Rules returns the active default rule pack, shared by every organisation.
func (e *Engine) Rules() *rules.Pack { return e.rulesService.Pack() }

// RulesFor returns the active rule pack of organisation org's patients: the
// default pack with the organisation's overrides applied.
func (e *Engine) RulesFor(org uuid.UUID) *rules.Pack { return e.rulesService.PackFor(org) }
