package fcm

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
)

// attemptKey carries an *attempt in a Send's request context.
type attemptKey struct{}

// attempt records the first retryable failure of one Send and cancels the
// Send's context, so the Firebase client's retry loop ends at once instead of
// sleeping and retrying; classify reports the recorded failure.
type attempt struct {
	cancel context.CancelFunc

	mu     sync.Mutex
	failed *failure
}

// failure is a network error or a 503 response.
type failure struct {
	err    error
	status int
	header http.Header
	body   []byte
}

func (a *attempt) failure() *failure {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.failed
}

// errRetrySuppressed answers any request after a retryable failure.
var errRetrySuppressed = errors.New("fcm: client retry suppressed")

// singleAttempt is the Sender's transport: it lets a Send make one request
// and records its outcome when the Firebase client would retry it (network
// errors and 503, see firebase.google.com/go/v4/internal.WithDefaultRetryConfig).
type singleAttempt struct{ base http.RoundTripper }

func (t singleAttempt) RoundTrip(req *http.Request) (*http.Response, error) {
	a, _ := req.Context().Value(attemptKey{}).(*attempt)
	if a == nil {
		return t.base.RoundTrip(req)
	}
	if a.failure() != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errRetrySuppressed
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		a.record(&failure{err: err})
		return nil, err
	}
	if resp.StatusCode != http.StatusServiceUnavailable {
		return resp, nil
	}
	// Buffer the body before cancelling: the client still reads it.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	a.record(&failure{status: resp.StatusCode, header: resp.Header.Clone(), body: body})
	return resp, nil
}

func (a *attempt) record(f *failure) {
	a.mu.Lock()
	if a.failed == nil {
		a.failed = f
	}
	a.mu.Unlock()
	a.cancel()
}

// CloseIdleConnections closes the base transport's idle connections.
func (t singleAttempt) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
