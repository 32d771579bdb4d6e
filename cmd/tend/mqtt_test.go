package main

import "testing"

func TestMQTTSettings(t *testing.T) {
	s, err := loadSettings(envMap(nil))
	if err != nil || s.MQTT.Addr != "" || s.MQTT.QoS0 {
		t.Fatalf("defaults: %+v, %v; want MQTT off, QoS 0 refused", s.MQTT, err)
	}
	s, err = loadSettings(envMap(map[string]string{"TEND_MQTT_ADDR": "127.0.0.1:0", "TEND_MQTT_QOS0": "true",
		"TEND_MQTT_WS_ADDR": "127.0.0.1:0"}))
	if err != nil || !s.MQTT.QoS0 || s.MQTT.WSAddr == "" {
		t.Fatalf("%+v, %v", s.MQTT, err)
	}
	for name, env := range map[string]map[string]string{
		"cert without key":       {"TEND_MQTT_ADDR": ":0", "TEND_MQTT_TLS_CERT": "/c.pem"},
		"websocket without addr": {"TEND_MQTT_WS_ADDR": ":0"},
		"qos0 not a boolean":     {"TEND_MQTT_QOS0": "yes"},
	} {
		if _, err := loadSettings(envMap(env)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
