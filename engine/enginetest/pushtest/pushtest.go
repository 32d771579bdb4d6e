// Package pushtest extends enginetest's World with every push platform: the
// clinician also has an Android phone (FCM) and an iPhone (APNs), each on a
// fake provider of its own (notify/notifytest). It is a package of its own
// so that only the tests that need FCM link Firebase.
package pushtest

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river/rivertype"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/notify"
	"github.com/tendhealth/tend/notify/apns"
	"github.com/tendhealth/tend/notify/fcm"
	"github.com/tendhealth/tend/notify/notifytest"
	"github.com/tendhealth/tend/notify/webpush"
	"github.com/tendhealth/tend/rpm"
)

// World is an enginetest.World whose clinician also has an Android phone
// (FCM) and an iPhone (APNs), each on its own fake provider, and an engine
// of its own with all three senders.
type World struct {
	*enginetest.World
	FCM       *notifytest.FCM
	APNs      *notifytest.APNs
	FCMToken  string
	APNsToken string
	Devices   map[notify.Platform]uuid.UUID
	Reg       *prometheus.Registry
	Cfg       engine.Config
}

// Opts are New's settings.
type Opts struct {
	RunWorkers bool
	Now        func() time.Time
	// Without lists platforms whose provider is not configured.
	Without []notify.Platform
	// Tune adjusts the engine's configuration.
	Tune func(*engine.Config)
	// SendTimeout bounds each Send. Zero means each sender's default.
	SendTimeout time.Duration
}

// New builds a World.
func New(t testing.TB, o Opts) *World {
	t.Helper()
	w := &World{World: enginetest.NewWorld(t, false), FCM: notifytest.NewFCM(), APNs: notifytest.NewAPNs(nil),
		Devices: map[notify.Platform]uuid.UUID{}, Reg: prometheus.NewRegistry()}
	t.Cleanup(w.FCM.Close)
	t.Cleanup(w.APNs.Close)
	senders := Senders(t, Endpoints{FCM: w.FCM.URL, APNs: w.APNs.URL, APNsKeyPEM: w.APNs.KeyPEM, APNsKeyID: w.APNs.KeyID,
		APNsTeamID: w.APNs.TeamID, APNsTopic: w.APNs.Topic, APNsClient: w.APNs.Client(), Timeout: o.SendTimeout},
		w.Push.RequireVAPIDKey)
	for _, p := range o.Without {
		delete(senders, p)
	}
	cfg := engine.Config{Pool: w.Pool, Senders: senders, RunWorkers: o.RunWorkers, Now: o.Now, Registerer: w.Reg,
		WebPushAllowedHosts: []string{"127.0.0.1"}, APNsTopic: w.APNs.Topic, FetchCooldown: 5 * time.Millisecond}
	if o.Tune != nil {
		o.Tune(&cfg)
	}
	w.Cfg = cfg
	eng := w.StartEngine(t, cfg)
	w.Eng = eng
	w.FCMToken = "fcm:" + RandomHex(t, 40)
	w.APNsToken = RandomHex(t, 32)
	w.registerDevices(t, eng)
	return w
}

// Endpoints say where the fake providers listen and how to reach them.
type Endpoints struct {
	FCM, APNs                        string
	APNsKeyPEM                       []byte
	APNsKeyID, APNsTeamID, APNsTopic string
	APNsClient                       *http.Client
	// Timeout bounds each Send. Zero means each sender's default.
	Timeout time.Duration
}

// Senders returns senders for all three platforms on the fakes at e, with a
// fresh VAPID key pair whose public key is passed to requireVAPID (the push
// service's RequireVAPIDKey).
func Senders(t testing.TB, e Endpoints, requireVAPID func(publicKey string)) notify.Senders {
	t.Helper()
	// Plain-HTTP fakes speak HTTP/1.1: keep enough idle connections for
	// the workers (a real provider's HTTP/2 multiplexes one).
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute}, Timeout: e.Timeout}
	fs, err := fcm.New(context.Background(), fcm.Config{Endpoint: e.FCM, ProjectID: "tend-test", HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	ac := *e.APNsClient
	ac.Timeout = e.Timeout
	as, err := apns.New(apns.Config{Key: e.APNsKeyPEM, KeyID: e.APNsKeyID, TeamID: e.APNsTeamID, Topic: e.APNsTopic,
		Endpoint: e.APNs, HTTPClient: &ac})
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	requireVAPID(pub)
	wp, err := webpush.New(webpush.Config{PublicKey: pub, PrivateKey: priv, Subject: "mailto:ops@example.org", Timeout: e.Timeout, HTTPClient: &http.Client{
		Transport:     hc.Transport,
		Timeout:       cmp.Or(e.Timeout, webpush.DefaultTimeout),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}})
	if err != nil {
		t.Fatal(err)
	}
	return notify.Senders{notify.WebPush: wp, notify.FCM: fs, notify.APNs: as}
}

// StartFakes runs the fake providers in a process of their own: the
// running test binary again, whose TestMain must hand over to
// notifytest.Main when notifytest.ProcessEnv is set. It returns the
// process (stopped when t ends) and senders for its fakes.
func StartFakes(t testing.TB) (*notifytest.Process, notify.Senders) {
	t.Helper()
	p, err := notifytest.StartProcess(exec.Command(os.Args[0], "-test.run=^$"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	ac, err := p.APNsClient()
	if err != nil {
		t.Fatal(err)
	}
	senders := Senders(t, Endpoints{FCM: p.FCM, APNs: p.APNs, APNsKeyPEM: p.APNsKeyPEM, APNsKeyID: p.APNsKeyID,
		APNsTeamID: p.APNsTeamID, APNsTopic: p.APNsTopic, APNsClient: ac}, func(key string) {
		if err := p.RequireVAPIDKey(context.Background(), key); err != nil {
			t.Fatal(err)
		}
	})
	return p, senders
}

// registerDevices registers the phones and records the ids of all three
// of the clinician's devices.
func (w *World) registerDevices(t testing.TB, eng *engine.Engine) {
	t.Helper()
	ctx := context.Background()
	for _, nd := range []engine.NewDevice{
		{Platform: notify.FCM, Token: w.FCMToken},
		{Platform: notify.APNs, Token: w.APNsToken, Environment: "sandbox"},
	} {
		d, _, err := eng.RegisterDevice(ctx, w.Clinician, nd)
		if err != nil {
			t.Fatal(err)
		}
		w.Devices[nd.Platform] = d.ID
	}
	ds, err := eng.ListDevices(ctx, w.Clinician)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Platform == notify.WebPush {
			w.Devices[notify.WebPush] = d.ID
		}
	}
}

// StartEngine starts another engine (another process, in effect) on w's
// database.
func (w *World) StartEngine(t testing.TB, cfg engine.Config) *engine.Engine {
	t.Helper()
	return enginetest.StartEngine(t, cfg)
}

// RandomHex is n random bytes in hex.
func RandomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// IngestCritical posts a blood pressure in the crisis range and returns the
// alert it opened.
func (w *World) IngestCritical(t testing.TB) uuid.UUID {
	t.Helper()
	res, err := w.Eng.Ingest(context.Background(), w.Device, engine.IngestRequest{PatientID: w.Patient.ID,
		Readings: []rpm.Reading{enginetest.BP(246, 142, time.Now().Add(-time.Minute), "")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Alerts) != 1 || res.Alerts[0].Urgency != rpm.Critical {
		t.Fatalf("alerts = %+v, want one critical", res.Alerts)
	}
	return res.Alerts[0].ID
}

// DeliveryJob returns the notify.deliver job of the alert's notification to
// device.
func (w *World) DeliveryJob(t testing.TB, alertID, device uuid.UUID) *rivertype.JobRow {
	t.Helper()
	var id int64
	err := w.Pool.QueryRow(context.Background(), `SELECT j.id FROM river_job j
		WHERE j.kind = 'notify.deliver' AND j.args->>'alert_id' = $1 AND j.args->>'device_id' = $2`,
		alertID.String(), device.String()).Scan(&id)
	if err != nil {
		t.Fatalf("delivery job for device %s: %v", device, err)
	}
	job, err := w.Eng.Jobs().JobGet(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// Outcomes lists device's recorded deliveries as outcome:status:error.
func (w *World) Outcomes(t testing.TB, device uuid.UUID) []string {
	t.Helper()
	rows, err := w.Pool.Query(context.Background(), `SELECT outcome || ':' || coalesce(provider_status, 0) || ':' || coalesce(error_code, '')
		FROM deliveries WHERE device_id = $1 ORDER BY id`, device)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// IsCancel reports whether a worker's error cancels its job.
func IsCancel(err error) bool {
	var c *rivertype.JobCancelError
	return errors.As(err, &c)
}

// Quiet is a World on a settable clock whose clinician keeps quiet hours
// 22:00–07:00 in Chicago, with a second patient of the same team.
type Quiet struct {
	*World
	Clock    *enginetest.Clock
	Patient2 uuid.UUID
}

// NewQuiet builds a Quiet world whose clock starts at start.
func NewQuiet(t testing.TB, start time.Time) *Quiet {
	t.Helper()
	c := enginetest.NewClock(start)
	w := &Quiet{World: New(t, Opts{Now: c.Now}), Clock: c}
	ctx := context.Background()
	if _, err := w.Eng.SetPreferences(ctx, w.Clinician, engine.Preferences{Timezone: "America/Chicago",
		QuietHours: &engine.QuietHours{Start: "22:00", End: "07:00"}}); err != nil {
		t.Fatal(err)
	}
	p2, err := w.Eng.CreatePatient(ctx, w.Clinician, engine.NewPatient{DisplayName: "Alex Kim", Timezone: "America/Chicago",
		CareTeamID: w.Patient.CareTeamID, Programs: []string{"hypertension"}})
	if err != nil {
		t.Fatal(err)
	}
	w.Patient2 = p2.ID
	return w
}
