package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/e2ee"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/notify"
	"github.com/tendhealth/tend/notify/apns"
	"github.com/tendhealth/tend/notify/fcm"
	"github.com/tendhealth/tend/notify/webpush"
	"github.com/tendhealth/tend/sealed"
)

// getenv reads one configuration variable; tests pass their own.
type getenv func(string) string

func envFromOS() getenv { return os.Getenv }

// settings is Tend's configuration, read from the environment (README, Configuration).
type settings struct {
	DatabaseURL        string
	Addr               string
	PublicURL          string
	TLSCertFile        string
	TLSKeyFile         string
	DBMaxConns         int32
	WebPushAllowed     []string
	VAPIDPublicKey     string
	VAPIDPrivateKey    string
	VAPIDSubject       string
	FCMCredentialsFile string
	FCMProjectID       string
	FCMEndpoint        string
	APNsKeyFile        string
	APNsKeyID          string
	APNsTeamID         string
	APNsTopic          string
	APNsEndpoint       string
	APNsCritical       bool
	NotifyWorkers      int
	FetchCooldown      time.Duration
	IngestTxs          int
	ObservedHorizon    time.Time
	RateLimit          float64
	FailedAuthRate     float64
	OIDC               *engine.OIDCConfig
	LogLevel           slog.Level
	// Keys seal message bodies and symptom notes (TEND_ENCRYPTION_KEYS);
	// nil when unset.
	Keys *sealed.Keyring
	// RecordPublicKey is the organisation's record key that end-to-end
	// encrypted messages are also wrapped to (TEND_RECORD_PUBLIC_KEY); nil
	// when unset, and then no thread can be encrypted.
	RecordPublicKey []byte
	// MessagePushHold is how long a message waits for an in-app read before
	// its push (TEND_MESSAGE_PUSH_HOLD).
	MessagePushHold    time.Duration
	AttachmentMaxBytes int64
	// MediaMaxBytes is the largest audio or video attachment
	// (TEND_MEDIA_MAX_BYTES).
	MediaMaxBytes int64
	// PresenceIdle is how long clients wait before reporting their user
	// away (TEND_PRESENCE_IDLE).
	PresenceIdle time.Duration
	// MQTT is the device listener's configuration (TEND_MQTT_*).
	MQTT mqttSettings
	// App configures the patient app at /app/ (TEND_APP_*, appconfig.go).
	App api.AppConfig
	// CORSOrigins may call the API from another origin (TEND_CORS_ORIGINS).
	CORSOrigins []string
}

func loadSettings(env getenv) (settings, error) {
	s := settings{
		DatabaseURL:        env("TEND_DATABASE_URL"),
		Addr:               orDefault(env("TEND_ADDR"), "127.0.0.1:8080"),
		PublicURL:          env("TEND_PUBLIC_URL"),
		TLSCertFile:        env("TEND_TLS_CERT_FILE"),
		TLSKeyFile:         env("TEND_TLS_KEY_FILE"),
		VAPIDPublicKey:     env("TEND_VAPID_PUBLIC_KEY"),
		VAPIDPrivateKey:    env("TEND_VAPID_PRIVATE_KEY"),
		VAPIDSubject:       orDefault(env("TEND_VAPID_SUBJECT"), "mailto:ops@tend.invalid"),
		FCMCredentialsFile: env("TEND_FCM_CREDENTIALS_FILE"),
		FCMProjectID:       env("TEND_FCM_PROJECT_ID"),
		FCMEndpoint:        env("TEND_FCM_ENDPOINT"),
		APNsKeyFile:        env("TEND_APNS_KEY_FILE"),
		APNsKeyID:          env("TEND_APNS_KEY_ID"),
		APNsTeamID:         env("TEND_APNS_TEAM_ID"),
		APNsTopic:          env("TEND_APNS_TOPIC"),
		APNsEndpoint:       env("TEND_APNS_ENDPOINT"),
		APNsCritical:       env("TEND_APNS_CRITICAL_ALERTS") == "true",
	}
	if h := env("TEND_WEBPUSH_ALLOWED_HOSTS"); h != "" {
		for _, x := range strings.Split(h, ",") {
			if x = strings.TrimSpace(x); x != "" {
				s.WebPushAllowed = append(s.WebPushAllowed, x)
			}
		}
	}
	if (s.TLSCertFile == "") != (s.TLSKeyFile == "") {
		return s, fmt.Errorf("TEND_TLS_CERT_FILE and TEND_TLS_KEY_FILE: set both (HTTPS) or neither (plain HTTP)")
	}
	for _, load := range []func(getenv) error{s.loadWorkers, s.loadLimits, s.loadSecurity, s.loadMessaging} {
		if err := load(env); err != nil {
			return s, err
		}
	}
	return s, nil
}

// loadWorkers reads the pool, worker and ingest settings.
func (s *settings) loadWorkers(env getenv) error {
	var err error
	if s.DBMaxConns, err = intEnv(env, "TEND_DB_MAX_CONNS", 40); err != nil {
		return err
	}
	// 200 concurrent deliveries fetched every 10 ms sustain several thousand
	// pushes a second per process (BenchmarkPushDelivery, docs/notifications.md).
	n, err := intEnv(env, "TEND_NOTIFY_WORKERS", 200)
	if err != nil {
		return err
	}
	s.NotifyWorkers = int(n)
	s.FetchCooldown = 10 * time.Millisecond
	if v := env("TEND_FETCH_COOLDOWN"); v != "" {
		if s.FetchCooldown, err = time.ParseDuration(v); err != nil || s.FetchCooldown < time.Millisecond {
			return fmt.Errorf("TEND_FETCH_COOLDOWN: %q is not a duration of at least 1ms", v)
		}
	}
	if v := env("TEND_OBSERVED_HORIZON"); v != "" {
		t, err := time.Parse(time.DateOnly, v)
		if err != nil || t.Before(engine.BackfillHorizon) {
			return fmt.Errorf("TEND_OBSERVED_HORIZON: %q is not a date (YYYY-MM-DD) on or after 1970-01-01", v)
		}
		s.ObservedHorizon = t
	}
	if v := env("TEND_INGEST_TRANSACTIONS"); v != "" {
		txs, err := intEnv(env, "TEND_INGEST_TRANSACTIONS", 0)
		if err != nil {
			return err
		}
		s.IngestTxs = int(txs)
	}
	return nil
}

// loadLimits reads the API's rate limits.
func (s *settings) loadLimits(env getenv) error {
	var err error
	s.RateLimit = 200 // the API's own default, stated here so the README can be checked against it
	if v := env("TEND_RATE_LIMIT"); v != "" {
		if s.RateLimit, err = strconv.ParseFloat(v, 64); err != nil || s.RateLimit == 0 {
			return fmt.Errorf("TEND_RATE_LIMIT: %q is not a non-zero number (-1 disables the limit)", v)
		}
	}
	s.FailedAuthRate = 5 // the API's own default, stated here so the README can be checked against it
	if v := env("TEND_FAILED_AUTH_RATE"); v != "" {
		if s.FailedAuthRate, err = strconv.ParseFloat(v, 64); err != nil || s.FailedAuthRate == 0 {
			return fmt.Errorf("TEND_FAILED_AUTH_RATE: %q is not a non-zero number (-1 disables the limit)", v)
		}
	}
	return nil
}

// loadSecurity reads single sign-on and the encryption keys.
func (s *settings) loadSecurity(env getenv) error {
	var err error
	if iss, aud := env("TEND_OIDC_ISSUER"), env("TEND_OIDC_AUDIENCE"); iss != "" || aud != "" {
		o := &engine.OIDCConfig{Issuer: iss, Audience: aud}
		if v := env("TEND_OIDC_ALGORITHMS"); v != "" {
			for _, a := range strings.Split(v, ",") {
				if a = strings.TrimSpace(a); a != "" {
					o.Algorithms = append(o.Algorithms, a)
				}
			}
		}
		if err := engine.ValidateOIDCConfig(*o); err != nil {
			return fmt.Errorf("TEND_OIDC_ISSUER, TEND_OIDC_AUDIENCE, TEND_OIDC_ALGORITHMS: %w", err)
		}
		s.OIDC = o
	}
	if v := env("TEND_ENCRYPTION_KEYS"); v != "" {
		// ParseKeyring's errors name entries by position and id, never a key.
		if s.Keys, err = sealed.ParseKeyring(v); err != nil {
			return fmt.Errorf("TEND_ENCRYPTION_KEYS: %w", err)
		}
	}
	return nil
}

// loadMessaging reads the message, attachment and logging settings.
func (s *settings) loadMessaging(env getenv) error {
	var err error
	s.MessagePushHold = engine.DefaultMessagePushHold
	if v := env("TEND_MESSAGE_PUSH_HOLD"); v != "" {
		if s.MessagePushHold, err = time.ParseDuration(v); err != nil || s.MessagePushHold < 0 {
			return fmt.Errorf("TEND_MESSAGE_PUSH_HOLD: %q is not a duration of 0 or more (such as 30s)", v)
		}
		if s.MessagePushHold == 0 {
			s.MessagePushHold = -1 // the engine's "push at once"
		}
	}
	if v := env("TEND_RECORD_PUBLIC_KEY"); v != "" {
		if s.RecordPublicKey, err = e2ee.ParseRecordPublicKey(v); err != nil {
			return fmt.Errorf("TEND_RECORD_PUBLIC_KEY: %w (tend records keygen prints one)", err)
		}
	}
	s.AttachmentMaxBytes = engine.DefaultAttachmentMaxBytes
	if v := env("TEND_ATTACHMENT_MAX_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n > 1<<30 {
			return fmt.Errorf("TEND_ATTACHMENT_MAX_BYTES: %q is not a number of bytes from 1 to 1073741824 (1 GiB)", v)
		}
		s.AttachmentMaxBytes = n
	}
	s.MediaMaxBytes = engine.DefaultMediaMaxBytes
	if v := env("TEND_MEDIA_MAX_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n > 1<<30 {
			return fmt.Errorf("TEND_MEDIA_MAX_BYTES: %q is not a number of bytes from 1 to 1073741824 (1 GiB)", v)
		}
		s.MediaMaxBytes = n
	}
	s.PresenceIdle = engine.DefaultPresenceIdle
	if v := env("TEND_PRESENCE_IDLE"); v != "" {
		if s.PresenceIdle, err = time.ParseDuration(v); err != nil || s.PresenceIdle < time.Second {
			return fmt.Errorf("TEND_PRESENCE_IDLE: %q is not a duration of at least 1s (such as 5m)", v)
		}
	}
	if err := appSettings(env, s); err != nil {
		return err
	}
	if v := env("TEND_LOG_LEVEL"); v != "" {
		if err := s.LogLevel.UnmarshalText([]byte(v)); err != nil {
			return fmt.Errorf("TEND_LOG_LEVEL: %w", err)
		}
	}
	// MQTT (TEND_MQTT_*).
	s.MQTT, err = loadMQTTSettings(env)
	return err
}

func intEnv(env getenv, name string, def int32) (int32, error) {
	v := env(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s: %q is not a positive whole number", name, v)
	}
	return int32(n), nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// openPool connects to Postgres with an explicit pool size (River holds one
// connection for LISTEN; pgx's default of 4 on 2 cores is too few).
func openPool(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	cfg.MaxConns = maxConns
	cfg.MaxConnIdleTime = 5 * time.Minute
	engine.ConfigurePool(cfg)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to %s: %w", redactURL(url), err)
	}
	return pool, nil
}

// redactURL drops the password from a connection string for messages.
func redactURL(u string) string {
	cfg, err := pgxpool.ParseConfig(u)
	if err != nil {
		return "the database"
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s", cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
}

// senders builds the push senders that are configured; the others stay off
// and their devices' deliveries are recorded as undeliverable.
func (s settings) senders(ctx context.Context, log *slog.Logger) (notify.Senders, error) {
	out := notify.Senders{}
	// One transport for FCM and Web Push with room for every delivery worker:
	// http.DefaultTransport keeps 2 idle connections per host, so a plain
	// HTTP/1.1 gateway would open a connection per push. (HTTPS providers
	// speak HTTP/2 and multiplex one.)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = max(s.NotifyWorkers, 2)
	if s.VAPIDPublicKey != "" || s.VAPIDPrivateKey != "" {
		wp, err := webpush.New(webpush.Config{PublicKey: s.VAPIDPublicKey, PrivateKey: s.VAPIDPrivateKey, Subject: s.VAPIDSubject,
			HTTPClient: &http.Client{
				Transport: tr,
				Timeout:   webpush.DefaultTimeout,
				// An endpoint may only point at an allowed host: no redirects.
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			}})
		if err != nil {
			return nil, fmt.Errorf("web push: %w", err)
		}
		out[notify.WebPush] = wp
	}
	if s.FCMCredentialsFile != "" || s.FCMEndpoint != "" {
		f, err := fcm.New(ctx, fcm.Config{CredentialsFile: s.FCMCredentialsFile, ProjectID: s.FCMProjectID, Endpoint: s.FCMEndpoint,
			HTTPClient: &http.Client{Transport: tr}, CriticalEntitled: s.APNsCritical})
		if err != nil {
			return nil, fmt.Errorf("fcm: %w", err)
		}
		out[notify.FCM] = f
	}
	if s.APNsKeyFile != "" {
		a, err := apns.New(apns.Config{KeyFile: s.APNsKeyFile, KeyID: s.APNsKeyID, TeamID: s.APNsTeamID, Topic: s.APNsTopic,
			Endpoint: s.APNsEndpoint, CriticalEntitled: s.APNsCritical})
		if err != nil {
			return nil, fmt.Errorf("apns: %w", err)
		}
		out[notify.APNs] = a
	}
	for _, p := range []notify.Platform{notify.WebPush, notify.FCM, notify.APNs} {
		if out[p] == nil {
			log.Info("push provider not configured: its deliveries are recorded as undeliverable", "platform", p)
		}
	}
	return out, nil
}
