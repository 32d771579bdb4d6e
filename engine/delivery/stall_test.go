package delivery_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine/enginetest/pushtest"
	"github.com/tendhealth/tend/notify"
	"github.com/tendhealth/tend/notify/notifytest"
)

// TestDeliveriesFinishWhenProvidersHang: every provider hangs on the first
// push of each device (it never answers). Each Send gives up at its
// timeout, the failure is transient, the retry goes through, and every
// delivery is sent within a bound far below the job's own timeout (30 s):
// a sender without a timeout, or a failure that is not retried, fails the
// test instead of stalling deliveries.
func TestDeliveriesFinishWhenProvidersHang(t *testing.T) {
	t.Parallel()
	w := pushtest.New(t, pushtest.Opts{SendTimeout: 300 * time.Millisecond})
	hang := notifytest.Response{Status: http.StatusServiceUnavailable, Delay: time.Minute}
	w.FCM.Script(w.FCMToken, hang)
	w.APNs.Script(w.APNsToken, hang)
	w.Push.Script(w.Sub.Endpoint, hang)
	cfg := w.Cfg
	cfg.RunWorkers, cfg.Registerer = true, nil
	w.StartEngine(t, cfg)
	start := time.Now()
	w.IngestCritical(t)

	const bound = 20 * time.Second
	devices := []uuid.UUID{w.Devices[notify.FCM], w.Devices[notify.APNs], w.Devices[notify.WebPush]}
	for {
		done := 0
		for _, d := range devices {
			if slices.ContainsFunc(w.Outcomes(t, d), func(o string) bool { return strings.HasPrefix(o, "sent:") }) {
				done++
			}
		}
		if done == len(devices) {
			break
		}
		if time.Since(start) > bound {
			for _, d := range devices {
				t.Logf("device %s: %v", d, w.Outcomes(t, d))
			}
			t.Fatalf("%d of %d devices reached after %s", done, len(devices), bound)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, d := range devices {
		if o := w.Outcomes(t, d); len(o) != 2 || !strings.HasPrefix(o[0], "retrying:0:") {
			t.Errorf("device %s: outcomes %v, want a transient failure (the timeout) and then the success", d, o)
		}
	}
	t.Logf("all delivered %s after the ingest", time.Since(start).Round(time.Millisecond))
}

// TestPushDeliveryWaitSeesEarlyPushes guards the delivery benchmark's own
// wait, which once stalled for minutes with idle connections: it counted
// pushes with callbacks installed after the workers had started, so a push
// that arrived in between was never counted and the wait ran to its
// deadline. The fakes (in a process of their own, as the benchmark runs
// them) count from their start and the wait compares with a count taken
// before the workers start: here every push has arrived before the wait
// begins, and it must still return at once.
func TestPushDeliveryWaitSeesEarlyPushes(t *testing.T) {
	t.Parallel()
	fakes, senders := pushtest.StartFakes(t)
	w := pushtest.New(t, pushtest.Opts{})
	ctx := context.Background()
	const n = 30
	fleet := fleetOf(t, w, 2, func(k int) []notifytest.Subscription {
		subs, err := fakes.NewSubscriptions(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		return subs
	})
	nIDs, devs := make([]uuid.UUID, n), make([]uuid.UUID, n)
	for i := range nIDs {
		nIDs[i] = uuid.Must(uuid.NewV7())
		all := fleet[[]notify.Platform{notify.FCM, notify.APNs, notify.WebPush}[i%3]]
		devs[i] = all[i%len(all)]
	}
	if _, err := w.Pool.Exec(ctx, `INSERT INTO notifications (id, user_id, type, urgency)
		SELECT i, $2, 'alert', 'high' FROM unnest($1::uuid[]) AS i`, nIDs, w.Clinician.UserID); err != nil {
		t.Fatal(err)
	}
	if err := w.Eng.Shared().Delivery.EnqueueDeliveries(ctx, nIDs, devs); err != nil {
		t.Fatal(err)
	}
	before, err := fakes.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := w.Cfg
	cfg.RunWorkers, cfg.Registerer, cfg.Senders = true, nil, senders
	w.StartEngine(t, cfg)
	deadline := time.Now().Add(time.Minute)
	for w.Count(t, `SELECT count(*) FROM deliveries WHERE outcome = 'sent'`) < n {
		if time.Now().After(deadline) {
			t.Fatalf("pushes not delivered after a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	waitDelivered(t, w, fakes, before, n)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the wait took %s after every push had arrived", d)
	}
	after, err := fakes.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := after.Received() - before.Received(); got != n || after.Rejected() != before.Rejected() {
		t.Errorf("fakes received %d pushes (want %d) and refused %d", got, n, after.Rejected()-before.Rejected())
	}
}
