// Package notifytest runs fake push providers on 127.0.0.1 that speak the real
// wire formats, so senders are tested end to end and `tend demo` can show
// deliveries without Apple, Google or a browser:
//
//   - WebPush: an RFC 8030 push service that checks the RFC 8292 VAPID
//     signature and decrypts the RFC 8291 aes128gcm body;
//   - FCM: the FCM HTTP v1 API (POST /v1/projects/{project}/messages:send);
//   - APNs: the APNs provider API over HTTP/2 and TLS with ES256 token auth.
//
// Each fake records what it accepted (Received, Wait), what it refused and why
// (Rejected), can call back on every delivery (OnReceive), and answers
// scripted failures in order (Script) before falling back to success:
//
//	push := notifytest.NewWebPush()
//	defer push.Close()
//	sub := push.NewSubscription()
//	push.Script(sub.Endpoint, notifytest.Response{Status: 429, RetryAfter: "30"})
//	// … send twice to sub.Device() …
//	got, err := push.Wait(ctx, 2)
//
// The package does not import "testing": the demo uses it at run time. All
// methods are safe for concurrent use.
package notifytest

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Response is a scripted provider answer.
type Response struct {
	// Status is the HTTP status to answer.
	Status int
	// RetryAfter, when not empty, is sent as the Retry-After header (delay
	// seconds or an HTTP-date).
	RetryAfter string
	// Body is sent as is. FCMError and APNsError build provider error bodies.
	Body string
	// Delay holds the answer back this long, or until the client gives up,
	// as a provider that hangs would. Zero answers at once.
	Delay time.Duration
}

// hold waits out r's Delay, or until the request ends.
func (r Response) hold(ctx context.Context) {
	if r.Delay <= 0 {
		return
	}
	t := time.NewTimer(r.Delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// write sends r, with contentType when it has a body.
func (r Response) write(w http.ResponseWriter, contentType string) {
	if r.RetryAfter != "" {
		w.Header().Set("Retry-After", r.RetryAfter)
	}
	if r.Body != "" {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(r.Body)))
	}
	w.WriteHeader(r.Status)
	_, _ = w.Write([]byte(r.Body))
}

// Rejection is a request a fake refused because it broke the protocol (bad
// signature, missing header, undecryptable body…). A conformant sender causes
// none.
type Rejection struct {
	// Key is the device the request was for: the Web Push endpoint, the FCM
	// registration token or the APNs device token ("" when unknown).
	Key string
	// Status is the HTTP status the fake answered.
	Status int
	// Reason says which check failed.
	Reason string
	// Time is when the request arrived.
	Time time.Time
}

// journal is an append-only, waitable list.
type journal[T any] struct {
	mu      sync.Mutex
	items   []T
	changed chan struct{} // closed and replaced on every add
}

func (j *journal[T]) add(v T) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.items = append(j.items, v)
	if j.changed != nil {
		close(j.changed)
		j.changed = nil
	}
}

func (j *journal[T]) len() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.items)
}

func (j *journal[T]) all() []T {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.items)
}

// wait returns the items once there are at least n, or ctx's error with
// what arrived so far.
func (j *journal[T]) wait(ctx context.Context, n int) ([]T, error) {
	for {
		j.mu.Lock()
		if len(j.items) >= n {
			items := slices.Clone(j.items)
			j.mu.Unlock()
			return items, nil
		}
		if j.changed == nil {
			j.changed = make(chan struct{})
		}
		ch := j.changed
		j.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return j.all(), ctx.Err()
		}
	}
}

// script holds scripted responses per device key; "" applies to any device
// whose own queue is empty.
type script struct {
	mu     sync.Mutex
	queues map[string][]Response
}

func (s *script) add(key string, rs ...Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queues == nil {
		s.queues = map[string][]Response{}
	}
	s.queues[key] = append(s.queues[key], rs...)
}

// next pops the next response for key, then for "".
func (s *script) next(key string) (Response, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range []string{key, ""} {
		if q := s.queues[k]; len(q) > 0 {
			s.queues[k] = q[1:]
			return q[0], true
		}
	}
	return Response{}, false
}

// callback holds an optional delivery callback.
type callback[T any] struct {
	mu sync.Mutex
	f  func(T)
}

func (c *callback[T]) set(f func(T)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.f = f
}

func (c *callback[T]) call(v T) {
	c.mu.Lock()
	f := c.f
	c.mu.Unlock()
	if f != nil {
		f(v)
	}
}
