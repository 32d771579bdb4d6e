package main

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/tendhealth/tend/api"
)

// appSettings reads the patient app's configuration (TEND_APP_*) and the
// origins allowed to call the API across origins (TEND_CORS_ORIGINS). The
// app signs on through the API's own provider and subscribes to pushes with
// the server's VAPID key, so those come from s.
func appSettings(env getenv, s *settings) error {
	s.App = api.AppConfig{
		Name:           orDefault(env("TEND_APP_NAME"), "Tend"),
		Color:          orDefault(env("TEND_APP_COLOR"), "#0b5cad"),
		Background:     orDefault(env("TEND_APP_BACKGROUND"), "#ffffff"),
		IdleLock:       5 * time.Minute,
		VAPIDPublicKey: s.VAPIDPublicKey,
	}
	if s.OIDC != nil {
		s.App.OIDCIssuer, s.App.OIDCClientID = s.OIDC.Issuer, s.OIDC.Audience
	}
	if v := env("TEND_APP_IDLE_LOCK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 30*time.Second || d > 24*time.Hour {
			return fmt.Errorf("TEND_APP_IDLE_LOCK: %q is not a duration from 30s to 24h (such as 5m)", v)
		}
		s.App.IdleLock = d
	}
	if len(s.App.Name) > 40 {
		return fmt.Errorf("TEND_APP_NAME: at most 40 characters")
	}
	if err := api.ValidateAppConfig(s.App); err != nil {
		return fmt.Errorf("TEND_APP_COLOR, TEND_APP_BACKGROUND: %w", err)
	}
	for _, o := range strings.Split(env("TEND_CORS_ORIGINS"), ",") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" {
			return fmt.Errorf("TEND_CORS_ORIGINS: %q is not an origin such as https://app.example.org", o)
		}
		s.CORSOrigins = append(s.CORSOrigins, o)
	}
	return nil
}
