package notify_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tendhealth/tend/notify"
)

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
	}{
		// delay-seconds
		{"120", 2 * time.Minute},
		{" 7 ", 7 * time.Second},
		{"007", 7 * time.Second},
		{"0", 0},
		// HTTP-date in its three spellings, relative to now
		{"Sun, 01 Mar 2026 12:01:30 GMT", 90 * time.Second},
		{"Sunday, 01-Mar-26 12:01:30 GMT", 90 * time.Second},
		{"Sun Mar  1 12:01:30 2026", 90 * time.Second},
		{"Sun, 01 Mar 2026 12:00:00 GMT", 0},
		{"Sun, 01 Mar 2026 11:59:00 GMT", 0},
		// garbage
		{"", 0},
		{"soon", 0},
		{"1.5", 0},
		{"12s", 0},
		{"+5", 0},
		{"0x10", 0},
		{"1 2", 0},
		{"Sun, 32 Mar 2026 12:01:30 GMT", 0},
		// negative
		{"-5", 0},
		{"-99999999999999999999999", 0},
		// huge
		{"31536000", notify.MaxRetryAfter},
		{"31536001", notify.MaxRetryAfter},
		{"9223372036854775807", notify.MaxRetryAfter},
		{"99999999999999999999999", notify.MaxRetryAfter},
		{"Fri, 31 Dec 9999 23:59:59 GMT", notify.MaxRetryAfter},
	}
	for _, c := range cases {
		if got := notify.RetryAfter(c.in, now); got != c.want {
			t.Errorf("RetryAfter(%q) = %v, want %v", c.in, got, c.want)
		}
	}
	// An HTTP-date has whole seconds; now need not.
	if got := notify.RetryAfter("Sun, 01 Mar 2026 12:01:30 GMT", now.Add(400*time.Millisecond)); got != 90*time.Second {
		t.Errorf("RetryAfter 400 ms later = %v, want 90s", got)
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	const secret = "https://push.example/wpush/v2/gAAAAABsecretcapability"
	canceled := &url.Error{Op: "Post", URL: secret, Err: context.Canceled}
	got := notify.RedactURL(fmt.Errorf("send: %w", canceled))
	if strings.Contains(got.Error(), "secretcapability") || !errors.Is(got, context.Canceled) {
		t.Errorf("RedactURL(canceled) = %v, want the cause without the URL", got)
	}

	timeout := &url.Error{Op: "Post", URL: secret, Err: context.DeadlineExceeded}
	got = notify.RedactURL(timeout)
	if msg := got.Error(); strings.Contains(msg, "secretcapability") || !strings.HasPrefix(msg, "timeout: ") ||
		!errors.Is(got, context.DeadlineExceeded) {
		t.Errorf("RedactURL(timeout) = %v", got)
	}

	plain := errors.New("no url here")
	if got := notify.RedactURL(plain); got != plain {
		t.Errorf("RedactURL(plain) = %v, want it unchanged", got)
	}
	if got := notify.RedactURL(nil); got != nil {
		t.Errorf("RedactURL(nil) = %v", got)
	}

	// A real client error names the URL; the redacted one does not.
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	_, err := http.Post(srv.URL+"/push/token-abc", "text/plain", nil) //nolint:noctx // closed server
	if err == nil || !strings.Contains(err.Error(), "token-abc") {
		t.Fatalf("client error %v does not name the URL; the test proves nothing", err)
	}
	if got := notify.RedactURL(err); strings.Contains(got.Error(), "token-abc") || strings.Contains(got.Error(), srv.URL) {
		t.Errorf("RedactURL = %v, still names the URL", got)
	}
}

func TestRedactToken(t *testing.T) {
	t.Parallel()
	const token = "a1b2c3d4e5f6"
	cause := fmt.Errorf("post https://api.example/3/device/%s: %w (token %s)", token, context.Canceled, token)
	got := notify.RedactToken("apns: ", cause, token)
	if want := "apns: post https://api.example/3/device/<token>: context canceled (token <token>)"; got.Error() != want {
		t.Errorf("RedactToken = %q, want %q", got, want)
	}
	if !errors.Is(got, context.Canceled) || !errors.Is(got, cause) {
		t.Errorf("RedactToken(%v) no longer unwraps to its cause", got)
	}
	if got := notify.RedactToken("fcm: ", errors.New("boom"), ""); got.Error() != "fcm: boom" {
		t.Errorf("empty token: %q, want the message untouched", got)
	}
	if got := notify.RedactToken("fcm: ", nil, token); got != nil {
		t.Errorf("RedactToken(nil) = %v", got)
	}
}
