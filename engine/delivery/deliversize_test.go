package delivery_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/engine/enginetest/pushtest"
	"github.com/tendhealth/tend/notify"
)

// TestPushTooLargeIsASizingError: a push service refusing a body as too
// large (413) is recorded failed with the sizing code, not as a dead
// subscription: the device stays enabled, the refusal is counted in
// tend_push_payload_too_large_total{platform} and logged at error level
// with ids only.
func TestPushTooLargeIsASizingError(t *testing.T) {
	t.Parallel()
	logs := &enginetest.SyncBuffer{}
	w := pushtest.New(t, pushtest.Opts{Tune: func(c *engine.Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}})
	ctx := context.Background()
	w.Push.LimitBody(600) // below the 614-byte body of an alert push
	defer w.Push.LimitBody(0)
	alertID := w.IngestCritical(t)

	if err := w.Eng.Shared().Delivery.Work(ctx, w.DeliveryJob(t, alertID, w.Devices[notify.WebPush])); !pushtest.IsCancel(err) {
		t.Fatalf("413: err = %v, want a cancel (retrying the same body cannot help)", err)
	}
	if err := w.Eng.Shared().Delivery.Work(ctx, w.DeliveryJob(t, alertID, w.Devices[notify.APNs])); err != nil {
		t.Fatalf("APNs: %v", err)
	}
	if o := w.Outcomes(t, w.Devices[notify.WebPush]); len(o) != 1 || o[0] != "failed:413:payload_too_large" {
		t.Errorf("Web Push outcomes = %v, want [failed:413:payload_too_large]", o)
	}
	ds, err := w.Eng.ListDevices(ctx, w.Clinician)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.ID == w.Devices[notify.WebPush] && !d.Enabled {
			t.Error("the subscription was disabled for Tend's sizing error")
		}
	}
	if got := labelled(t, w.Reg, "tend_push_payload_too_large_total"); got["webpush"] != 1 || got["apns"] != 0 {
		t.Errorf("tend_push_payload_too_large_total = %v, want webpush 1 and nothing else", got)
	}
	var line string
	for l := range strings.Lines(logs.String()) {
		if strings.Contains(l, "too large") && strings.Contains(l, "level=ERROR") {
			line = l
		}
	}
	if line == "" || !strings.Contains(line, "platform=webpush") || !strings.Contains(line, w.Devices[notify.WebPush].String()) {
		t.Errorf("no error log naming the platform and device; logs:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), w.Sub.Endpoint) || strings.Contains(logs.String(), "/push/") {
		t.Error("logs name the subscription endpoint")
	}
}

// labelled returns the values of metric name in reg by the value of its
// one label.
func labelled(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if l := m.GetLabel(); len(l) == 1 {
				out[l[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}
