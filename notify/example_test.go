package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"

	"github.com/tendhealth/tend/notify"
	"github.com/tendhealth/tend/notify/apns"
	"github.com/tendhealth/tend/notify/fcm"
	"github.com/tendhealth/tend/notify/notifytest"
	"github.com/tendhealth/tend/notify/webpush"
)

// Example_fakeProviders wires the three senders to the fake providers, as
// `tend demo` does, and prints each delivery as the fake receives it.
func Example_fakeProviders() {
	ctx := context.Background()

	push := notifytest.NewWebPush()
	defer push.Close()
	fcmFake := notifytest.NewFCM()
	defer fcmFake.Close()
	apnsFake := notifytest.NewAPNs(nil)
	defer apnsFake.Close()

	push.OnReceive(func(r notifytest.WebPushRequest) {
		var p struct{ Title, Urgency string }
		_ = json.Unmarshal(r.Payload, &p)
		fmt.Printf("webpush: %q Urgency=%s TTL=%s\n", p.Title, r.Header.Get("Urgency"), r.Header.Get("TTL"))
	})
	fcmFake.OnReceive(func(r notifytest.FCMRequest) {
		fmt.Printf("fcm: %q priority=%s channel=%s\n", r.Message.Notification.Title, r.Message.Android.Priority, r.Message.Android.Notification.ChannelID)
	})
	apnsFake.OnReceive(func(r notifytest.APNsRequest) {
		fmt.Printf("apns: apns-priority=%s push-type=%s\n", r.Header.Get("apns-priority"), r.Header.Get("apns-push-type"))
	})

	pub, priv, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		log.Fatal(err)
	}
	wp, err := webpush.New(webpush.Config{PublicKey: pub, PrivateKey: priv, Subject: "mailto:demo@tend.example"})
	if err != nil {
		log.Fatal(err)
	}
	// No credentials file: requests carry no OAuth token, which the fake accepts.
	fc, err := fcm.New(ctx, fcm.Config{Endpoint: fcmFake.URL, ProjectID: "tend-demo"})
	if err != nil {
		log.Fatal(err)
	}
	ap, err := apns.New(apns.Config{
		Key: apnsFake.KeyPEM, KeyID: apnsFake.KeyID, TeamID: apnsFake.TeamID, Topic: apnsFake.Topic,
		Endpoint: apnsFake.URL, HTTPClient: apnsFake.Client(),
	})
	if err != nil {
		log.Fatal(err)
	}
	senders := notify.Senders{notify.WebPush: wp, notify.FCM: fc, notify.APNs: ap}

	devices := []notify.Device{
		push.NewSubscription().Device(),
		{Platform: notify.FCM, Token: "demo-registration-token"},
		{Platform: notify.APNs, Token: "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"},
	}
	m := notify.Message{
		ID: "5f0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f", Type: "alert",
		Title: "New critical alert", Body: "Open Tend to review it", Urgency: notify.Critical,
		CollapseID: "0191e6a2-7b3c-7def-8a12-3456789abcde",
		Data:       map[string]string{"alert_id": "0191e6a2-7b3c-7def-8a12-3456789abcde"},
	}
	for _, d := range devices {
		res, err := senders.Send(ctx, d, m)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("  status", res.Status)
	}

	// A scripted failure: the subscription is gone.
	sub := push.NewSubscription()
	push.Script(sub.Endpoint, notifytest.Response{Status: 410})
	_, err = senders.Send(ctx, sub.Device(), m)
	fmt.Println("  ", notify.Classify(err).Kind)

	// Output:
	// webpush: "New critical alert" Urgency=high TTL=3600
	//   status 201
	// fcm: "New critical alert" priority=high channel=tend_critical
	//   status 200
	// apns: apns-priority=10 push-type=alert
	//   status 200
	// webpush: "New critical alert" Urgency=high TTL=3600
	//    unregistered
}
