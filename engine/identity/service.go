// Package identity knows who uses Tend: users and their tokens,
// authentication and its cache, push devices, and notification preferences.
package identity

import (
	"cmp"
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/delivery"
)

// Config wires a Service.
type Config struct {
	Pool  *pgxpool.Pool
	Now   func() time.Time
	Audit audit.Writer
	// Delivery reschedules held notifications when quiet hours change.
	Delivery *delivery.Service
	// AuthCacheTTL is how long a token lookup is trusted on its own, and so
	// how long a revocation may take; negative disables the cache.
	AuthCacheTTL time.Duration
	// AuthCacheHold is how long a lookup is remembered while the revocation
	// watcher (Start) keeps the cache current; at most AuthCacheTTL when
	// shorter.
	AuthCacheHold time.Duration
	// Log receives the revocation watcher's errors.
	Log *slog.Logger
	// WebPushAllowedHosts lists the hosts a Web Push endpoint may point at.
	WebPushAllowedHosts []string
	// APNsTopic is the default APNs topic.
	APNsTopic string
	// OIDC enables single sign-on with OpenID Connect ID tokens; nil: off.
	OIDC *OIDCConfig
}

// Service manages users, tokens, devices and preferences.
type Service struct {
	pool                *pgxpool.Pool
	now                 func() time.Time
	audit               audit.Writer
	delivery            *delivery.Service
	auth                *authCache
	webPushAllowedHosts []string
	apnsTopic           string
	oidc                *oidcVerifier
	log                 *slog.Logger

	stopWatch context.CancelFunc
	watchDone chan struct{}
}

// New builds a Service.
func New(c Config) *Service {
	return &Service{pool: c.Pool, now: c.Now, audit: c.Audit, delivery: c.Delivery, auth: newAuthCache(c.AuthCacheTTL, c.AuthCacheHold, 50_000),
		webPushAllowedHosts: c.WebPushAllowedHosts, apnsTopic: c.APNsTopic, oidc: newOIDCVerifier(c.OIDC, c.Now),
		log: cmp.Or(c.Log, slog.New(slog.DiscardHandler))}
}

// Start runs the revocation watcher that lets the authentication cache hold
// lookups for AuthCacheHold (see authCache); without it, a lookup is
// trusted for AuthCacheTTL. It checks twice per AuthCacheTTL.
func (us *Service) Start(ctx context.Context) {
	if us.auth.ttl <= 0 || us.auth.hold <= us.auth.ttl || us.stopWatch != nil {
		return
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	us.stopWatch, us.watchDone = cancel, make(chan struct{})
	go us.watchRevocations(wctx, us.auth.ttl/2, us.log, us.watchDone)
}

// Stop ends the revocation watcher.
func (us *Service) Stop() {
	if us.stopWatch != nil {
		us.stopWatch()
		<-us.watchDone
		us.stopWatch = nil
	}
}
