package notifytest

import "sync"

// verifiedTokens remembers the claims of signed tokens (APNs provider
// tokens, VAPID JWTs) whose signature a fake has checked, by the exact token
// text, as a real provider does: a sender reuses one token for many
// requests (APNs for up to an hour, VAPID for hours), and checking its
// ES256 signature on every request would make the fake, not the sender,
// the work a benchmark measures. Only the signature check is skipped: the
// time-dependent checks run on every request.
type verifiedTokens[T any] struct {
	mu sync.Mutex
	m  map[string]T
}

// maxVerifiedTokens bounds a cache; it is emptied when full.
const maxVerifiedTokens = 1024

func (v *verifiedTokens[T]) get(token string) (T, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	c, ok := v.m[token]
	return c, ok
}

func (v *verifiedTokens[T]) put(token string, c T) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil || len(v.m) >= maxVerifiedTokens {
		v.m = make(map[string]T)
	}
	v.m[token] = c
}
