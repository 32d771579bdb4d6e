package identity

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/check"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/rpm"
)

// OIDCConfig turns on single sign-on: a bearer token that is a JWT is
// verified as an OpenID Connect ID token of Issuer for Audience, and its
// subject signs in as the user an admin mapped it to (SetOIDCSubject).
type OIDCConfig struct {
	// Issuer is the provider's issuer URL; its discovery document
	// (/.well-known/openid-configuration) names the JWKS.
	Issuer string
	// Audience must be among the token's "aud" (the client id Tend is
	// registered under).
	Audience string
	// Algorithms are the signature algorithms accepted. Defaults to RS256
	// and ES256; "none" and the HMAC algorithms are never accepted.
	Algorithms []string
	// HTTPClient fetches discovery and keys. Defaults to a client with a
	// 10-second timeout.
	HTTPClient *http.Client
}

// DefaultOIDCAlgorithms is the default signature algorithm allow-list.
var DefaultOIDCAlgorithms = []string{oidc.RS256, oidc.ES256}

// oidcVerifier discovers the provider on first use (and again after a
// failure, at most every 10 seconds). go-oidc's key set caches the JWKS and
// fetches it again when a token names a key it does not hold, so a key
// rotation at the provider needs no restart.
type oidcVerifier struct {
	cfg OIDCConfig
	now func() time.Time

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
	lastTry  time.Time
}

func newOIDCVerifier(c *OIDCConfig, now func() time.Time) *oidcVerifier {
	if c == nil || c.Issuer == "" {
		return nil
	}
	cfg := *c
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = DefaultOIDCAlgorithms
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	return &oidcVerifier{cfg: cfg, now: now}
}

// ValidateOIDCConfig checks c before start-up: an issuer and audience, and
// only asymmetric signature algorithms.
func ValidateOIDCConfig(c OIDCConfig) error {
	if c.Issuer == "" || c.Audience == "" {
		return errors.New("OIDC: set both the issuer and the audience")
	}
	for _, a := range c.Algorithms {
		switch a {
		case oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512, oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA:
		default:
			return fmt.Errorf("OIDC: algorithm %q is not allowed (asymmetric signatures only)", a)
		}
	}
	return nil
}

func (o *oidcVerifier) get(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.verifier != nil {
		return o.verifier, nil
	}
	now := o.now()
	if !o.lastTry.IsZero() && now.Sub(o.lastTry) < 10*time.Second {
		return nil, errors.New("oidc: provider discovery failed recently")
	}
	o.lastTry = now
	pctx := oidc.ClientContext(context.WithoutCancel(ctx), o.cfg.HTTPClient)
	p, err := oidc.NewProvider(pctx, o.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc discovery: %w", err)
	}
	o.verifier = p.Verifier(&oidc.Config{ClientID: o.cfg.Audience, SupportedSigningAlgs: o.cfg.Algorithms, Now: o.now})
	return o.verifier, nil
}

// authenticateOIDC verifies an ID token (signature with an allowed
// algorithm and a key of the provider's JWKS, iss, aud, exp, nbf) and maps
// its subject to an enabled user. Every failure is ErrUnauthenticated: the
// caller learns nothing about why.
func (us *Service) authenticateOIDC(ctx context.Context, token string) (access.Actor, error) {
	if len(token) > 16<<10 {
		return access.Actor{}, access.ErrUnauthenticated
	}
	hash := sha256.Sum256([]byte(token))
	now := us.now()
	if a, ok := us.auth.get(hash, now); ok {
		return a, nil
	}
	v, err := us.oidc.get(ctx)
	if err != nil {
		return access.Actor{}, fmt.Errorf("%w (%w)", access.ErrUnauthenticated, err)
	}
	idt, err := v.Verify(ctx, token)
	if err != nil || idt.Subject == "" {
		return access.Actor{}, access.ErrUnauthenticated
	}
	var a access.Actor
	var patient, org *uuid.UUID
	err = us.pool.QueryRow(ctx, lookupSubjectSQL, idt.Subject).Scan(&a.UserID, &a.Role, &patient, &org)
	if errors.Is(err, pgx.ErrNoRows) {
		return access.Actor{}, access.ErrUnauthenticated
	}
	if err != nil {
		return access.Actor{}, fmt.Errorf("authenticate: %w", err)
	}
	a.PatientID, a.OrgID = pg.Deref(patient), pg.Deref(org)
	if idt.Expiry.After(now.Add(us.auth.ttl)) { // never remember a token past its expiry
		us.auth.put(hash, a, now, false)
	}
	return a, nil
}

// SetOIDCSubject maps an OpenID Connect subject to user id ("" removes the
// mapping), so that the provider's ID tokens with that subject sign in as
// them (admins only). A subject maps to one user at most.
func (us *Service) SetOIDCSubject(ctx context.Context, a access.Actor, id uuid.UUID, subject string) (User, error) {
	if err := access.Require(a, access.RoleAdmin); err != nil {
		return User{}, err
	}
	var v rpm.ValidationError
	if subject != "" {
		check.Name(&v, "oidc_subject", subject)
		if len(subject) > 255 {
			v.Add("oidc_subject", "is longer than 255 bytes")
		}
	}
	if err := v.OrNil(); err != nil {
		return User{}, err
	}
	var sub *string
	if subject != "" {
		sub = &subject
	}
	var u User
	err := pg.InTx(ctx, us.pool, func(tx pgx.Tx) error {
		var err error
		u, err = scanUser(tx.QueryRow(ctx, setOIDCSubjectSQL, id, sub, a.Org()))
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("user: %w", access.ErrNotFound)
		case pg.IsUniqueViolation(err):
			return check.FieldError("oidc_subject", "is already mapped to another user")
		case err != nil:
			return fmt.Errorf("set oidc subject: %w", err)
		}
		return us.audit.Write(ctx, tx, a, audit.Entry{Action: "user.oidc_subject", ObjectType: "user", ObjectID: id.String(),
			Detail: map[string]any{"mapped": sub != nil}})
	})
	return u, err
}
