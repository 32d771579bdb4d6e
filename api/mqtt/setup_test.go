package mqtt_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/api/mqtt"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/sealed"
)

// newProcess starts what one `tend serve` process runs — an engine, the
// HTTP API and the MQTT listener — on the database of pool.
func newProcess(t testing.TB, pool *pgxpool.Pool, keys *sealed.Keyring, o worldOpts) *world {
	t.Helper()
	ctx := context.Background()
	ttl := time.Duration(-1)
	if o.cacheAuth {
		ttl = 0
	}
	reg := prometheus.NewRegistry()
	eng, err := engine.New(engine.Config{Pool: pool, Keys: keys, AuthCacheTTL: ttl, Registerer: reg, RunWorkers: o.workers,
		IngestTransactions: o.ingestTxs})
	if err != nil {
		t.Fatal(err)
	}
	if o.workers {
		if err := eng.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_ = eng.Stop(sctx)
		})
	}
	srv, err := api.New(api.Config{Engine: eng, RateLimit: o.rateLimit})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{eng: eng, api: srv, reg: reg, admin: engine.System("test"), logs: &syncBuffer{},
		pool: pool, keys: keys, opts: o}
	w.http = httptest.NewServer(srv)
	t.Cleanup(w.http.Close)
	wsAddr := ""
	if o.ws {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		wsAddr = ln.Addr().String()
		ln.Close()
	}
	l, err := mqtt.New(mqtt.Config{Addr: "127.0.0.1:0", WebSocketAddr: wsAddr, TLS: o.tls, API: srv, Identity: eng, Presence: eng, Registerer: w.reg,
		Logger:     slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		AcceptQoS0: o.qos0, RevocationCheck: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	w.mqtt = l
	return w
}

// world is a running engine, HTTP API and MQTT listener on a fresh
// database, with a care team, a patient and a device token.
type world struct {
	eng       *engine.Engine
	api       *api.Server
	http      *httptest.Server
	mqtt      *mqtt.Listener
	reg       *prometheus.Registry // the engine's and the listener's metrics
	logs      *syncBuffer          // the listener's log
	admin     engine.Actor
	patientID uuid.UUID
	teamID    uuid.UUID
	deviceID  uuid.UUID // the device user
	device    string    // the device's token
	patient   string    // the patient's own token
	clinician string    // a clinician's token
	pool      *pgxpool.Pool
	keys      *sealed.Keyring
	opts      worldOpts
}

// another starts a second process on w's database (its own engine, live
// stream, HTTP API and MQTT listener) that knows w's patient and tokens.
func (w *world) another(t testing.TB) *world {
	t.Helper()
	o := newProcess(t, w.pool, w.keys, w.opts)
	o.patientID, o.deviceID, o.device, o.patient, o.clinician = w.patientID, w.deviceID, w.device, w.patient, w.clinician
	return o
}

type worldOpts struct {
	qos0      bool
	rateLimit float64
	tls       *tls.Config
	ws        bool // also listen for MQTT over WebSocket
	// cacheAuth keeps the engine's default token cache (benchmarks); tests
	// turn it off so that a revocation is refused at once.
	cacheAuth bool
	// workers runs the engine as tend serve does: River's workers and
	// periodic jobs, the worker heartbeat and the audit sealer.
	workers bool
	// ingestTxs sets engine.Config.IngestTransactions (0: its default).
	ingestTxs int
}

func newWorld(t testing.TB, o worldOpts) *world {
	t.Helper()
	ctx := context.Background()
	pool := enginetest.NewPool(t)
	text, err := sealed.Generate("test")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := sealed.ParseKeyring(text)
	if err != nil {
		t.Fatal(err)
	}
	w := newProcess(t, pool, keys, o)
	clin := w.user(t, engine.NewUser{Name: "Dr Ada Osei", Role: engine.RoleClinician})
	team, err := w.eng.CreateCareTeam(ctx, w.admin, engine.NewCareTeam{Name: "Cardiology RPM", MemberIDs: []uuid.UUID{clin.ID}})
	if err != nil {
		t.Fatal(err)
	}
	w.clinician, w.teamID = w.token(t, clin.ID), team.ID
	p, err := w.eng.CreatePatient(ctx, w.admin, engine.NewPatient{DisplayName: "Sam Lee", Timezone: "America/Chicago",
		CareTeamID: team.ID, Programs: []string{"hypertension"}})
	if err != nil {
		t.Fatal(err)
	}
	w.patientID = p.ID
	dev := w.user(t, engine.NewUser{Name: "cuff", Role: engine.RoleDevice, PatientID: p.ID})
	w.deviceID, w.device = dev.ID, w.token(t, dev.ID)
	w.patient = w.token(t, w.user(t, engine.NewUser{Name: "Sam Lee", Role: engine.RolePatient, PatientID: p.ID}).ID)
	return w
}

func (w *world) user(t testing.TB, in engine.NewUser) engine.User {
	t.Helper()
	u, err := w.eng.CreateUser(context.Background(), w.admin, in)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (w *world) token(t testing.TB, user uuid.UUID) string {
	t.Helper()
	tok, err := w.eng.CreateToken(context.Background(), w.admin, user)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// session is a connected MQTT 5 client (Eclipse Paho): received
// publishes and the server's DISCONNECT arrive on its channels.
type session struct {
	*paho.Client
	id   string
	got  chan *paho.Publish
	disc chan *paho.Disconnect
	// seen holds the retake requests nextAsk returned (rule_id and
	// reading_id): a request may arrive twice, and a device knows it by them.
	seen map[string]bool
}

// v5 connects an MQTT 5 client with the token.
func (w *world) v5(t testing.TB, clientID, token string) (*session, *paho.Connack, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := net.Dial("tcp", w.mqtt.Addr())
	if err != nil {
		t.Fatal(err)
	}
	s := &session{id: clientID, got: make(chan *paho.Publish, 100), disc: make(chan *paho.Disconnect, 1)}
	s.Client = paho.NewClient(paho.ClientConfig{ClientID: clientID, Conn: nc,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			s.got <- pr.Packet
			return true, nil
		}},
		OnServerDisconnect: func(d *paho.Disconnect) { s.disc <- d },
	})
	ca, err := s.Connect(ctx, &paho.Connect{ClientID: clientID, KeepAlive: 30, CleanStart: true,
		Username: "device", UsernameFlag: true, Password: []byte(token), PasswordFlag: token != ""})
	if err == nil {
		t.Cleanup(func() { _ = s.Disconnect(&paho.Disconnect{}) })
	}
	return s, ca, err
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readings lists the patient's stored readings.
func (w *world) readings(t testing.TB) []engine.Reading {
	t.Helper()
	rs, _, err := w.eng.ListReadings(context.Background(), w.admin, engine.ReadingFilter{PatientID: w.patientID, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// metric reads a counter or gauge of the listener's registry whose labels
// include the given name/value pairs (summed over the rest).
func (w *world) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := w.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// syncBuffer is a bytes.Buffer safe for the listener's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
