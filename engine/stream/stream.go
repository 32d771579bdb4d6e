// Package stream is the live stream's use case: it follows the event log
// (engine/internal/events) across processes and hands each connected user
// the events that user may see.
//
// One listener per process LISTENs on events.Channel on a connection of its
// own (github.com/jackc/pgxlisten: it reconnects, and after every
// (re)connect this package reads the log from the last event it saw, so a
// dropped connection loses nothing). Events are published in id order, and
// an id only once every lower id is final: ids are taken at insert but
// transactions commit in any order, so the listener waits for the appends
// in flight (events.AppendLockClass) before it publishes past them. A
// client's Last-Event-ID then says it has every event up to it, and replay
// from it misses nothing. Each event is read once per process,
// with its care team's members, and a process-local hub fans it out to the
// subscriptions whose actor may see it. A subscription's buffer is bounded:
// a client too slow to keep up is dropped (ErrSlow), never allowed to hold
// up the others, and reconnects with the id of the last event it received.
package stream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgxlisten"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/internal/events"
	"github.com/tendhealth/tend/engine/internal/presence"
	"github.com/tendhealth/tend/engine/internal/scope"
)

// Defaults of Config.
const (
	DefaultRetention      = 24 * time.Hour
	DefaultPruneEvery     = time.Hour
	DefaultReconnectDelay = 2 * time.Second
	DefaultBuffer         = 64
	DefaultReplayLimit    = 1000
	DefaultReadyTimeout   = 10 * time.Second
)

// ApplicationName names the listener's connection in pg_stat_activity.
const ApplicationName = "tend-stream"

// Reset is the type of the message that tells a client it is too far behind
// to replay: it should refetch what it shows.
const Reset = "reset"

var (
	// ErrSlow ends a subscription whose client did not keep up.
	ErrSlow = errors.New("stream: client too slow, reconnect with Last-Event-ID")
	// ErrClosed ends every subscription when the process stops streaming.
	ErrClosed = errors.New("stream: closed")
)

// Config configures a Service.
type Config struct {
	Pool   *pgxpool.Pool
	Logger *slog.Logger
	Now    func() time.Time
	// Retention is how long events stay in the log for replay. Defaults to
	// DefaultRetention (24 h).
	Retention time.Duration
	// ReconnectDelay is how long the listener waits before reconnecting.
	// Defaults to 2 s.
	ReconnectDelay time.Duration
	// Buffer is how many events a subscription may have waiting before it is
	// dropped as too slow. Defaults to 64.
	Buffer int
	// ReplayLimit is the most events a reconnecting client is replayed; a
	// client further behind gets a reset. Defaults to 1000.
	ReplayLimit int
	// ReadyTimeout bounds how long the first subscription waits for the
	// listener's first connection. Defaults to 10 s.
	ReadyTimeout time.Duration
	// Presence counts each subscription as its user being online, and its
	// heartbeat runs while the listener does. Nil tracks no presence.
	Presence *presence.Tracker
}

// Service streams events to subscriptions.
type Service struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	now  func() time.Time
	cfg  Config

	start   sync.Once
	ready   chan struct{} // closed once the listener first listens
	cancel  context.CancelFunc
	runCtx  context.Context // the listener's and the follower's, ended by Close
	stopped chan struct{}   // closed when the listener has returned
	running sync.WaitGroup  // the follower's goroutine

	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
	// published is the id up to which every event has been handed to the
	// subscriptions open at the time.
	published int64
}

// New builds a Service; its listener starts with the first subscription.
func New(cfg Config) *Service {
	cfg.Logger = cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	cfg.Retention = cmp.Or(cfg.Retention, DefaultRetention)
	cfg.ReconnectDelay = cmp.Or(cfg.ReconnectDelay, DefaultReconnectDelay)
	cfg.Buffer = cmp.Or(cfg.Buffer, DefaultBuffer)
	cfg.ReplayLimit = cmp.Or(cfg.ReplayLimit, DefaultReplayLimit)
	cfg.ReadyTimeout = cmp.Or(cfg.ReadyTimeout, DefaultReadyTimeout)
	return &Service{pool: cfg.Pool, log: cfg.Logger.With("component", "stream"), now: cfg.Now, cfg: cfg,
		ready: make(chan struct{}), stopped: make(chan struct{}), subs: map[*Subscription]struct{}{}}
}

// Message is one event as streamed: its log id, type and JSON data (ids and
// states, never PHI). One Message is shared by every subscription that
// receives it: read only.
type Message struct {
	ID   int64
	Type string
	Data []byte
}

// Subscription is one connected client's view of the stream.
type Subscription struct {
	svc   *Service
	actor access.Actor
	// types, when set, makes this a process's own subscription (Follow):
	// every event of these types that belongs to no thread, whoever it
	// concerns, and nothing else.
	types    []string
	ch       chan *Message
	done     chan struct{}
	err      error // why done was closed; set before
	backlog  []*Message
	replayed map[int64]struct{}
	untrack  sync.Once // the presence connection ends once
	tracked  bool
	// after is the client's Last-Event-ID (0 for none): it has every event
	// up to it.
	after int64
}

// Backlog returns what to send before anything of Events: the events the
// client missed since its Last-Event-ID, or a single Reset message.
func (s *Subscription) Backlog() []*Message { return s.backlog }

// Events delivers new events the actor may see. Skip those Replayed reports.
func (s *Subscription) Events() <-chan *Message { return s.ch }

// Replayed reports whether the client already has the event: it was sent in
// the backlog, or it is not after the client's Last-Event-ID (which another
// process may have published before this one). An event that is never
// stored (id 0: typing) is never replayed.
func (s *Subscription) Replayed(id int64) bool {
	if id == 0 {
		return false
	}
	_, ok := s.replayed[id]
	return ok || (id > 0 && id <= s.after) // events that are not stored (typing) have no id
}

// Done is closed when the subscription ends on its own: the client was too
// slow (Err is ErrSlow) or the process stops streaming (ErrClosed).
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err says why Done was closed.
func (s *Subscription) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Subscribe opens a subscription for a. after is the client's Last-Event-ID
// (nil for none): the events after it that a may see are its backlog, or a
// Reset when they can no longer all be replayed.
func (s *Service) Subscribe(ctx context.Context, a access.Actor, after *int64) (*Subscription, error) {
	if a.UserID == uuid.Nil || a.Role == "" {
		return nil, access.ErrUnauthenticated
	}
	return s.subscribe(ctx, &Subscription{svc: s, actor: a}, after)
}

// Follow opens a subscription to every event of the given types that
// belongs to no thread, for all patients: what a process needs to act on
// events itself (the MQTT listener sends retake requests to the devices
// connected to it). Its backlog, after the id after, is replayed as
// Subscribe's is. buffer bounds its events waiting (0: Config.Buffer).
func (s *Service) Follow(ctx context.Context, types []string, after *int64, buffer int) (*Subscription, error) {
	if len(types) == 0 {
		return nil, errors.New("stream: follow: no event types")
	}
	return s.subscribe(ctx, &Subscription{svc: s, types: types, ch: make(chan *Message, cmp.Or(buffer, s.cfg.Buffer))}, after)
}

// subscribe waits for the listener, registers sub and replays its backlog.
func (s *Service) subscribe(ctx context.Context, sub *Subscription, after *int64) (*Subscription, error) {
	s.start.Do(s.listen)
	wait, cancel := context.WithTimeout(ctx, s.cfg.ReadyTimeout)
	defer cancel()
	select {
	case <-s.ready:
	case <-s.stopped:
		return nil, ErrClosed
	case <-wait.Done():
		return nil, fmt.Errorf("stream: listener not connected: %w", wait.Err())
	}
	if sub.ch == nil {
		sub.ch = make(chan *Message, s.cfg.Buffer)
	}
	sub.done = make(chan struct{})
	if after != nil {
		sub.after = *after
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	s.subs[sub] = struct{}{}
	upto := s.published
	s.mu.Unlock()
	if a := sub.actor; s.cfg.Presence != nil && !sub.tracked &&
		a.Is(access.RolePatient, access.RoleClinician, access.RoleScheduler, access.RoleAdmin) {
		if err := s.cfg.Presence.Connect(ctx, a.UserID); err != nil {
			s.log.WarnContext(ctx, "stream: presence", "error", err)
		}
		sub.tracked = true // Connect counted it, even when its write failed
	}
	if after != nil {
		// Subscribed first, replayed second, up to what was published when
		// it subscribed: everything later comes through Events, once.
		if err := s.replay(ctx, sub, *after, upto); err != nil {
			sub.Close()
			return nil, err
		}
	}
	return sub, nil
}

// replay fills sub's backlog with the events after id after, up to id upto.
func (s *Service) replay(ctx context.Context, sub *Subscription, after, upto int64) error {
	var oldest *int64
	var newest int64
	if err := s.pool.QueryRow(ctx, positionSQL).Scan(&oldest, &newest); err != nil {
		return fmt.Errorf("stream position: %w", err)
	}
	// A reset carries what this process has published, not the newest id:
	// an event below the newest may still be in flight, and the client's
	// next Last-Event-ID must not pass it.
	reset := func() {
		sub.backlog = []*Message{{ID: upto, Type: Reset, Data: []byte(`{"reason":"the events since Last-Event-ID are no longer all retained: refetch"}`)}}
	}
	// An id past the newest ever issued comes from another database (or a
	// restored one); one before the oldest retained means events were
	// pruned since.
	first := newest + 1
	if oldest != nil {
		first = *oldest
	}
	if after > newest || after+1 < first {
		reset()
		return nil
	}
	a := sub.actor
	var rows pgx.Rows
	var err error
	if sub.types != nil {
		rows, err = s.pool.Query(ctx, replayTypesSQL, after, sub.types, s.cfg.ReplayLimit+1, upto)
	} else {
		rows, err = s.pool.Query(ctx, replaySQL, after, a.Role, a.PatientID, a.UserID, scope.PatientVisibleEvents(), s.cfg.ReplayLimit+1, upto)
	}
	if err != nil {
		return fmt.Errorf("stream replay: %w", err)
	}
	msgs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Message, error) {
		var m Message
		return &m, row.Scan(&m.ID, &m.Type, &m.Data)
	})
	if err != nil {
		return fmt.Errorf("stream replay: %w", err)
	}
	if len(msgs) > s.cfg.ReplayLimit {
		reset()
		return nil
	}
	sub.backlog = msgs
	sub.replayed = make(map[int64]struct{}, len(msgs))
	for _, m := range msgs {
		sub.replayed[m.ID] = struct{}{}
	}
	return nil
}

// Subscribers returns the number of open subscriptions of this process.
func (s *Service) Subscribers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

// drop removes sub; a non-nil why ends it with that error.
func (s *Service) drop(sub *Subscription, why error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropLocked(sub, why)
}

func (s *Service) dropLocked(sub *Subscription, why error) {
	if _, ok := s.subs[sub]; !ok {
		return
	}
	delete(s.subs, sub)
	if why != nil {
		sub.err = why
		close(sub.done)
	}
}

// publish hands ev to every subscription whose actor may see it, without
// ever waiting: a full buffer drops its subscription.
func (s *Service) publish(ev loaded) {
	m := &Message{ID: ev.id, Type: ev.typ, Data: ev.payload}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.published = max(s.published, ev.id)
	for sub := range s.subs {
		if sub.types != nil {
			if ev.thread || !slices.Contains(sub.types, ev.typ) {
				continue
			}
		} else if ev.thread {
			if !scope.SeesThreadEvent(sub.actor, ev.members) || sub.actor.UserID == ev.except {
				continue
			}
		} else if !scope.SeesEvent(sub.actor, ev.typ, ev.org, ev.patientID, ev.members) {
			continue
		}
		select {
		case sub.ch <- m:
		default:
			s.dropLocked(sub, ErrSlow)
		}
	}
}

// Close ends every subscription (ErrClosed) and stops the listener. New
// subscriptions are refused from then on.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	for sub := range s.subs {
		s.dropLocked(sub, ErrClosed)
	}
	s.mu.Unlock()
	s.start.Do(func() { close(s.stopped) }) // never started: nothing to stop
	if s.cancel != nil {
		s.cancel()
	}
	<-s.stopped
	s.running.Wait()
}

// listen starts the process's listener (once, from the first Subscribe).
func (s *Service) listen() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.runCtx = cancel, ctx
	f := &follower{svc: s}
	l := &pgxlisten.Listener{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			// Its own connection: LISTEN holds it for good, and a pooled
			// one could be handed to someone else.
			cc := s.pool.Config().ConnConfig.Copy()
			cc.RuntimeParams["application_name"] = ApplicationName
			return pgx.ConnectConfig(ctx, cc)
		},
		LogError: func(ctx context.Context, err error) {
			if ctx.Err() == nil {
				s.log.WarnContext(ctx, "stream listener", "error", err)
			}
		},
		ReconnectDelay: s.cfg.ReconnectDelay,
	}
	l.Handle(events.Channel, f)
	l.Handle(events.EphemeralChannel, &ephemeral{svc: s})
	var beats sync.WaitGroup
	if s.cfg.Presence != nil {
		beats.Go(func() { s.cfg.Presence.Run(ctx) })
	}
	go func() {
		defer close(s.stopped)
		_ = l.Listen(ctx) // returns when ctx is cancelled
		beats.Wait()
	}()
}

// loaded is one event as the follower reads it.
type loaded struct {
	id        int64
	typ       string
	patientID uuid.UUID
	payload   []byte
	// members are the care team's user ids, or for an event of a thread
	// (thread set) its participants'.
	members []uuid.UUID
	// org is the organisation of an event of no thread.
	org    uuid.UUID
	thread bool
	except uuid.UUID // a participant who is not sent the event (the typist)
}

// follower follows the event log for the listener, in id order. The
// listener's goroutine only notes that the log grew (HandleNotification);
// the follower's own goroutine (run) waits for the appends in flight and
// publishes, on a pooled connection, so that a slow append never holds up
// the events that are not stored (typing, presence) behind it.
type follower struct {
	svc     *Service
	started bool          // set by the listener's goroutine once, before run starts
	kick    chan struct{} // the log may have grown (buffered: one pending kick is enough)
	cursor  int64         // every event up to it is final and published; run's own
}

const loadPage = 500

// slowAppend is how long the follower waits for the appends in flight
// before it logs that they hold up the stream.
const slowAppend = 5 * time.Second

// HandleBacklog runs after each (re)connect, once LISTEN is in place: the
// first time it notes where the log ends and starts the follower's
// goroutine; later it has that goroutine publish whatever was committed
// while the connection was down.
func (f *follower) HandleBacklog(ctx context.Context, _ string, conn *pgx.Conn) error {
	if f.started {
		f.poke()
		return nil
	}
	final, err := f.final(ctx, conn)
	if err != nil {
		return err
	}
	f.cursor, f.started, f.kick = final, true, make(chan struct{}, 1)
	f.svc.mu.Lock()
	f.svc.published = final
	f.svc.mu.Unlock()
	close(f.svc.ready)
	f.svc.running.Go(func() { f.run(f.svc.runCtx) })
	return nil
}

// HandleNotification has the follower publish every event up to the newest
// final id: the notified one and any other committed since.
func (f *follower) HandleNotification(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
	if _, err := strconv.ParseInt(n.Payload, 10, 64); err != nil {
		return fmt.Errorf("stream: notification payload is not an event id")
	}
	if f.started {
		f.poke()
	}
	return nil
}

// poke wakes the follower's goroutine without waiting.
func (f *follower) poke() {
	select {
	case f.kick <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// run publishes, at each wake-up, the events up to the newest final id,
// until ctx ends; after a failure it tries again a ReconnectDelay later.
func (f *follower) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.kick:
		}
		if err := f.catchUp(ctx); err != nil && ctx.Err() == nil {
			f.svc.log.WarnContext(ctx, "stream follower", "error", err)
			t := time.NewTimer(f.svc.cfg.ReconnectDelay)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			f.poke()
		}
	}
}

// catchUp publishes the events up to the newest final id.
func (f *follower) catchUp(ctx context.Context) error {
	c, err := f.svc.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	defer c.Release()
	final, err := f.final(ctx, c.Conn())
	if err != nil {
		return err
	}
	return f.load(ctx, c.Conn(), final)
}

// final returns an id up to which every event is final: the newest id
// issued, once every append that was in flight when it was read has ended.
// An append takes the append lock before its id, so an append that took an
// id up to it was in flight then, or had ended.
func (f *follower) final(ctx context.Context, conn *pgx.Conn) (int64, error) {
	var issued int64
	var appenders []string
	if err := conn.QueryRow(ctx, issuedSQL).Scan(&issued); err != nil {
		return 0, fmt.Errorf("stream: newest id: %w", err)
	}
	if err := conn.QueryRow(ctx, appendersSQL).Scan(&appenders); err != nil {
		return 0, fmt.Errorf("stream: appends in flight: %w", err)
	}
	var waited time.Duration
	wait, warned := time.Millisecond, false
	for len(appenders) > 0 {
		var n int
		if err := conn.QueryRow(ctx, appendingSQL, appenders).Scan(&n); err != nil {
			return 0, fmt.Errorf("stream: appends in flight: %w", err)
		}
		if n == 0 {
			break
		}
		if !warned && waited > slowAppend {
			f.svc.log.WarnContext(ctx, "stream: a transaction that appended an event has been open a long time; the stream waits for it",
				"appends", n)
			warned = true
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		}
		waited += wait
		wait = min(2*wait, 50*time.Millisecond)
	}
	return issued, nil
}

// load publishes the events after the cursor up to id upto, in id order.
func (f *follower) load(ctx context.Context, conn *pgx.Conn, upto int64) error {
	for f.cursor < upto {
		rows, err := conn.Query(ctx, loadSQL, f.cursor, upto, loadPage)
		if err != nil {
			return fmt.Errorf("stream load: %w", err)
		}
		evs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (loaded, error) {
			var ev loaded
			var patient, org *uuid.UUID
			err := row.Scan(&ev.id, &ev.typ, &patient, &ev.payload, &ev.thread, &ev.members, &org)
			if patient != nil {
				ev.patientID = *patient
			}
			if org != nil {
				ev.org = *org
			}
			return ev, err
		})
		if err != nil {
			return fmt.Errorf("stream load: %w", err)
		}
		for _, ev := range evs {
			f.svc.publish(ev)
			f.cursor = ev.id
		}
		if len(evs) < loadPage {
			f.cursor = upto
			f.svc.mu.Lock()
			f.svc.published = max(f.svc.published, upto)
			f.svc.mu.Unlock()
		}
	}
	return nil
}
