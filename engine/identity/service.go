// Package identity knows who uses Tend: users and their tokens,
// authentication and its cache, push devices, and notification preferences.
package identity

import (
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
	// AuthCacheTTL is how long a token lookup is remembered; negative
	// disables the cache.
	AuthCacheTTL time.Duration
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
}

// New builds a Service.
func New(c Config) *Service {
	return &Service{pool: c.Pool, now: c.Now, audit: c.Audit, delivery: c.Delivery, auth: newAuthCache(c.AuthCacheTTL, 50_000),
		webPushAllowedHosts: c.WebPushAllowedHosts, apnsTopic: c.APNsTopic, oidc: newOIDCVerifier(c.OIDC, c.Now)}
}
