package delivery_test

import (
	"context"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/notify/notifytest"
	"github.com/tendhealth/tend/rpm"
)

func TestGoneSubscriptionDisablesDeviceAndFlagsUndelivered(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, true)
	w.Push.Script(w.Sub.Endpoint, notifytest.Response{Status: 410})
	res, err := w.Eng.Ingest(context.Background(), w.Device, engine.IngestRequest{PatientID: w.Patient.ID,
		Readings: []rpm.Reading{enginetest.BP(201, 90, time.Now(), "")}})
	if err != nil {
		t.Fatal(err)
	}
	enginetest.WaitFor(t, func() bool {
		return w.Count(t, `SELECT count(*) FROM devices WHERE NOT enabled AND disabled_reason IS NOT NULL`) == 1
	})
	enginetest.WaitFor(t, func() bool {
		return w.Count(t, `SELECT count(*) FROM alerts WHERE id = $1 AND undelivered`, res.Alerts[0].ID) == 1
	})
	if n := w.Count(t, `SELECT count(*) FROM deliveries WHERE outcome = 'unregistered' AND provider_status = 410`); n != 1 {
		t.Errorf("%d unregistered deliveries recorded, want 1", n)
	}
}
