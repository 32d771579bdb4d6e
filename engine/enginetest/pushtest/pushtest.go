// Package pushtest extends enginetest's World with every push platform: the
// clinician also has an Android phone (FCM) and an iPhone (APNs), each on a
// fake provider of its own (notify/notifytest). It is a package of its own
// so that only the tests that need FCM link Firebase.
package pushtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
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
}

// New builds a World.
func New(t testing.TB, o Opts) *World {
	t.Helper()
	w := &World{World: enginetest.NewWorld(t, false), FCM: notifytest.NewFCM(), APNs: notifytest.NewAPNs(nil),
		Devices: map[notify.Platform]uuid.UUID{}, Reg: prometheus.NewRegistry()}
	t.Cleanup(w.FCM.Close)
	t.Cleanup(w.APNs.Close)
	ctx := context.Background()
	// Plain-HTTP fakes speak HTTP/1.1: keep enough idle connections for
	// the workers (a real provider's HTTP/2 multiplexes one).
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute}}
	fs, err := fcm.New(ctx, fcm.Config{Endpoint: w.FCM.URL, ProjectID: "tend-test", HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	as, err := apns.New(apns.Config{Key: w.APNs.KeyPEM, KeyID: w.APNs.KeyID, TeamID: w.APNs.TeamID, Topic: w.APNs.Topic,
		Endpoint: w.APNs.URL, HTTPClient: w.APNs.Client()})
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	w.Push.RequireVAPIDKey(pub)
	wp, err := webpush.New(webpush.Config{PublicKey: pub, PrivateKey: priv, Subject: "mailto:ops@example.org", HTTPClient: &http.Client{
		Transport:     hc.Transport,
		Timeout:       webpush.DefaultTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}})
	if err != nil {
		t.Fatal(err)
	}
	senders := notify.Senders{notify.WebPush: wp, notify.FCM: fs, notify.APNs: as}
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
		Readings: []rpm.Reading{enginetest.BP(204, 131, time.Now().Add(-time.Minute), "")}})
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
