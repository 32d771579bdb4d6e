package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tendhealth/tend/api"
)

// Unknown tokens are throttled per client address: after the burst of
// failed authentications, every request from that address is answered 429
// with Retry-After and no lookup, until the bucket refills; another
// address's limit is its own.
func TestUnknownTokensThrottledByAddress(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	var mu sync.Mutex
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv, err := api.New(api.Config{Engine: s.eng, Now: clock, FailedAuthRate: 1, FailedAuthBurst: 5})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	valid := s.admin.token
	guess := client{t: t, base: hs.URL, token: "tend_" + strings.Repeat("g", 40)}
	for i := range 5 {
		if r := guess.do("GET", "/v1/patients", nil); r.status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i, r.status)
		}
	}
	r := guess.do("GET", "/v1/patients", nil)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "1" {
		t.Fatalf("guess 6: %d Retry-After %q, want 429 after 1 s", r.status, r.header.Get("Retry-After"))
	}
	// A missing token counts too, and while the bucket is empty even a valid
	// token waits (answering it would tell a guesser which token is real).
	if r := guess.as("").do("GET", "/v1/patients", nil); r.status != http.StatusTooManyRequests {
		t.Fatalf("no token while throttled: %d", r.status)
	}
	if r := guess.as(valid).do("GET", "/v1/patients", nil); r.status != http.StatusTooManyRequests {
		t.Fatalf("valid token while throttled: %d", r.status)
	}
	mu.Lock()
	now = now.Add(1100 * time.Millisecond)
	mu.Unlock()
	if r := guess.as(valid).do("GET", "/v1/patients", nil); r.status != http.StatusOK {
		t.Fatalf("valid token after the wait: %d %s", r.status, r.body)
	}
	if r := guess.do("GET", "/v1/patients", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("one guess after the wait: %d", r.status)
	}
	if r := guess.do("GET", "/v1/patients", nil); r.status != http.StatusTooManyRequests {
		t.Fatalf("second guess after the wait: %d", r.status)
	}
	// Successful requests never spend the failure budget.
	mu.Lock()
	now = now.Add(10 * time.Second)
	mu.Unlock()
	for i := range 20 {
		if r := guess.as(valid).do("GET", "/v1/patients", nil); r.status != http.StatusOK {
			t.Fatalf("valid request %d: %d", i, r.status)
		}
	}
}
