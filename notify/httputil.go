package notify

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter bounds what RetryAfter returns: a provider asking for more
// (or for a delay too large to represent) gets this. It is far beyond any
// message's TTL, so a delivery told to wait that long is given up, not
// retried early.
const MaxRetryAfter = 365 * 24 * time.Hour

// RetryAfter parses an HTTP Retry-After header value (RFC 9110 §10.2.3):
// either delay-seconds (digits only) or an HTTP-date, taken relative to now
// and rounded to the second. It returns 0 for an empty, malformed, zero,
// negative or past value, and at most MaxRetryAfter, also for a
// delay-seconds too large to parse.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if isDigits(v) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter // digits only: the error is out of range
		}
		return time.Duration(n) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	d := t.Sub(now) // saturates instead of overflowing
	if d <= 0 {
		return 0
	}
	return min(d.Round(time.Second), MaxRetryAfter)
}

// isDigits reports whether s is one or more ASCII digits.
func isDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// RedactURL strips the request URL from an HTTP client error, keeping its
// cause: push endpoints are capability URLs and APNs and FCM put the device
// token in the path, so neither may reach a log. An error without a
// *url.Error in its chain is returned as is; one that timed out says so.
// The result still unwraps to the cause (context.Canceled, a net.Error…).
func RedactURL(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	if ue.Timeout() {
		return fmt.Errorf("timeout: %w", ue.Err)
	}
	return ue.Err
}

// RedactToken returns err with every occurrence of token in its message
// replaced by "<token>", prefixed by prefix; it still unwraps to err, so
// errors.Is and errors.As see the cause. Device tokens are credentials for
// reaching a person's phone and must not reach a log. An empty token leaves
// the message as it is.
func RedactToken(prefix string, err error, token string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if token != "" {
		msg = strings.ReplaceAll(msg, token, "<token>")
	}
	return &redactedError{msg: prefix + msg, err: err}
}

// redactedError is an error with a scrubbed message that unwraps to the
// original.
type redactedError struct {
	msg string
	err error
}

func (r *redactedError) Error() string { return r.msg }
func (r *redactedError) Unwrap() error { return r.err }
