package mqtt_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine"
)

// mosquitto finds one of Debian's mosquitto-clients programs: an MQTT
// client nobody here wrote. Missing, the test fails under CI (which
// installs the package) and skips elsewhere.
func mosquitto(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found: install the Debian package mosquitto-clients", name)
		}
		t.Skipf("%s not found (apt-get install mosquitto-clients)", name)
	}
	return path
}

// run runs a mosquitto client against the listener and returns its exit
// error and output.
func (w *world) run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	host, port, _ := net.SplitHostPort(w.mqtt.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, mosquitto(t, name), append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	return string(out), err
}

func TestMosquittoClients(t *testing.T) {
	w := newWorld(t, worldOpts{})
	ctx := context.Background()
	// A reading published with QoS 1 is stored and raises its alert.
	out, err := w.run(t, "mosquitto_pub", "-V", "mqttv5", "-q", "1", "-i", "cuff-mq", "-u", "device", "-P", w.device,
		"-t", "tend/v1/readings", "-m", crisis("mq:1"))
	if err != nil {
		t.Fatalf("mosquitto_pub: %v\n%s", err, out)
	}
	if rs := w.readings(t); len(rs) != 1 {
		t.Fatalf("%d readings, want 1", len(rs))
	}
	alerts, _, err := w.eng.ListAlerts(ctx, w.admin, engine.AlertFilter{PatientID: w.patientID})
	if err != nil || len(alerts) != 1 || alerts[0].RuleID != "bp-crisis" {
		t.Fatalf("alerts = %+v, %v", alerts, err)
	}
	// The same at MQTT 3.1.1: a duplicate.
	if out, err := w.run(t, "mosquitto_pub", "-V", "mqttv311", "-q", "1", "-i", "cuff-mq", "-u", "device", "-P", w.device,
		"-t", "tend/v1/readings", "-m", crisis("mq:1")); err != nil {
		t.Fatalf("mosquitto_pub 3.1.1: %v\n%s", err, out)
	}
	if rs := w.readings(t); len(rs) != 1 {
		t.Fatalf("%d readings after a duplicate, want 1", len(rs))
	}

	// A bad payload is refused with its reason: the PUBACK's reason code,
	// and the problem (naming the field) on the response topic.
	bad := `{"kind":"spo2","value":140,"unit":"%","observed_at":"2026-01-01T00:00:00Z"}`
	out, _ = w.run(t, "mosquitto_pub", "-V", "mqttv5", "-q", "1", "-i", "cuff-mq", "-u", "device", "-P", w.device,
		"-t", "tend/v1/readings", "-m", bad, "-d")
	if !strings.Contains(out, "Payload format invalid") || !strings.Contains(out, "value: ") || !strings.Contains(out, "RC:153") {
		t.Errorf("mosquitto_pub did not report the refusal:\n%s", out)
	}
	out, err = w.run(t, "mosquitto_rr", "-V", "mqttv5", "-q", "1", "-i", "cuff-mq", "-u", "device", "-P", w.device,
		"-t", "tend/v1/readings", "-e", "tend/v1/devices/cuff-mq/answers", "-m", bad, "-W", "10")
	if err != nil || !strings.Contains(out, `"status":422`) || !strings.Contains(out, `"field":"value"`) {
		t.Errorf("mosquitto_rr: %v\n%s", err, out)
	}
	if rs := w.readings(t); len(rs) != 1 {
		t.Fatalf("%d readings after a bad payload, want 1", len(rs))
	}

	// A revoked token is refused at CONNECT.
	toks, err := w.eng.ListTokens(ctx, w.admin, w.deviceID)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.eng.RevokeToken(ctx, w.admin, toks[0].ID); err != nil {
		t.Fatal(err)
	}
	out, err = w.run(t, "mosquitto_pub", "-V", "mqttv5", "-q", "1", "-i", "cuff-mq", "-u", "device", "-P", w.device,
		"-t", "tend/v1/readings", "-m", crisis("mq:2"))
	if err == nil || !strings.Contains(strings.ToLower(out), "bad user name or password") {
		t.Errorf("revoked token: %v\n%s", err, out)
	}
	if rs := w.readings(t); len(rs) != 1 {
		t.Fatalf("%d readings after a revoked token's publish, want 1", len(rs))
	}
}

// TestMosquittoTLS: MQTT over TLS (TEND_MQTT_TLS_CERT/_KEY).
func TestMosquittoTLS(t *testing.T) {
	dir := t.TempDir()
	cfg, caFile := selfSigned(t, dir)
	w := newWorld(t, worldOpts{tls: cfg})
	out, err := w.run(t, "mosquitto_pub", "--cafile", caFile, "-V", "mqttv5", "-q", "1", "-i", "cuff-tls", "-u", "device",
		"-P", w.device, "-t", "tend/v1/readings", "-m", crisis("tls:1"))
	if err != nil {
		t.Fatalf("mosquitto_pub over TLS: %v\n%s", err, out)
	}
	if rs := w.readings(t); len(rs) != 1 {
		t.Fatalf("%d readings, want 1", len(rs))
	}
}

// selfSigned makes a certificate for 127.0.0.1 and writes it (the CA
// file) to dir.
func selfSigned(t *testing.T, dir string) (*tls.Config, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, caFile
}

// TestMosquittoSubAsks: mosquitto_sub, connected with the device's token,
// receives the retake request a reading of its patient caused, and one that
// subscribes later receives it too; outside its own tree it is refused.
func TestMosquittoSubAsks(t *testing.T) {
	w := newWorld(t, worldOpts{})
	host, port, _ := net.SplitHostPort(w.mqtt.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sub := exec.CommandContext(ctx, mosquitto(t, "mosquitto_sub"), "-h", host, "-p", port, "-V", "mqttv5", "-q", "1",
		"-i", "hub-1", "-P", w.device, "-t", "tend/v1/devices/hub-1/#", "-C", "1", "-v")
	var out strings.Builder
	sub.Stdout = &out
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "mosquitto_sub to connect", func() bool { return w.metric(t, "tend_mqtt_connections") == 1 })
	time.Sleep(200 * time.Millisecond) // its SUBSCRIBE follows the CONNECT
	body := `{"kind":"heart_rate","value":140,"unit":"/min","observed_at":"` + time.Now().Add(-time.Minute).UTC().Format(time.RFC3339) + `"}`
	if out, err := w.run(t, "mosquitto_pub", "-V", "mqttv5", "-q", "1", "-i", "hub-2", "-P", w.device, "-t", "tend/v1/readings", "-m", body); err != nil {
		t.Fatalf("mosquitto_pub: %v\n%s", err, out)
	}
	if err := sub.Wait(); err != nil || !strings.HasPrefix(out.String(), "tend/v1/devices/hub-1/asks ") || !strings.Contains(out.String(), `"rule_id":"hr-high"`) {
		t.Fatalf("mosquitto_sub: %v %q", err, out.String())
	}
	// A device that was not connected when the request was made gets it
	// when it subscribes (as 3.1.1 too).
	o, err := w.run(t, "mosquitto_sub", "-V", "mqttv311", "-q", "1", "-i", "hub-4", "-u", "hub", "-P", w.device,
		"-t", "tend/v1/devices/hub-4/#", "-C", "1", "-W", "5", "-v")
	if err != nil || !strings.HasPrefix(o, "tend/v1/devices/hub-4/asks ") || !strings.Contains(o, `"rule_id":"hr-high"`) {
		t.Fatalf("mosquitto_sub after the request: %v %q", err, o)
	}
	o, err = w.run(t, "mosquitto_sub", "-V", "mqttv5", "-i", "hub-3", "-P", w.device, "-t", "tend/v1/devices/hub-1/#", "-W", "3")
	if !strings.Contains(o, "subscription requests were denied") {
		t.Errorf("subscribing to another client's tree: %v %q", err, o)
	}
}
