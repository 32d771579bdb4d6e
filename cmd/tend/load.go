package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// load drives a running server: it enrols simulated patients with device
// tokens through the API (with an admin token), then posts readings from N
// concurrent devices, flat out or at a target rate, one reading or a batch
// per request, and reports readings/s and latency percentiles. With -mode
// messages the patients post messages to their care team's thread instead.
func load(ctx context.Context, env getenv, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("load", "--token T [flags]", "Enrols simulated patients through the API of a running server, posts readings from concurrent\n"+
		"devices and reports readings/s and latency percentiles. -mode messages posts messages from the patients to their\n"+
		"care team's threads instead (one message per request) and reports messages/s.", stdout, stderr)
	mode := fs.String("mode", "readings", "what to post: readings, or messages")
	base := fs.String("url", "", "server base URL (default: http:// and $TEND_ADDR, else http://127.0.0.1:8080)")
	token := fs.String("token", "", "admin bearer token, used to enrol the simulated patients (default: $TEND_TOKEN)")
	devices := fs.Int("devices", 32, "concurrent simulated devices (connections posting at once)")
	patients := fs.Int("patients", 1000, "simulated patients, spread over the devices (each reading goes to the next patient)")
	duration := fs.Duration("duration", 30*time.Second, "how long to post")
	warmup := fs.Duration("warmup", 2*time.Second, "posting time excluded from the figures")
	rate := fs.Float64("rate", 0, "target readings per second across all devices (0: flat out)")
	batch := fs.Int("batch", 1, "readings per request (1 posts single readings; more posts {\"readings\": [...]})")
	abnormal := fs.Float64("abnormal", 0, "fraction of readings that are abnormal (raise alerts)")
	if err := fs.parse(args); err != nil {
		return err
	}
	*base = cmp.Or(*base, "http://"+orDefault(env("TEND_ADDR"), "127.0.0.1:8080"))
	*token = cmp.Or(*token, env("TEND_TOKEN"))
	switch {
	case *token == "":
		return &exitError{code: 2, err: errors.New("--token (an admin token, from `tend token create --role admin`) is required")}
	case *devices < 1 || *devices > 10000:
		return &exitError{code: 2, err: errors.New("--devices must be between 1 and 10000")}
	case *patients < *devices:
		return &exitError{code: 2, err: errors.New("--patients must be at least --devices")}
	case *batch < 1 || *batch > 1000:
		return &exitError{code: 2, err: errors.New("--batch must be between 1 and 1000")}
	case *mode != "readings" && *mode != "messages":
		return &exitError{code: 2, err: errors.New("--mode must be readings or messages")}
	case *mode == "messages" && *batch != 1:
		return &exitError{code: 2, err: errors.New("--mode messages posts one message per request: leave --batch at 1")}
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: *devices * 2, MaxIdleConnsPerHost: *devices * 2, IdleConnTimeout: time.Minute}}
	fmt.Fprintf(stderr, "enrolling %d simulated patients…\n", *patients)
	pats, err := enrol(ctx, client, *base, *token, *patients, *mode == "messages")
	if err != nil {
		return err
	}
	// Each device posts for its share of the patients, in turn.
	sims := make([]*loadSim, *devices)
	for i := range sims {
		sims[i] = &loadSim{rng: rand.New(rand.NewPCG(uint64(i), 7)), messages: *mode == "messages", id: i}
	}
	for i, p := range pats {
		sims[i%len(sims)].patients = append(sims[i%len(sims)].patients, p)
	}

	var pace <-chan time.Time
	if *rate > 0 {
		every := time.Duration(float64(time.Second) * float64(*batch) / *rate)
		tick := time.NewTicker(max(every, time.Microsecond))
		defer tick.Stop()
		pace = tick.C
	}
	runCtx, cancel := context.WithTimeout(ctx, *warmup+*duration)
	defer cancel()
	measureFrom := time.Now().Add(*warmup)
	results := make([]loadResult, len(sims))
	var wg sync.WaitGroup
	fmt.Fprintf(stderr, "posting %s for %s (+%s warm-up) from %d devices for %d patients, batch %d, rate %s\n",
		*mode, *duration, *warmup, *devices, *patients, *batch, rateText(*rate))
	for i, sim := range sims {
		wg.Go(func() {
			results[i] = sim.post(runCtx, client, *base, *batch, *abnormal, pace, measureFrom)
		})
	}
	wg.Wait()
	report(stdout, results, *batch, *duration, *mode)
	return nil
}

func rateText(r float64) string {
	if r <= 0 {
		return "flat out"
	}
	return strconv.FormatFloat(r, 'f', 0, 64) + " per second"
}

// loadPatient is an enrolled patient and its device token (or, posting
// messages, its patient user's token and its thread with the team).
type loadPatient struct {
	id     string
	token  string
	thread string
}

// loadSim is one concurrent device connection posting for several patients.
type loadSim struct {
	patients []loadPatient
	rng      *rand.Rand
	seq      int
	messages bool
	id       int
}

// enrol creates a care team, and per device a patient and a device user with
// its token (for messages: a patient user, and its thread), through the API.
func enrol(ctx context.Context, client *http.Client, base, token string, n int, messages bool) ([]loadPatient, error) {
	var team struct{ ID string }
	if err := call(ctx, client, base+"/v1/care-teams", token, map[string]any{"name": "load test " + time.Now().Format(time.RFC3339)}, &team); err != nil {
		return nil, fmt.Errorf("create care team: %w", err)
	}
	out := make([]loadPatient, n)
	for i := range out {
		var p, u struct{ ID string }
		var tok struct{ Token string }
		if err := call(ctx, client, base+"/v1/patients", token, map[string]any{"display_name": fmt.Sprintf("Load patient %d", i),
			"timezone": "UTC", "care_team_id": team.ID, "programs": []string{"hypertension"}}, &p); err != nil {
			return nil, fmt.Errorf("create patient: %w", err)
		}
		role := "device"
		if messages {
			role = "patient"
		}
		if err := call(ctx, client, base+"/v1/users", token, map[string]any{"name": fmt.Sprintf("load %s %d", role, i), "role": role, "patient_id": p.ID}, &u); err != nil {
			return nil, fmt.Errorf("create %s user: %w", role, err)
		}
		if err := call(ctx, client, base+"/v1/users/"+u.ID+"/tokens", token, map[string]any{}, &tok); err != nil {
			return nil, fmt.Errorf("create %s token: %w", role, err)
		}
		out[i] = loadPatient{id: p.ID, token: tok.Token}
		if messages {
			var threads struct{ Items []struct{ ID, Kind string } }
			if err := get(ctx, client, base+"/v1/threads", tok.Token, &threads); err != nil {
				return nil, fmt.Errorf("list threads: %w", err)
			}
			for _, th := range threads.Items {
				if th.Kind == "patient" {
					out[i].thread = th.ID
				}
			}
			if out[i].thread == "" {
				return nil, errors.New("list threads: the patient has no thread with the care team")
			}
		}
	}
	return out, nil
}

// get reads url as token into out.
func get(ctx context.Context, client *http.Client, url, token string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s: status %d: %s", url, resp.StatusCode, bytes.TrimSpace(data))
	}
	return json.Unmarshal(data, out)
}

func call(ctx context.Context, client *http.Client, url, token string, in, out any) error {
	b, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s: status %d: %s", url, resp.StatusCode, bytes.TrimSpace(data))
	}
	return json.Unmarshal(data, out)
}

type loadResult struct {
	readings  int
	latencies []time.Duration
	errors    map[string]int
}

func (s *loadSim) post(ctx context.Context, client *http.Client, base string, batch int, abnormal float64, pace <-chan time.Time, measureFrom time.Time) loadResult {
	res := loadResult{errors: map[string]int{}}
	buf := make([]byte, 0, 128*batch)
	conn := newPoster(client, base)
	if lc, ok := conn.(*loadConn); ok {
		defer lc.close()
	}
	for n := 0; ctx.Err() == nil; n++ {
		p := s.patients[n%len(s.patients)]
		if pace != nil {
			select {
			case <-ctx.Done():
				return res
			case <-pace:
			}
		}
		path := "/v1/patients/" + p.id + "/readings"
		if s.messages {
			s.seq++
			buf = fmt.Appendf(buf[:0], `{"body":"Simulated message %d: how should I take the new tablets?","client_id":"load-%d-%d"}`,
				s.seq, s.id, s.seq)
			path = "/v1/threads/" + p.thread + "/messages"
		} else {
			buf = s.body(buf[:0], batch, abnormal)
		}
		start := time.Now()
		status, err := conn.post(ctx, path, p.token, buf)
		if err != nil {
			if ctx.Err() == nil {
				res.errors["transport"]++
			}
			continue
		}
		if start.Before(measureFrom) {
			continue
		}
		if status != http.StatusCreated {
			res.errors[strconv.Itoa(status)]++
			continue
		}
		res.readings += batch
		res.latencies = append(res.latencies, time.Since(start))
	}
	return res
}

// body appends a request body of batch readings; most are normal heart rate,
// SpO2 and blood pressure values.
func (s *loadSim) body(b []byte, batch int, abnormal float64) []byte {
	now := time.Now().UTC()
	if batch > 1 {
		b = append(b, `{"readings":[`...)
	}
	for i := range batch {
		if i > 0 {
			b = append(b, ',')
		}
		s.seq++
		// A batch is a device's backlog: readings 10 ms apart, ending now, so
		// one patient's successive batches do not overlap in time.
		at := now.Add(-time.Duration(batch-i) * 10 * time.Millisecond).Format(time.RFC3339Nano)
		bad := abnormal > 0 && s.rng.Float64() < abnormal
		switch s.seq % 3 {
		case 0:
			sys := 110 + s.rng.IntN(30)
			if bad {
				sys = 185
			}
			b = fmt.Appendf(b, `{"kind":"blood_pressure","systolic":%d,"diastolic":%d,"unit":"mm[Hg]","observed_at":%q}`, sys, 70+s.rng.IntN(15), at)
		case 1:
			v := 94 + s.rng.IntN(6)
			if bad {
				v = 86
			}
			b = fmt.Appendf(b, `{"kind":"spo2","value":%d,"unit":"%%","observed_at":%q}`, v, at)
		default:
			v := 60 + s.rng.IntN(40)
			if bad {
				v = 150
			}
			b = fmt.Appendf(b, `{"kind":"heart_rate","value":%d,"unit":"/min","observed_at":%q}`, v, at)
		}
	}
	if batch > 1 {
		b = append(b, "]}"...)
	}
	return b
}

func report(w io.Writer, results []loadResult, batch int, d time.Duration, mode string) {
	var all []time.Duration
	readings := 0
	errs := map[string]int{}
	for _, r := range results {
		readings += r.readings
		all = append(all, r.latencies...)
		for k, v := range r.errors {
			errs[k] += v
		}
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(len(all)-1, int(p*float64(len(all))))].Microseconds()) / 1000
	}
	fmt.Fprintf(w, "requests:   %d ok (batch %d), errors %v\n", len(all), batch, errs)
	fmt.Fprintf(w, "%s/s: %.0f\n", mode, float64(readings)/d.Seconds())
	fmt.Fprintf(w, "requests/s: %.0f\n", float64(len(all))/d.Seconds())
	fmt.Fprintf(w, "latency:    p50 %.2f ms  p95 %.2f ms  p99 %.2f ms  max %.2f ms\n", pct(0.50), pct(0.95), pct(0.99), pct(1))
}
