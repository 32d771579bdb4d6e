// Package text holds the small text helpers every layer shares. It is pure:
// no I/O, no clock.
package text

import "unicode/utf8"

// Truncate shortens s to at most n bytes plus an ellipsis, never splitting a
// UTF-8 character, so that an error or a log line never echoes long input
// (nor breaks a character in two).
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
