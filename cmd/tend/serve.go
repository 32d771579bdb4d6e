package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"riverqueue.com/riverui"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/migrations"
)

// system is a running Tend: engine (with workers) and, optionally, the API.
type system struct {
	pool   *pgxpool.Pool
	engine *engine.Engine
	api    *api.Server
	log    *slog.Logger
	reg    *prometheus.Registry
	// stopJobsUI stops the job dashboard's background services.
	stopJobsUI context.CancelFunc
}

// systemOpts are the parts of a system that differ between serve and demo.
type systemOpts struct {
	withAPI   bool
	senders   bool
	overrides func(*engine.Config)
}

func startSystem(ctx context.Context, s settings, pool *pgxpool.Pool, log *slog.Logger, o systemOpts) (*system, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg := engine.Config{
		Pool:                pool,
		Logger:              log,
		Registerer:          reg,
		RunWorkers:          true,
		NotifyWorkers:       s.NotifyWorkers,
		FetchCooldown:       s.FetchCooldown,
		IngestTransactions:  s.IngestTxs,
		ObservedHorizon:     s.ObservedHorizon,
		WebPushAllowedHosts: s.WebPushAllowed,
		APNsTopic:           s.APNsTopic,
		OIDC:                s.OIDC,
		Keys:                s.Keys,
		RecordPublicKey:     s.RecordPublicKey,
		MessagePushHold:     s.MessagePushHold,
		AttachmentMaxBytes:  s.AttachmentMaxBytes,
		MediaMaxBytes:       s.MediaMaxBytes,
		PresenceIdle:        s.PresenceIdle,
	}
	if o.senders {
		snd, err := s.senders(ctx, log)
		if err != nil {
			return nil, err
		}
		cfg.Senders = snd
	}
	if o.overrides != nil {
		o.overrides(&cfg)
	}
	eng, err := engine.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := checkKeys(ctx, eng, cfg.Keys != nil, log); err != nil {
		return nil, err
	}
	// River stops hard when its start context ends; stop() stops it gracefully
	// instead, so it gets a context that outlives ctx.
	if err := eng.Start(context.WithoutCancel(ctx)); err != nil {
		return nil, err
	}
	sys := &system{pool: pool, engine: eng, log: log, reg: reg}
	if o.withAPI {
		jctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		sys.stopJobsUI = cancel
		jobs, err := jobsDashboard(jctx, eng, log)
		if err != nil {
			cancel()
			return nil, err
		}
		sys.api, err = api.New(api.Config{
			Engine: eng, Logger: log, Gatherer: reg, Registerer: reg, RateLimit: s.RateLimit, JobsUI: jobs,
			FailedAuthRate: s.FailedAuthRate, App: s.App, AllowedOrigins: s.CORSOrigins, PublicURL: s.PublicURL,
			Ready: func(ctx context.Context) error {
				if err := pool.Ping(ctx); err != nil {
					return fmt.Errorf("database unreachable")
				}
				return migrations.Check(ctx, pool)
			},
		})
		if err != nil {
			return nil, err
		}
	}
	return sys, nil
}

// jobsDashboard builds River's own UI for operators, served by the API at
// /riverui/ to admins only (api/session.go). It has no authentication of its
// own and can cancel, retry and delete jobs; job arguments carry ids only.
// Its background services stop with ctx.
func jobsDashboard(ctx context.Context, eng *engine.Engine, log *slog.Logger) (http.Handler, error) {
	h, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(eng.Jobs(), nil),
		Logger:    log.With("component", "riverui"),
		Prefix:    "/riverui",
		// Job lists show no arguments unless asked: they hold ids only, but
		// an operator's overview needs none.
		JobListHideArgsByDefault: true,
	})
	if err != nil {
		return nil, fmt.Errorf("job dashboard: %w", err)
	}
	if err := h.Start(ctx); err != nil {
		return nil, fmt.Errorf("job dashboard: %w", err)
	}
	return h, nil
}

// stop stops the workers, waiting up to shutdownGrace for running jobs.
func (sys *system) stop() {
	if sys.stopJobsUI != nil {
		sys.stopJobsUI()
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := sys.engine.Stop(ctx); err != nil {
		sys.log.Warn("stop workers", "error", err)
	}
}

// shutdownGrace bounds how long a stopping process waits for in-flight
// requests, and then for running jobs, to finish.
const shutdownGrace = 10 * time.Second

// listen serves the API on ln until ctx is done, then shuts down gracefully.
func (sys *system) listen(ctx context.Context, ln net.Listener, tlsCfg *tls.Config) error {
	// Live streams never finish on their own: end them as shutdown starts,
	// or Shutdown would wait for them until its grace period runs out.
	return serveHTTP(ctx, ln, sys.api, tlsCfg, sys.engine.CloseStreams)
}

// serveHTTP serves h on ln (HTTPS when tlsCfg is set) until ctx is done. It
// then stops accepting connections, closes idle ones and waits up to
// shutdownGrace for the requests in flight to complete: a request accepted
// before the signal gets its response. onShutdown runs as shutdown starts.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, tlsCfg *tls.Config, onShutdown ...func()) error {
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	for _, f := range onShutdown {
		srv.RegisterOnShutdown(f)
	}
	errc := make(chan error, 1)
	go func() {
		if tlsCfg != nil {
			errc <- srv.ServeTLS(ln, "", "") // the certificate is in tlsCfg
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// tlsConfig loads the certificate and key of TEND_TLS_CERT_FILE and
// TEND_TLS_KEY_FILE; nil (plain HTTP) when neither is set. The files are read
// once: restart the process to pick up a renewed certificate.
func tlsConfig(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TEND_TLS_CERT_FILE, TEND_TLS_KEY_FILE: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}

func serve(ctx context.Context, env getenv, args []string, stdout, stderr io.Writer, withAPI bool) error {
	name, about := "serve", "Runs the API and the workers until interrupted (SIGINT or SIGTERM), then drains in-flight\n"+
		"requests and jobs. HTTPS when TEND_TLS_CERT_FILE and TEND_TLS_KEY_FILE are set."
	if !withAPI {
		name, about = "worker", "Runs the workers only (push deliveries and periodic jobs) until interrupted."
	}
	fs := newFlags(name, "[flags]", about, stdout, stderr)
	var addr, dbURL string
	if withAPI {
		fs.StringVar(&addr, "addr", "", "listen address (default: $TEND_ADDR, else 127.0.0.1:8080)")
	}
	fs.StringVar(&dbURL, "database-url", "", databaseURLUsage)
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	s, err := loadSettings(env)
	if err != nil {
		return err
	}
	s.Addr = cmp.Or(addr, s.Addr)
	s.DatabaseURL = cmp.Or(dbURL, s.DatabaseURL)
	tlsCfg, err := tlsConfig(s.TLSCertFile, s.TLSKeyFile)
	if err != nil {
		return err
	}
	log := newLogger(stderr, s.LogLevel)
	url, cleanup, err := resolveDatabase(ctx, s.DatabaseURL, "tend", false, log)
	if err != nil {
		return err
	}
	defer cleanup()
	pool, err := openPool(ctx, url, s.DBMaxConns)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := migrations.Check(ctx, pool); err != nil {
		return err
	}
	sys, err := startSystem(ctx, s, pool, log, systemOpts{withAPI: withAPI, senders: true})
	if err != nil {
		return err
	}
	defer sys.stop()
	if !withAPI {
		log.Info("workers running")
		<-ctx.Done()
		return nil
	}
	if addr := env("TEND_PPROF_ADDR"); addr != "" {
		go servePprof(ctx, addr, log)
	}
	stopDevices, err := startDevices(ctx, s.MQTT, sys.api, sys.engine, sys.reg, log)
	if err != nil {
		return err
	}
	defer stopDevices()
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	log.Info("serving", "addr", ln.Addr().String(), "tls", tlsCfg != nil)
	err = sys.listen(ctx, ln, tlsCfg)
	log.Info("stopped serving; stopping the workers")
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// servePprof exposes Go's profiler on a separate, opt-in listener
// (TEND_PPROF_ADDR), never on the API's. It also samples blocking (waits of
// 10 µs and more) and mutex contention (one event in 100), which the CPU
// profile does not show: /debug/pprof/block and /debug/pprof/mutex.
func servePprof(ctx context.Context, addr string, log *slog.Logger) {
	runtime.SetBlockProfileRate(int(10 * time.Microsecond))
	runtime.SetMutexProfileFraction(100)
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	log.Info("pprof listening", "addr", addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("pprof", "error", err)
	}
}

// checkKeys refuses to run without encryption keys once sealed messages or
// notes exist (they could be neither read nor re-sealed), and warns that
// messaging is off when there are neither keys nor sealed records.
func checkKeys(ctx context.Context, eng *engine.Engine, haveKeys bool, log *slog.Logger) error {
	if haveKeys {
		return nil
	}
	st, err := eng.Sealed(ctx)
	if err != nil {
		return err
	}
	if st.Exist {
		return errors.New("TEND_ENCRYPTION_KEYS is not set, but the database holds encrypted messages: " +
			"set it to the keys that sealed them (id:base64key[,id:base64key…]); refusing to start")
	}
	log.Warn("TEND_ENCRYPTION_KEYS is not set: messages and symptom reports are refused until it is")
	return nil
}
