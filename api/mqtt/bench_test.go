package mqtt_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"

	"github.com/tendhealth/tend/engine"
)

// benchDevices is how many devices BenchmarkDevices connects (one patient
// each, so group commit may put every one of them in one transaction).
const benchDevices = 1000

// benchWorld adds devices (a patient and a device token each) to a world.
func benchWorld(b *testing.B, n int) (*world, []string, []uuid.UUID) {
	// BENCH_INGEST_TRANSACTIONS sets the group transactions in flight, as
	// TEND_INGEST_TRANSACTIONS does for tend serve; BENCH_MQTT_WORKERS=1
	// also runs what tend serve runs beside the listener (River's workers
	// and periodic jobs, the worker heartbeat and the audit sealer).
	txs, _ := strconv.Atoi(os.Getenv("BENCH_INGEST_TRANSACTIONS"))
	w := newWorld(b, worldOpts{rateLimit: -1, cacheAuth: true, workers: os.Getenv("BENCH_MQTT_WORKERS") == "1", ingestTxs: txs})
	ctx := context.Background()
	team, err := w.eng.CreateCareTeam(ctx, w.admin, engine.NewCareTeam{Name: "Bench"})
	if err != nil {
		b.Fatal(err)
	}
	toks, patients := make([]string, n), make([]uuid.UUID, n)
	for i := range n {
		p, err := w.eng.CreatePatient(ctx, w.admin, engine.NewPatient{DisplayName: fmt.Sprintf("P%d", i), Timezone: "UTC", CareTeamID: team.ID})
		if err != nil {
			b.Fatal(err)
		}
		u := w.user(b, engine.NewUser{Name: "oximeter", Role: engine.RoleDevice, PatientID: p.ID})
		toks[i], patients[i] = w.token(b, u.ID), p.ID
	}
	return w, toks, patients
}

// BenchmarkDevices compares, in one run on one server, 1,000 devices
// posting single readings over HTTP (keep-alive connections) with 1,000
// MQTT devices publishing single readings at QoS 1 (each waiting for its
// PUBACK before the next, as HTTP waits for its answer); then it paces
// the MQTT devices at half the peak they reached (BENCH_MQTT_PACE: other
// fractions, comma-separated, each a run of its own against the same peak)
// and reports the PUBACK latency there. Reported: readings/s,
// and p50/p99 in ms.
func BenchmarkDevices(b *testing.B) {
	w, toks, patients := benchWorld(b, benchDevices)
	var seq atomic.Int64
	base := time.Now().UTC().Add(-48 * time.Hour)
	body := func() []byte {
		n := seq.Add(1)
		return fmt.Appendf(nil, `{"kind":"heart_rate","value":%d,"unit":"/min","observed_at":%q}`, 60+n%20,
			base.Add(time.Duration(n)*time.Millisecond).Format(time.RFC3339Nano))
	}
	// Warm up: every device's first reading (partitions, caches, plans).
	warm := &http.Client{}
	for i := range toks {
		req, _ := http.NewRequest("POST", w.http.URL+"/v1/patients/"+patients[i].String()+"/readings", strings.NewReader(string(body())))
		req.Header.Set("Authorization", "Bearer "+toks[i])
		resp, err := warm.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
	var peak float64
	b.Run("http-single", func(b *testing.B) {
		tr := &http.Transport{MaxIdleConnsPerHost: benchDevices, MaxConnsPerHost: benchDevices}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr}
		send := func(i int) error {
			req, _ := http.NewRequest("POST", w.http.URL+"/v1/patients/"+patients[i].String()+"/readings", strings.NewReader(string(body())))
			req.Header.Set("Authorization", "Bearer "+toks[i])
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		}
		drive(b, benchDevices, 0, send)
	})
	clients := connectAll(b, w, toks)
	b.Run("mqtt-qos1", func(b *testing.B) {
		peak = drive(b, benchDevices, 0, func(i int) error { return publishQoS1(clients[i], body()) })
	})
	for _, frac := range paces(b) {
		b.Run(fmt.Sprintf("mqtt-qos1-paced-%g-of-peak", frac), func(b *testing.B) {
			before := gather(b, w)
			drive(b, benchDevices, peak*frac, func(i int) error { return publishQoS1(clients[i], body()) })
			reportServerSide(b, before, gather(b, w))
		})
	}
}

// paces are the fractions of the peak the paced runs ask for, in order:
// BENCH_MQTT_PACE, a comma-separated list (default 0.5: half the peak).
func paces(b *testing.B) []float64 {
	v := os.Getenv("BENCH_MQTT_PACE")
	if v == "" {
		return []float64{0.5}
	}
	var out []float64
	for f := range strings.SplitSeq(v, ",") {
		x, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || x <= 0 {
			b.Fatalf("BENCH_MQTT_PACE: %q is not a positive fraction", f)
		}
		out = append(out, x)
	}
	return out
}

// gather reads the world's histograms by name.
func gather(b *testing.B, w *world) map[string]*dto.Histogram {
	mfs, err := w.reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]*dto.Histogram{}
	for _, mf := range mfs {
		if mf.GetType() == dto.MetricType_HISTOGRAM && len(mf.GetMetric()) == 1 {
			out[mf.GetName()] = mf.GetMetric()[0].GetHistogram()
		}
	}
	return out
}

// reportServerSide reports, for the publishes between two gathers, where
// the time went on the server: the listener's own acknowledgement latency
// (arrival to commit, tend_mqtt_ack_seconds) as the bucket bound holding
// its 99th percentile (server-p99-le-ms), and the readings committed per
// group transaction (readings/tx, tend_ingest_group_size). The rest of
// the devices' p99 is the client side and the network.
func reportServerSide(b *testing.B, before, after map[string]*dto.Histogram) {
	ack0, ack1 := before["tend_mqtt_ack_seconds"], after["tend_mqtt_ack_seconds"]
	if ack1 == nil {
		b.Fatal("no tend_mqtt_ack_seconds")
	}
	n := ack1.GetSampleCount() - ack0.GetSampleCount()
	for i, bk := range ack1.GetBucket() {
		if float64(bk.GetCumulativeCount()-ack0.GetBucket()[i].GetCumulativeCount()) >= 0.99*float64(n) {
			b.ReportMetric(bk.GetUpperBound()*1000, "server-p99-le-ms")
			break
		}
	}
	g0, g1 := before["tend_ingest_group_size"], after["tend_ingest_group_size"]
	if g1 != nil && g1.GetSampleCount() > g0.GetSampleCount() {
		b.ReportMetric((g1.GetSampleSum()-g0.GetSampleSum())/float64(g1.GetSampleCount()-g0.GetSampleCount()), "readings/tx")
	}
}

func publishQoS1(c *paho.Client, body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pr, err := c.Publish(ctx, &paho.Publish{Topic: "tend/v1/readings", QoS: 1, Payload: body})
	if err != nil {
		return err
	}
	if pr.ReasonCode != 0 {
		return fmt.Errorf("PUBACK %#x", pr.ReasonCode)
	}
	return nil
}

// connectAll connects one MQTT 5 client per token.
func connectAll(b *testing.B, w *world, toks []string) []*paho.Client {
	out := make([]*paho.Client, len(toks))
	for i, tok := range toks {
		nc, err := net.Dial("tcp", w.mqtt.Addr())
		if err != nil {
			b.Fatal(err)
		}
		c := paho.NewClient(paho.ClientConfig{Conn: nc})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err = c.Connect(ctx, &paho.Connect{ClientID: fmt.Sprintf("bench-%d", i), KeepAlive: 60, CleanStart: true,
			Password: []byte(tok), PasswordFlag: true})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		out[i] = c
		b.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
	}
	return out
}

// drive sends b.N single readings from n devices at once, each device
// sending its next when its previous was answered; rate > 0 paces the
// whole at that many per second. It reports readings/s and the latency
// percentiles, and returns the rate reached.
func drive(b *testing.B, n int, rate float64, send func(i int) error) float64 {
	var next atomic.Int64
	lat := make([][]time.Duration, n)
	var wg sync.WaitGroup
	var failed atomic.Value
	b.ResetTimer()
	// Paced, reading k is due at begin + k/rate: a schedule, not a ticker,
	// so that a busy machine that wakes late sends what is due at once
	// instead of dropping ticks (and the rate asked for is the rate tried).
	begin := time.Now()
	for i := range n {
		wg.Go(func() {
			for k := next.Add(1); k <= int64(b.N); k = next.Add(1) {
				if rate > 0 {
					time.Sleep(time.Until(begin.Add(time.Duration(float64(k-1) / rate * float64(time.Second)))))
				}
				start := time.Now()
				if err := send(i); err != nil {
					failed.Store(err)
					return
				}
				lat[i] = append(lat[i], time.Since(start))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	got := float64(len(all)) / b.Elapsed().Seconds()
	b.ReportMetric(got, "readings/s")
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	}
	return got
}
