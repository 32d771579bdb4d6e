package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/url"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/api/mqtt"
	"github.com/tendhealth/tend/engine"
)

// mqttSettings configure the MQTT listener for devices (docs/mqtt.md).
type mqttSettings struct {
	Addr     string // TEND_MQTT_ADDR; empty: no MQTT listener
	WSAddr   string // TEND_MQTT_WS_ADDR: MQTT over WebSocket too
	CertFile string // TEND_MQTT_TLS_CERT
	KeyFile  string // TEND_MQTT_TLS_KEY
	QoS0     bool   // TEND_MQTT_QOS0=true accepts QoS 0 publishes (may be lost)
	// Broker (TEND_MQTT_BROKER, mqtt:// or mqtts://[user:password@]host:port)
	// makes Tend a client of an existing broker (broker-cluster mode).
	Broker *url.URL
	// BrokerClientID (TEND_MQTT_BROKER_CLIENT_ID) is this process's client
	// identifier at the broker: unique and stable across restarts.
	BrokerClientID string
}

func loadMQTTSettings(env getenv) (mqttSettings, error) {
	m := mqttSettings{Addr: env("TEND_MQTT_ADDR"), WSAddr: env("TEND_MQTT_WS_ADDR"),
		CertFile: env("TEND_MQTT_TLS_CERT"), KeyFile: env("TEND_MQTT_TLS_KEY")}
	if (m.CertFile == "") != (m.KeyFile == "") {
		return m, fmt.Errorf("TEND_MQTT_TLS_CERT and TEND_MQTT_TLS_KEY: set both (MQTT over TLS) or neither")
	}
	if m.WSAddr != "" && m.Addr == "" {
		return m, fmt.Errorf("TEND_MQTT_WS_ADDR needs TEND_MQTT_ADDR")
	}
	if v := env("TEND_MQTT_BROKER"); v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "mqtt" && u.Scheme != "mqtts") || u.Port() == "" {
			return m, fmt.Errorf("TEND_MQTT_BROKER: want mqtt://[user:password@]host:port or mqtts://…")
		}
		m.Broker = u
	}
	m.BrokerClientID = env("TEND_MQTT_BROKER_CLIENT_ID")
	if m.BrokerClientID == "" {
		host, _ := os.Hostname()
		m.BrokerClientID = "tend-" + host
	}
	switch v := env("TEND_MQTT_QOS0"); v {
	case "", "false":
	case "true":
		m.QoS0 = true
	default:
		return m, fmt.Errorf("TEND_MQTT_QOS0: %q is not true or false", v)
	}
	return m, nil
}

// startMQTT starts the MQTT listener when TEND_MQTT_ADDR is set (nil
// otherwise); it stops when ctx ends, or with Close.
func startMQTT(ctx context.Context, m mqttSettings, srv *api.Server, eng *engine.Engine, reg prometheus.Registerer,
	log *slog.Logger) (*mqtt.Listener, error) {
	if m.Addr == "" {
		return nil, nil
	}
	var tlsCfg *tls.Config
	if m.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(m.CertFile, m.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("TEND_MQTT_TLS_CERT, TEND_MQTT_TLS_KEY: %w", err)
		}
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	l, err := mqtt.New(mqtt.Config{Addr: m.Addr, WebSocketAddr: m.WSAddr, TLS: tlsCfg, API: srv, Identity: eng,
		Presence: eng, Logger: log, Registerer: reg, AcceptQoS0: m.QoS0})
	if err != nil {
		return nil, err
	}
	if err := l.Start(ctx); err != nil {
		return nil, err
	}
	log.Info("mqtt listening", "addr", l.Addr(), "tls", tlsCfg != nil, "websocket", l.WebSocketAddr(), "qos0", m.QoS0)
	return l, nil
}

// startDevices starts what TEND_MQTT_* turn on — the MQTT listener, the
// broker client, both or neither — and returns what stops them.
func startDevices(ctx context.Context, m mqttSettings, srv *api.Server, eng *engine.Engine, reg prometheus.Registerer,
	log *slog.Logger) (func(), error) {
	ml, err := startMQTT(ctx, m, srv, eng, reg, log)
	if err != nil {
		return nil, err
	}
	bc, err := startBroker(ctx, m, srv, eng, reg, log)
	if err != nil {
		if ml != nil {
			ml.Close()
		}
		return nil, err
	}
	return func() {
		if bc != nil {
			bc.Close()
		}
		if ml != nil {
			ml.Close()
		}
	}, nil
}

// startBroker joins the broker of TEND_MQTT_BROKER as a client with a
// shared subscription (nil when unset); it stops when ctx ends, or with
// Close.
func startBroker(ctx context.Context, m mqttSettings, srv *api.Server, eng *engine.Engine, reg prometheus.Registerer,
	log *slog.Logger) (*mqtt.BrokerClient, error) {
	if m.Broker == nil {
		return nil, nil
	}
	cfg := mqtt.BrokerConfig{Addr: m.Broker.Host, ClientID: m.BrokerClientID, API: srv, Identity: eng, Logger: log, Registerer: reg}
	if m.Broker.Scheme == "mqtts" {
		cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: m.Broker.Hostname()}
	}
	if u := m.Broker.User; u != nil {
		cfg.Username = u.Username()
		cfg.Password, _ = u.Password()
	}
	bc, err := mqtt.NewBrokerClient(cfg)
	if err != nil {
		return nil, err
	}
	if err := bc.Start(ctx); err != nil {
		return nil, err
	}
	log.Info("mqtt broker client subscribed", "broker", m.Broker.Host, "client_id", m.BrokerClientID)
	return bc, nil
}
