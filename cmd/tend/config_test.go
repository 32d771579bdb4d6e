package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tendhealth/tend/notify"
	"github.com/tendhealth/tend/notify/notifytest"
	"github.com/tendhealth/tend/notify/webpush"
)

func envMap(m map[string]string) getenv { return func(k string) string { return m[k] } }

func TestDeliverySettings(t *testing.T) {
	s, err := loadSettings(envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if s.NotifyWorkers != 200 || s.FetchCooldown != 10*time.Millisecond {
		t.Errorf("defaults: %d workers, cooldown %s; want 200 and 10ms", s.NotifyWorkers, s.FetchCooldown)
	}
	s, err = loadSettings(envMap(map[string]string{"TEND_NOTIFY_WORKERS": "50", "TEND_FETCH_COOLDOWN": "25ms"}))
	if err != nil || s.NotifyWorkers != 50 || s.FetchCooldown != 25*time.Millisecond {
		t.Errorf("overrides: %+v, %v", s, err)
	}
	for _, bad := range []string{"soon", "0s", "500us"} {
		if _, err := loadSettings(envMap(map[string]string{"TEND_FETCH_COOLDOWN": bad})); err == nil {
			t.Errorf("TEND_FETCH_COOLDOWN=%q accepted", bad)
		}
	}
}

// TestSendersFromEnvironment: each provider is on exactly when its
// variables are set (README, Configuration), endpoint overrides included.
func TestSendersFromEnvironment(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	none, err := settings{}.senders(ctx, log)
	if err != nil || len(none) != 0 {
		t.Fatalf("no configuration: %v, %v; want no sender", none, err)
	}

	fake := notifytest.NewAPNs(nil)
	defer fake.Close()
	keyFile := filepath.Join(t.TempDir(), "AuthKey.p8")
	if err := os.WriteFile(keyFile, fake.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pub, priv, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	s, err := loadSettings(envMap(map[string]string{
		"TEND_FCM_ENDPOINT": "http://127.0.0.1:9/v1", "TEND_FCM_PROJECT_ID": "tend-test",
		"TEND_APNS_KEY_FILE": keyFile, "TEND_APNS_KEY_ID": fake.KeyID, "TEND_APNS_TEAM_ID": fake.TeamID,
		"TEND_APNS_TOPIC": fake.Topic, "TEND_APNS_ENDPOINT": fake.URL,
		"TEND_VAPID_PUBLIC_KEY": pub, "TEND_VAPID_PRIVATE_KEY": priv,
	}))
	if err != nil {
		t.Fatal(err)
	}
	all, err := s.senders(ctx, log)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []notify.Platform{notify.FCM, notify.APNs, notify.WebPush} {
		if all[p] == nil {
			t.Errorf("%s not configured", p)
		}
	}
	s.APNsKeyID = ""
	if _, err := s.senders(ctx, log); err == nil {
		t.Error("an APNs key without a key id was accepted")
	}
}
