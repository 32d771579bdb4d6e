package delivery_test

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/engine/enginetest/pushtest"
	"github.com/tendhealth/tend/notify"
	"github.com/tendhealth/tend/notify/notifytest"
	"github.com/tendhealth/tend/rpm"
)

// The delivery benchmarks' River settings: TEND_BENCH_NOTIFY_WORKERS and
// TEND_BENCH_FETCH_COOLDOWN override them (e.g. 200 and 5ms) to explore.
func benchRiverSettings(b *testing.B) (workers int, cooldown time.Duration) {
	workers, cooldown = 200, 10*time.Millisecond
	if v := os.Getenv("TEND_BENCH_NOTIFY_WORKERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatal(err)
		}
		workers = n
	}
	if v := os.Getenv("TEND_BENCH_FETCH_COOLDOWN"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		cooldown = d
	}
	return workers, cooldown
}

// benchPool is a second pool on w's database, sized for the workers: the
// test pool's 20 connections would be the bottleneck, not River.
func benchPool(b *testing.B, w *pushtest.World, workers int) *pgxpool.Pool {
	b.Helper()
	cfg := w.Pool.Config().Copy()
	cfg.MaxConns = int32(min(workers, 60) + 5)
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	return pool
}

// BenchmarkPushDelivery measures sustained push delivery: b.N notify.deliver
// jobs (one per notification, spread over 100 devices per platform) are
// queued before the timer starts; a worker engine then sends them to the
// fake providers, each request a real wire exchange (FCM v1 JSON; APNs
// HTTP/2 + ES256 JWT; Web Push with RFC 8291 encryption and VAPID,
// decrypted and verified by the fake), and records every outcome. The clock
// stops when the last delivery is recorded.
//
// The fakes run in a process of their own (this test binary again, see
// TestMain), so that their decryption and signature checks are neither
// timed nor counted (allocs/op) as Tend's. They count what they receive
// from their start: the benchmark reads the count before the workers
// start, so no push can arrive unseen. Besides the rate it reports the CPU
// time per push of this process (worker-cpu-us/op: River, Tend and the
// senders), of the fakes' process (fakes-cpu-us/op) and, when Postgres runs
// on this machine, of the server processes of the benchmark's database
// (db-cpu-us/op).
//
//	go test -run '^$' -bench PushDelivery -benchtime 20000x ./engine/delivery/
func BenchmarkPushDelivery(b *testing.B) {
	fakes, senders := pushtest.StartFakes(b)
	for _, platform := range []notify.Platform{notify.FCM, notify.APNs, notify.WebPush, "mixed"} {
		b.Run(string(platform), func(b *testing.B) {
			workers, cooldown := benchRiverSettings(b)
			w := pushtest.New(b, pushtest.Opts{})
			ctx := context.Background()
			fleet := fleetOf(b, w, 100, func(n int) []notifytest.Subscription {
				subs, err := fakes.NewSubscriptions(ctx, n)
				if err != nil {
					b.Fatal(err)
				}
				return subs
			})
			nIDs := make([]uuid.UUID, b.N)
			devs := make([]uuid.UUID, b.N)
			for i := range nIDs {
				nIDs[i] = uuid.Must(uuid.NewV7())
				if platform == "mixed" {
					all := fleet[[]notify.Platform{notify.FCM, notify.APNs, notify.WebPush}[i%3]]
					devs[i] = all[(i/3)%len(all)]
				} else {
					devs[i] = fleet[platform][i%len(fleet[platform])]
				}
			}
			if _, err := w.Pool.Exec(ctx, `INSERT INTO notifications (id, user_id, type, urgency)
				SELECT i, $2, 'alert', 'high' FROM unnest($1::uuid[]) AS i`, nIDs, w.Clinician.UserID); err != nil {
				b.Fatal(err)
			}
			if err := w.Eng.Shared().Delivery.EnqueueDeliveries(ctx, nIDs, devs); err != nil {
				b.Fatal(err)
			}
			cfg := w.Cfg
			cfg.Pool, cfg.RunWorkers, cfg.Registerer, cfg.Senders = benchPool(b, w, workers), true, nil, senders
			cfg.NotifyWorkers, cfg.FetchCooldown = workers, cooldown
			before, err := fakes.Counts(ctx)
			if err != nil {
				b.Fatal(err)
			}
			cpu, dbCPU := notifytest.ProcessCPU(), databaseCPU(ctx, b, w.Pool)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			w.StartEngine(b, cfg)
			waitDelivered(b, w, fakes, before, b.N)
			elapsed := time.Since(start)
			b.StopTimer()
			after, err := fakes.Counts(ctx)
			if err != nil {
				b.Fatal(err)
			}
			var sent int
			_ = w.Pool.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE outcome = 'sent'`).Scan(&sent)
			if sent != b.N {
				b.Fatalf("%d of %d deliveries sent", sent, b.N)
			}
			if r := after.Rejected() - before.Rejected(); r > 0 {
				b.Fatalf("fakes refused %d requests", r)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "pushes/s")
			reportCPU(b, "worker", notifytest.ProcessCPU()-cpu)
			reportCPU(b, "fakes", after.CPU-before.CPU)
			if d, ok := databaseCPUSince(ctx, b, w.Pool, dbCPU); ok {
				reportCPU(b, "db", d)
			}
			b.ReportMetric(0, "ns/op") // the rate is the result; ns/op would mislead
		})
	}
}

// waitDelivered waits until the fakes have received n pushes more than
// before, then until n deliveries are recorded: at most 5 minutes. It looks
// every 25 ms, as BenchmarkRiverNoop does, so that the polling costs both
// benchmarks the same.
func waitDelivered(b testing.TB, w *pushtest.World, fakes *notifytest.Process, before notifytest.Counts, n int) {
	b.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(5 * time.Minute)
	for got := 0; got < n; time.Sleep(benchPoll) {
		c, err := fakes.Counts(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if got = c.Received() - before.Received(); got < n && time.Now().After(deadline) {
			b.Fatalf("%d of %d pushes received after 5 minutes", got, n)
		}
	}
	for got := 0; got < n; time.Sleep(benchPoll) {
		if err := w.Pool.QueryRow(ctx, `SELECT count(*) FROM deliveries`).Scan(&got); err != nil {
			b.Fatal(err)
		}
		if got < n && time.Now().After(deadline) {
			b.Fatalf("%d of %d deliveries recorded after 5 minutes", got, n)
		}
	}
}

// reportCPU reports the CPU time a process (this one, "worker", or the
// fakes') used per operation, in microseconds: on a shared machine the rate
// depends on what else runs, the CPU time much less.
func reportCPU(b *testing.B, process string, d time.Duration) {
	if d > 0 {
		b.ReportMetric(float64(d.Microseconds())/float64(b.N), process+"-cpu-us/op")
	}
}

// benchPoll is how often the delivery benchmarks look whether their work
// is done.
const benchPoll = 25 * time.Millisecond

type noopArgs struct {
	N int `json:"n"`
}

func (noopArgs) Kind() string { return "bench.noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
	done *atomic.Int64
}

func (w *noopWorker) Work(context.Context, *river.Job[noopArgs]) error {
	w.done.Add(1)
	return nil
}

// BenchmarkRiverNoop is River's own ceiling at the delivery benchmark's
// settings: b.N no-op jobs queued on a queue with the same MaxWorkers and
// FetchCooldown, timed until the last one has been worked and completed.
//
//	go test -run '^$' -bench RiverNoop -benchtime 20000x ./engine/delivery/
func BenchmarkRiverNoop(b *testing.B) {
	workers, cooldown := benchRiverSettings(b)
	w := pushtest.New(b, pushtest.Opts{})
	pool := benchPool(b, w, workers)
	ctx := context.Background()
	var done atomic.Int64
	ws := river.NewWorkers()
	river.AddWorker(ws, &noopWorker{done: &done})
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Workers:       ws,
		Queues:        map[string]river.QueueConfig{"notify": {MaxWorkers: workers}},
		FetchCooldown: cooldown,
	})
	if err != nil {
		b.Fatal(err)
	}
	jobs := make([]river.InsertManyParams, b.N)
	for i := range jobs {
		jobs[i] = river.InsertManyParams{Args: noopArgs{N: i}, InsertOpts: &river.InsertOpts{Queue: "notify"}}
	}
	if _, err := client.InsertManyFast(ctx, jobs); err != nil {
		b.Fatal(err)
	}
	cpu, dbCPU := notifytest.ProcessCPU(), databaseCPU(ctx, b, pool)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	if err := client.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.Stop(sctx)
	}()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'bench.noop' AND state = 'completed'`).Scan(&n); err != nil {
			b.Fatal(err)
		}
		if n >= b.N {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d jobs completed after 5 minutes (%d worked)", n, b.N, done.Load())
		}
		time.Sleep(benchPoll)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
	reportCPU(b, "worker", notifytest.ProcessCPU()-cpu)
	if d, ok := databaseCPUSince(ctx, b, pool, dbCPU); ok {
		reportCPU(b, "db", d)
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkReadingToPush measures the latency from a reading's acceptance
// (Ingest returned: committed) to each push's arrival at the fake
// providers, while readings arrive at about 1,000 per second from 200
// devices. One reading in 20 is a blood pressure in the crisis range for a
// patient with no open alert: a new critical alert, pushed to the
// clinician's Android phone, iPhone and browser. b.N is the number of
// readings.
//
//	go test -run '^$' -bench ReadingToPush -benchtime 10000x ./engine/delivery/
func BenchmarkReadingToPush(b *testing.B) {
	const rate = 1000 // readings per second
	workers, cooldown := benchRiverSettings(b)
	w := pushtest.New(b, pushtest.Opts{})
	ctx := context.Background()
	crises := max(1, b.N/20)
	normal := enrolWithDevices(b, w.World, min(200, b.N))
	fresh := enrolWithDevices(b, w.World, crises)

	var mu sync.Mutex
	accepted := map[string]time.Time{}
	var received []struct {
		alert string
		at    time.Time
	}
	got := func(alertID string) {
		now := time.Now()
		mu.Lock()
		received = append(received, struct {
			alert string
			at    time.Time
		}{alertID, now})
		mu.Unlock()
	}
	w.FCM.OnReceive(func(r notifytest.FCMRequest) { got(r.Message.Data["alert_id"]) })
	w.APNs.OnReceive(func(r notifytest.APNsRequest) {
		var p struct{ Data map[string]string }
		_ = json.Unmarshal(r.Payload, &p)
		got(p.Data["alert_id"])
	})
	w.Push.OnReceive(func(r notifytest.WebPushRequest) {
		var p struct{ Data map[string]string }
		_ = json.Unmarshal(r.Payload, &p)
		got(p.Data["alert_id"])
	})

	cfg := w.Cfg
	cfg.Pool, cfg.RunWorkers, cfg.Registerer = benchPool(b, w, workers), true, nil
	cfg.NotifyWorkers, cfg.FetchCooldown = workers, cooldown
	eng := w.StartEngine(b, cfg)

	type task struct {
		dev      engine.Actor
		critical bool
	}
	tasks := make(chan task, 64)
	var errs atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for t := range tasks {
				r := rpm.Reading{Kind: rpm.HeartRate, Value: enginetest.Ptr(float64(60 + rand.IntN(30))), Unit: "/min", ObservedAt: time.Now()}
				if t.critical {
					r = enginetest.BP(246, 142, time.Now(), "")
				}
				res, err := eng.Ingest(ctx, t.dev, engine.IngestRequest{PatientID: t.dev.PatientID, Readings: []rpm.Reading{r}})
				if err != nil {
					errs.Add(1)
					continue
				}
				now := time.Now()
				if t.critical && len(res.Alerts) == 1 {
					mu.Lock()
					accepted[res.Alerts[0].ID.String()] = now
					mu.Unlock()
				}
			}
		})
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	next := 0
	for i := range b.N {
		// An absolute schedule: a late reading is sent at once, so the
		// average rate holds when the system keeps up.
		if d := time.Until(start.Add(time.Duration(i) * time.Second / rate)); d > 0 {
			time.Sleep(d)
		}
		if i%20 == 10 && next < len(fresh) {
			tasks <- task{dev: fresh[next], critical: true}
			next++
			continue
		}
		tasks <- task{dev: normal[i%len(normal)]}
	}
	close(tasks)
	wg.Wait()
	sent := time.Since(start)
	want := 3 * next
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		n := len(received)
		mu.Unlock()
		if n >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.StopTimer()
	if e := errs.Load(); e > 0 {
		b.Fatalf("%d ingests failed", e)
	}
	mu.Lock()
	defer mu.Unlock()
	var lat []time.Duration
	for _, r := range received {
		if at, ok := accepted[r.alert]; ok {
			lat = append(lat, max(0, r.at.Sub(at)))
		}
	}
	if len(lat) < want {
		b.Fatalf("%d of %d pushes arrived", len(lat), want)
	}
	if len(lat) == 0 {
		return // b.N too small for a crisis reading
	}
	slices.Sort(lat)
	q := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(b.N)/sent.Seconds(), "readings/s")
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(len(lat)), "pushes")
	b.ReportMetric(0, "ns/op")
}

// enrolWithDevices enrols n patients with a reading device each in w's care
// team and returns the devices.
func enrolWithDevices(b *testing.B, w *enginetest.World, n int) []engine.Actor {
	b.Helper()
	ctx := context.Background()
	out := make([]engine.Actor, n)
	for i := range out {
		p, err := w.Eng.CreatePatient(ctx, w.Clinician, engine.NewPatient{DisplayName: "Bench patient", Timezone: "UTC",
			CareTeamID: w.Patient.CareTeamID, Programs: []string{"hypertension"}})
		if err != nil {
			b.Fatal(err)
		}
		u, err := w.Eng.CreateUser(ctx, w.Admin, engine.NewUser{Name: "bench device", Role: engine.RoleDevice, PatientID: p.ID})
		if err != nil {
			b.Fatal(err)
		}
		out[i] = engine.Actor{UserID: u.ID, Role: engine.RoleDevice, PatientID: p.ID, RequestID: "bench"}
	}
	return out
}

// fleetOf registers n devices per platform for w's clinician (the care team's
// phones and browsers, in effect), the browsers' subscriptions from subs,
// and returns their ids.
func fleetOf(b testing.TB, w *pushtest.World, n int, subs func(n int) []notifytest.Subscription) map[notify.Platform][]uuid.UUID {
	b.Helper()
	ctx := context.Background()
	out := map[notify.Platform][]uuid.UUID{}
	for _, sub := range subs(n) {
		for _, nd := range []engine.NewDevice{
			{Platform: notify.FCM, Token: "fcm:" + pushtest.RandomHex(b, 40)},
			{Platform: notify.APNs, Token: pushtest.RandomHex(b, 32)},
			{Platform: notify.WebPush, Endpoint: sub.Endpoint, P256dh: sub.P256dh, Auth: sub.Auth},
		} {
			d, _, err := w.Eng.RegisterDevice(ctx, w.Clinician, nd)
			if err != nil {
				b.Fatal(err)
			}
			out[nd.Platform] = append(out[nd.Platform], d.ID)
		}
	}
	return out
}
