package enginetest

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/notify"
	"github.com/tendhealth/tend/notify/notifytest"
	"github.com/tendhealth/tend/notify/webpush"
	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/sealed"
)

// World is a migrated database with a care team, a clinician with a browser
// subscription on a fake push service, and a patient with a device user: the
// starting point of the rooms' integration tests.
type World struct {
	Pool      *pgxpool.Pool
	Push      *notifytest.WebPush
	Senders   notify.Senders
	Eng       *engine.Engine
	Admin     engine.Actor
	Clinician engine.Actor
	Patient   engine.Patient
	Device    engine.Actor // the patient's cuff
	Sub       notifytest.Subscription
}

// NewWorld builds a World whose engine runs River workers when runWorkers
// is set.
func NewWorld(t testing.TB, runWorkers bool) *World {
	t.Helper()
	w := &World{Pool: NewPool(t), Push: notifytest.NewWebPush()}
	t.Cleanup(w.Push.Close)
	pub, priv, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	w.Push.RequireVAPIDKey(pub)
	wp, err := webpush.New(webpush.Config{PublicKey: pub, PrivateKey: priv, Subject: "mailto:ops@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	w.Senders = notify.Senders{notify.WebPush: wp}
	w.Eng = w.NewEngine(t, runWorkers)
	ctx := context.Background()
	w.Admin = engine.System("test")
	doc, err := w.Eng.CreateUser(ctx, w.Admin, engine.NewUser{Name: "Dr Ada Osei", Role: engine.RoleClinician})
	if err != nil {
		t.Fatal(err)
	}
	w.Clinician = engine.Actor{UserID: doc.ID, Role: engine.RoleClinician, RequestID: "test"}
	team, err := w.Eng.CreateCareTeam(ctx, w.Admin, engine.NewCareTeam{Name: "Cardiology RPM", MemberIDs: []uuid.UUID{doc.ID}})
	if err != nil {
		t.Fatal(err)
	}
	w.Patient, err = w.Eng.CreatePatient(ctx, w.Clinician, engine.NewPatient{DisplayName: "Sam Lee", Timezone: "America/Chicago",
		CareTeamID: team.ID, Programs: []string{"hypertension"}})
	if err != nil {
		t.Fatal(err)
	}
	cuff, err := w.Eng.CreateUser(ctx, w.Admin, engine.NewUser{Name: "cuff-77", Role: engine.RoleDevice, PatientID: w.Patient.ID})
	if err != nil {
		t.Fatal(err)
	}
	w.Device = engine.Actor{UserID: cuff.ID, Role: engine.RoleDevice, PatientID: w.Patient.ID, RequestID: "test"}
	w.Sub = w.Push.NewSubscription()
	if _, _, err := w.Eng.RegisterDevice(ctx, w.Clinician, engine.NewDevice{Platform: notify.WebPush,
		Endpoint: w.Sub.Endpoint, P256dh: w.Sub.P256dh, Auth: w.Sub.Auth}); err != nil {
		t.Fatal(err)
	}
	return w
}

// NewEngine builds another engine (another process, in effect) on w's database.
func (w *World) NewEngine(t testing.TB, runWorkers bool) *engine.Engine {
	t.Helper()
	return w.NewEngineWith(t, engine.Config{RunWorkers: runWorkers})
}

// NewEngineWith is NewEngine with more settings.
func (w *World) NewEngineWith(t testing.TB, cfg engine.Config) *engine.Engine {
	t.Helper()
	cfg.Pool, cfg.Senders, cfg.WebPushAllowedHosts, cfg.FetchCooldown = w.Pool, w.Senders, []string{"127.0.0.1"}, 5*time.Millisecond
	return StartEngine(t, cfg)
}

// NewClockedEngine is NewEngineWith on a settable clock that starts at
// start (zero: the current second), for tests that move time (deadlines,
// quiet hours, reminders, missing data): cfg.Now is the returned clock's.
func (w *World) NewClockedEngine(t testing.TB, start time.Time, cfg engine.Config) (*engine.Engine, *Clock) {
	t.Helper()
	if start.IsZero() {
		start = time.Now().Truncate(time.Second)
	}
	clk := NewClock(start)
	cfg.Now = clk.Now
	return w.NewEngineWith(t, cfg), clk
}

// StartEngine builds and starts an engine (with a new keyring unless cfg
// has one), stopped when t ends.
func StartEngine(t testing.TB, cfg engine.Config) *engine.Engine {
	t.Helper()
	if cfg.Keys == nil {
		cfg.Keys = Keys(t)
	}
	eng, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = eng.Stop(ctx)
	})
	return eng
}

// Count runs a count query on w's database.
func (w *World) Count(t testing.TB, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := w.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// Column runs a query of one column on w's database and returns its
// values in order.
func Column[T any](t testing.TB, w *World, sql string, args ...any) []T {
	t.Helper()
	rows, err := w.Pool.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[T])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// Race runs fn n times at once, alternately on each engine (two processes
// in effect), and returns the sum of what the runs return.
func Race(t testing.TB, n int, engines [2]*engine.Engine, fn func(*engine.Engine) (int, error)) int {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	sum := 0
	for i := range n {
		eng := engines[i%2]
		wg.Go(func() {
			k, err := fn(eng)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			sum += k
			mu.Unlock()
		})
	}
	wg.Wait()
	return sum
}

// PatientUser creates a patient user for w's patient.
func (w *World) PatientUser(t testing.TB) engine.Actor {
	t.Helper()
	u, err := w.Eng.CreateUser(context.Background(), w.Admin, engine.NewUser{Name: "Sam Lee", Role: engine.RolePatient, PatientID: w.Patient.ID})
	if err != nil {
		t.Fatal(err)
	}
	return engine.Actor{UserID: u.ID, Role: engine.RolePatient, PatientID: w.Patient.ID, RequestID: "test"}
}

// PatientThread returns the patient's thread with their care team, as the
// patient's user sees it in the list.
func PatientThread(t testing.TB, eng *engine.Engine, patient engine.Actor) engine.Thread {
	t.Helper()
	threads, _, err := eng.ListThreads(context.Background(), patient, engine.ThreadFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(threads) != 1 || threads[0].Kind != "patient" {
		t.Fatalf("patient's threads = %+v, want their one patient thread", threads)
	}
	return threads[0]
}

// AddClinician creates a clinician with a Web Push device.
func AddClinician(t testing.TB, w *World, name string) engine.Actor {
	t.Helper()
	ctx := context.Background()
	u, err := w.Eng.CreateUser(ctx, w.Admin, engine.NewUser{Name: name, Role: engine.RoleClinician})
	if err != nil {
		t.Fatal(err)
	}
	a := engine.Actor{UserID: u.ID, Role: engine.RoleClinician, RequestID: "test"}
	sub := w.Push.NewSubscription()
	if _, _, err := w.Eng.RegisterDevice(ctx, a, engine.NewDevice{Platform: "webpush", Endpoint: sub.Endpoint, P256dh: sub.P256dh,
		Auth: sub.Auth}); err != nil {
		t.Fatal(err)
	}
	return a
}

// RaiseCritical ingests a hypertensive crisis through eng and returns its
// alert id.
func RaiseCritical(t testing.TB, w *World, eng *engine.Engine, at time.Time) uuid.UUID {
	t.Helper()
	res, err := eng.Ingest(context.Background(), w.Device, engine.IngestRequest{PatientID: w.Patient.ID,
		Readings: []rpm.Reading{BP(245, 100, at, "")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Alerts) != 1 {
		t.Fatalf("alerts = %+v", res.Alerts)
	}
	return res.Alerts[0].ID
}

// Paged returns who was notified of alert id.
func Paged(t testing.TB, w *World, id uuid.UUID) map[uuid.UUID]bool {
	t.Helper()
	rows, err := w.Pool.Query(context.Background(), `SELECT user_id FROM notifications WHERE alert_id = $1 AND type = 'alert'`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[uuid.UUID]bool{}
	for rows.Next() {
		var u uuid.UUID
		if err := rows.Scan(&u); err != nil {
			t.Fatal(err)
		}
		out[u] = true
	}
	return out
}

// HeartFailurePatient enrols a heart-failure patient in w's team, enrolled
// at enrolled.
func HeartFailurePatient(t testing.TB, w *World, eng *engine.Engine, enrolled time.Time) engine.Patient {
	t.Helper()
	p, err := eng.CreatePatient(context.Background(), w.Clinician, engine.NewPatient{DisplayName: "Ada Park", Timezone: "Europe/London",
		CareTeamID: w.Patient.CareTeamID, Programs: []string{"heart_failure"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Pool.Exec(context.Background(), `UPDATE patients SET enrolled_at = $2 WHERE id = $1`, p.ID, enrolled); err != nil {
		t.Fatal(err)
	}
	return p
}

// Keys is a keyring of one new key.
func Keys(t testing.TB) *sealed.Keyring {
	t.Helper()
	return Keyring(t, NewKey(t, "test"))
}

// NewKey is a new key as keyring text, "id:base64" (sealed.Generate).
func NewKey(t testing.TB, id string) string {
	t.Helper()
	k, err := sealed.Generate(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Keyring parses id:key entries made by NewKey (each entry may itself be a
// comma-separated keyring text).
func Keyring(t testing.TB, entries ...string) *sealed.Keyring {
	t.Helper()
	k, err := sealed.ParseKeyring(strings.Join(entries, ","))
	if err != nil {
		t.Fatal(err)
	}
	return k
}
