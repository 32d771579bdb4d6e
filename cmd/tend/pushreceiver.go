package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/tendhealth/tend/notify/notifytest"
)

// pushReceiver runs a local Web Push service, standing in for a browser, for
// trying Tend out: it writes a subscription a client can register with
// POST /v1/me/devices, and prints every push it receives, decrypted, until
// interrupted. The server must have VAPID keys and allow 127.0.0.1 as a push
// host (TEND_WEBPUSH_ALLOWED_HOSTS).
func pushReceiver(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("push-receiver", "[flags]", "Runs a local Web Push service that stands in for a browser: writes a subscription to register\n"+
		"with POST /v1/me/devices and prints each push it receives, decrypted. For trying Tend out; the\n"+
		"server needs TEND_VAPID_* keys and TEND_WEBPUSH_ALLOWED_HOSTS=127.0.0.1.", stdout, stderr)
	file := fs.String("subscription", "", "write the subscription JSON ({endpoint, keys: {p256dh, auth}}) to this file (default: print it)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	svc := notifytest.NewWebPush()
	defer svc.Close()
	sub := svc.NewSubscription()
	b, err := json.Marshal(map[string]any{"endpoint": sub.Endpoint, "keys": map[string]string{"p256dh": sub.P256dh, "auth": sub.Auth}})
	if err != nil {
		return err
	}
	var mu sync.Mutex
	svc.OnReceive(func(r notifytest.WebPushRequest) {
		var p struct {
			Type    string `json:"type"`
			Urgency string `json:"urgency"`
			Title   string `json:"title"`
		}
		_ = json.Unmarshal(r.Payload, &p)
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(stdout, "push received: %s %s %q (Urgency: %s, TTL: %ss)\n", p.Urgency, p.Type, p.Title,
			r.Header.Get("Urgency"), r.Header.Get("TTL"))
	})
	if *file == "" {
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		// Written whole, then renamed: a reader never sees half a file.
		tmp := filepath.Join(filepath.Dir(*file), "."+filepath.Base(*file)+".tmp")
		if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, *file); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "push-receiver: listening at %s; Ctrl-C stops\n", svc.URL)
	<-ctx.Done()
	return nil
}
