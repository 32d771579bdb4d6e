// Package presence says who is reachable now. A user is online while any of
// their clients holds the live stream (or, for a patient, a device holds an
// MQTT connection) in any process; away when their client reports them idle;
// offline otherwise, with the time they were last seen.
//
// Each process keeps one heartbeat row per connected user in the presence
// table (user, process, seen_at), refreshed every Heartbeat; a user is online
// while any row of theirs is fresher than Stale. A process that dies stops
// refreshing, so its users drop out within Stale plus one heartbeat of
// another process, which deletes the stale rows and tells the streams. Each
// change of a user's state is an ephemeral presence event (NOTIFY, never
// stored, never audited); the stream decides who may see it with the rules of
// this package.
package presence

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/engine/internal/events"
)

// Defaults of Config.
const (
	DefaultHeartbeat = 5 * time.Second
	DefaultStale     = 15 * time.Second
	DefaultIdle      = 5 * time.Minute
)

// The states a user's presence may have.
const (
	Online  = "online"
	Away    = "away"
	Offline = "offline"
)

// Event is the type of the ephemeral stream event of a change of presence.
const Event = "presence"

// Config configures a Tracker.
type Config struct {
	Pool   *pgxpool.Pool
	Logger *slog.Logger
	Now    func() time.Time
	// Heartbeat is how often this process refreshes its rows and sweeps
	// other processes' stale ones. Defaults to 5 s.
	Heartbeat time.Duration
	// Stale is the age after which a row no longer counts: a process that
	// died stops counting its users within Stale + Heartbeat. Defaults to
	// 15 s.
	Stale time.Duration
	// Idle is how long a client waits without its user's input before it
	// reports them away (it reads this from GET /v1/me/presence). Defaults
	// to 5 minutes.
	Idle time.Duration
}

// Tracker keeps this process's heartbeat rows.
type Tracker struct {
	pool    *pgxpool.Pool
	log     *slog.Logger
	now     func() time.Time
	cfg     Config
	process uuid.UUID

	mu    sync.Mutex
	conns map[uuid.UUID]int // connections of this process per user
}

// New builds a Tracker for one process.
func New(cfg Config) *Tracker {
	cfg.Logger = cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	cfg.Heartbeat = cmp.Or(cfg.Heartbeat, DefaultHeartbeat)
	cfg.Stale = cmp.Or(cfg.Stale, DefaultStale)
	cfg.Idle = cmp.Or(cfg.Idle, DefaultIdle)
	return &Tracker{pool: cfg.Pool, log: cfg.Logger.With("component", "presence"), now: cfg.Now, cfg: cfg,
		process: uuid.New(), conns: map[uuid.UUID]int{}}
}

// Idle returns how long a client waits before it reports its user away.
func (t *Tracker) Idle() time.Duration { return t.cfg.Idle }

// Heartbeat returns how often Beat should run.
func (t *Tracker) Heartbeat() time.Duration { return t.cfg.Heartbeat }

// Fresh returns the time after which a heartbeat row still counts.
func (t *Tracker) Fresh() time.Time { return t.now().Add(-t.cfg.Stale) }

// Connect counts a connection of user to this process. The first one writes
// the process's row; when the user was offline everywhere it tells the
// streams.
func (t *Tracker) Connect(ctx context.Context, user uuid.UUID) error {
	t.mu.Lock()
	t.conns[user]++
	first := t.conns[user] == 1
	t.mu.Unlock()
	if !first {
		return nil
	}
	var was, sent bool
	err := t.pool.QueryRow(ctx, connectSQL, user, t.process, t.now(), t.Fresh(), events.EphemeralChannel,
		notice(user)).Scan(&was, &sent)
	if err != nil {
		return fmt.Errorf("presence connect: %w", err)
	}
	return nil
}

// Disconnect ends a connection counted by Connect. The last one of the
// process deletes its row; when no other process holds the user, the
// streams are told. It runs even when ctx is done (the client went away).
func (t *Tracker) Disconnect(ctx context.Context, user uuid.UUID) error {
	t.mu.Lock()
	t.conns[user]--
	last := t.conns[user] <= 0
	if last {
		delete(t.conns, user)
	}
	t.mu.Unlock()
	if !last {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := t.pool.Exec(ctx, disconnectSQL, user, t.process, t.now(), t.Fresh(), events.EphemeralChannel,
		notice(user)); err != nil {
		return fmt.Errorf("presence disconnect: %w", err)
	}
	return nil
}

// Beat refreshes this process's rows and deletes every process's stale ones,
// telling the streams of each user left with none.
func (t *Tracker) Beat(ctx context.Context) error {
	t.mu.Lock()
	users := make([]uuid.UUID, 0, len(t.conns))
	for u := range t.conns {
		users = append(users, u)
	}
	t.mu.Unlock()
	now := t.now()
	if len(users) > 0 {
		if _, err := t.pool.Exec(ctx, beatSQL, users, t.process, now); err != nil {
			return fmt.Errorf("presence heartbeat: %w", err)
		}
	}
	if _, err := t.pool.Exec(ctx, sweepSQL, now.Add(-t.cfg.Stale), events.EphemeralChannel, Event); err != nil {
		return fmt.Errorf("presence sweep: %w", err)
	}
	return nil
}

// Run beats every Heartbeat until ctx is done, then deletes this process's
// rows (a clean shutdown leaves no one online).
func (t *Tracker) Run(ctx context.Context) {
	tick := time.NewTicker(t.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if _, err := t.pool.Exec(stop, leaveSQL, t.process, events.EphemeralChannel, Event); err != nil {
				t.log.WarnContext(stop, "presence: leaving", "error", err)
			}
			cancel()
			return
		case <-tick.C:
			if err := t.Beat(ctx); err != nil && ctx.Err() == nil {
				t.log.WarnContext(ctx, "presence heartbeat", "error", err)
			}
		}
	}
}

// notice is the NOTIFY payload of a change of user's presence.
func notice(user uuid.UUID) string {
	return `{"type":"` + Event + `","user_id":"` + user.String() + `"}`
}

// Changed tells the streams of every process that user's presence changed
// (away, back, hidden, shown), at commit of q's transaction.
func Changed(ctx context.Context, q interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}, user uuid.UUID) error {
	return events.Notify(ctx, q, events.Ephemeral{Type: Event, From: user})
}
