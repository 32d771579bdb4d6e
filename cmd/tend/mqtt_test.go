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
	s, err = loadSettings(envMap(map[string]string{"TEND_MQTT_BROKER": "mqtts://tend:secret@broker:8883",
		"TEND_MQTT_BROKER_CLIENT_ID": "tend-3"}))
	if err != nil || s.MQTT.Broker.Host != "broker:8883" || s.MQTT.Broker.User.Username() != "tend" || s.MQTT.BrokerClientID != "tend-3" {
		t.Fatalf("broker: %+v, %v", s.MQTT, err)
	}
	for name, env := range map[string]map[string]string{
		"cert without key":       {"TEND_MQTT_ADDR": ":0", "TEND_MQTT_TLS_CERT": "/c.pem"},
		"websocket without addr": {"TEND_MQTT_WS_ADDR": ":0"},
		"qos0 not a boolean":     {"TEND_MQTT_QOS0": "yes"},
		"broker without port":    {"TEND_MQTT_BROKER": "mqtt://broker"},
		"broker not mqtt":        {"TEND_MQTT_BROKER": "http://broker:1883"},
	} {
		if _, err := loadSettings(envMap(env)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
