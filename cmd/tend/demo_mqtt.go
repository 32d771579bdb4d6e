package main

import (
	"context"
	"net"

	"github.com/tendhealth/tend/api/mqtt"
)

// demoMQTT turns the MQTT listener on for the demo (TEND_MQTT_ADDR, else a
// free loopback port) and prints how a device publishes a reading to it,
// with the token of the last simulated patient's device.
func demoMQTT(ctx context.Context, s settings, sys *system, out *printer, sims []*simPatient) (*mqtt.Listener, error) {
	s.MQTT.Addr = orDefault(s.MQTT.Addr, "127.0.0.1:0")
	l, err := startMQTT(ctx, s.MQTT, sys.api, sys.engine, sys.reg, sys.log)
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(l.Addr())
	out.printf("mqtt       %s   (devices publish readings over MQTT 5 or 3.1.1; acknowledged after commit)", l.Addr())
	if len(sims) > 0 {
		p := sims[len(sims)-1]
		out.printf("           export DEVICE_TOKEN=%s   (%s's pulse oximeter)", p.token, p.name)
		out.printf("           mosquitto_pub -p %s -V mqttv5 -q 1 -i demo-oximeter -P $DEVICE_TOKEN -t tend/v1/readings \\", port)
		out.printf("             -m '{\"kind\":\"spo2\",\"value\":97,\"unit\":\"%%\",\"observed_at\":\"'$(date -u +%%FT%%TZ)'\"}'")
	}
	return l, nil
}
