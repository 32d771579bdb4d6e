package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// driver posts readings to the servers from concurrent clients the way a
// careful device does: every reading has a source_id, and a reading whose
// answer was not 2xx (a refused or cut connection, a 503) is posted again,
// the same, until it is acknowledged. Every criticalEvery one reading is
// critical (glucose 40 mg/dL pages at once), each for a patient that has
// none yet, so that every critical reading raises an alert of its own
// throughout the run.
type driver struct {
	servers       func() []string // the servers to spread requests over
	token         string
	patients      []string
	criticalEvery time.Duration

	client       *http.Client
	stopLoad     context.CancelFunc // ends the posting of new readings
	stopHard     context.CancelFunc // ends the retries of readings in flight
	done         chan struct{}      // closed when every client has returned
	seq          atomic.Int64
	critical     atomic.Int64 // the last patient given a critical reading
	nextCritical atomic.Int64 // when the next critical reading is due (Unix ns)

	mu        sync.Mutex
	acked     map[string]string // source_id → patient id
	answers   map[string]int    // answer class → count
	firstFail time.Time         // the first write that did not succeed after lastOK
	lastOK    time.Time
	gaps      []time.Duration // write outages: from a failed write to the next success
}

func newDriver(servers func() []string, token string, patients []string) *driver {
	return &driver{servers: servers, token: token, patients: patients, criticalEvery: 150 * time.Millisecond,
		client: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		acked:  map[string]string{}, answers: map[string]int{}}
}

// start runs n posting clients in the background until finish.
func (d *driver) start(ctx context.Context, n int) {
	load, stopLoad := context.WithCancel(ctx)
	hard, stopHard := context.WithCancel(ctx)
	d.stopLoad, d.stopHard, d.done = stopLoad, stopHard, make(chan struct{})
	go func() { d.run(load, hard, n); close(d.done) }()
}

// finish stops posting new readings, gives those in flight a minute to be
// acknowledged, and waits for the clients. It may be called again.
func (d *driver) finish() {
	d.stopLoad()
	t := time.AfterFunc(time.Minute, d.stopHard)
	<-d.done
	t.Stop()
	d.stopHard()
}

// run posts from n clients until ctx ends; readings in flight then are
// retried until acknowledged or until hard ends.
func (d *driver) run(ctx, hard context.Context, n int) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			for ctx.Err() == nil {
				d.postOne(hard, i)
			}
		})
	}
	wg.Wait()
}

// postOne posts one new reading until it is acknowledged.
func (d *driver) postOne(ctx context.Context, client int) {
	n := d.seq.Add(1)
	patient := d.patients[int(n)%len(d.patients)]
	body := fmt.Sprintf(`{"kind": "heart_rate", "value": %d, "unit": "/min", "observed_at": %q, "source_id": "chaos:%d"}`,
		60+n%30, time.Now().UTC().Add(-time.Second).Format(time.RFC3339Nano), n)
	if d.criticalDue() {
		if c := d.critical.Add(1); int(c) < len(d.patients) {
			patient = d.patients[c]
			body = fmt.Sprintf(`{"kind": "blood_glucose", "value": 40, "unit": "mg/dL", "observed_at": %q, "source_id": "chaos:%d"}`,
				time.Now().UTC().Add(-time.Second).Format(time.RFC3339Nano), n)
		}
	}
	source := fmt.Sprintf("chaos:%d", n)
	for attempt := 0; ctx.Err() == nil; attempt++ {
		servers := d.servers()
		if len(servers) == 0 {
			sleep(ctx, 100*time.Millisecond)
			continue
		}
		class := d.post(ctx, servers[(client+attempt)%len(servers)], patient, body)
		d.record(class, source, patient)
		switch {
		case class == "2xx":
			return
		case strings.HasPrefix(class, "4"):
			return // a refused reading is a failure of its own: never retried
		}
		sleep(ctx, 100*time.Millisecond)
	}
}

// criticalDue reports whether the next reading should be critical (one
// caller per criticalEvery).
func (d *driver) criticalDue() bool {
	now := time.Now().UnixNano()
	next := d.nextCritical.Load()
	return now >= next && d.nextCritical.CompareAndSwap(next, now+int64(d.criticalEvery))
}

// post sends one request and classifies the answer: 2xx, 503 (with
// Retry-After), 503-without-Retry-After, the status for any other, or
// "no answer" when the connection was refused or cut.
func (d *driver) post(ctx context.Context, base, patient, body string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/patients/"+patient+"/readings", bytes.NewBufferString(body))
	if err != nil {
		return "no answer"
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return "no answer"
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	switch {
	case resp.StatusCode/100 == 2:
		return "2xx"
	case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
		return "503"
	case resp.StatusCode == http.StatusServiceUnavailable:
		return "503 without Retry-After"
	}
	return fmt.Sprint(resp.StatusCode)
}

func (d *driver) record(class, source, patient string) {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.answers[class]++
	if class == "2xx" {
		d.acked[source] = patient
		if !d.firstFail.IsZero() {
			d.gaps = append(d.gaps, now.Sub(d.firstFail))
			d.firstFail = time.Time{}
		}
		d.lastOK = now
		return
	}
	if d.firstFail.IsZero() {
		d.firstFail = now
	}
}

// firstSuccessAfter waits until a write succeeds after t and returns when
// (or the zero time at the deadline).
func (d *driver) firstSuccessAfter(ctx context.Context, t time.Time, timeout time.Duration) time.Time {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		d.mu.Lock()
		ok := d.lastOK
		d.mu.Unlock()
		if ok.After(t) {
			return ok
		}
		sleep(ctx, 50*time.Millisecond)
	}
	return time.Time{}
}

// ackedSources is every acknowledged source_id.
func (d *driver) ackedSources() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.acked))
	for s := range d.acked {
		out = append(out, s)
	}
	return out
}

// answerCounts is the answers by class, sorted for printing.
func (d *driver) answerCounts() (classes []string, counts map[string]int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	counts = make(map[string]int, len(d.answers))
	for c, n := range d.answers {
		classes = append(classes, c)
		counts[c] = n
	}
	sort.Strings(classes)
	return classes, counts
}

// bad counts the answers that are failures: anything but 2xx, 503 with
// Retry-After and no answer at all (a process that was killed).
func (d *driver) bad() int {
	classes, counts := d.answerCounts()
	n := 0
	for _, c := range classes {
		if c != "2xx" && c != "503" && c != "no answer" {
			n += counts[c]
		}
	}
	return n
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
