package mqtt

import (
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the listener's Prometheus collectors (tend_mqtt_*).
type metrics struct {
	connections prometheus.Gauge
	connects    *prometheus.CounterVec
	publishes   *prometheus.CounterVec
	ackLatency  prometheus.Histogram
	revoked     prometheus.Counter
	asks        prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tend_mqtt_connections", Help: "Open MQTT connections."}),
		connects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_mqtt_connects_total", Help: "MQTT CONNECTs by outcome (accepted, bad_token, not_authorized, client_id, unavailable)."},
			[]string{"outcome"}),
		publishes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_mqtt_publishes_total",
			Help: "MQTT publishes by topic (readings, symptoms, other) and outcome (accepted, duplicate, invalid, " +
				"not_authorized, rate_limited, too_large, qos0_refused, unavailable, failed)."},
			[]string{"topic", "outcome"}),
		ackLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tend_mqtt_ack_seconds", Help: "Time from a QoS 1 or 2 publish's arrival to its acknowledgement (after commit).",
			Buckets: []float64{.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5}}),
		revoked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tend_mqtt_revoked_total", Help: "MQTT connections closed because their token was revoked or expired, or their user disabled."}),
		asks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tend_mqtt_asks_total", Help: "Retake request messages published to devices on tend/v1/devices/{client}/asks."}),
	}
	for _, c := range []prometheus.Collector{m.connections, m.connects, m.publishes, m.ackLatency, m.revoked, m.asks} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// outcomeFor names a refused CONNECT's outcome.
func outcomeFor(code packets.Code) string {
	switch code.Code {
	case packets.ErrBadUsernameOrPassword.Code:
		return "bad_token"
	case packets.ErrNotAuthorized.Code:
		return "not_authorized"
	case packets.ErrClientIdentifierNotValid.Code:
		return "client_id"
	}
	return "unavailable"
}

// topicLabel bounds the topic label to the topics Tend serves.
func topicLabel(topic string) string {
	switch topic {
	case TopicReadings:
		return "readings"
	case TopicSymptoms:
		return "symptoms"
	}
	return "other"
}
