package main

import (
	"encoding/json"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/tendhealth/tend/notify/notifytest"
)

// pushLog records every push the harness's Web Push service receives: when
// each alert was first pushed and every receipt of each notification (a
// notification received twice is a duplicate push: at-least-once).
type pushLog struct {
	svc *notifytest.WebPush
	sub notifytest.Subscription

	mu       sync.Mutex
	first    map[string]time.Time   // alert id → first receipt
	receipts map[string][]time.Time // notification id → receipts
}

// newPushLog starts a Web Push service that answers after a random delay of
// up to maxDelay, so that pushes are in flight when a process is killed.
func newPushLog(maxDelay time.Duration) *pushLog {
	l := &pushLog{svc: notifytest.NewWebPush(), first: map[string]time.Time{}, receipts: map[string][]time.Time{}}
	l.sub = l.svc.NewSubscription()
	l.svc.OnReceive(func(r notifytest.WebPushRequest) {
		var p struct {
			Data map[string]string `json:"data"`
		}
		_ = json.Unmarshal(r.Payload, &p)
		l.mu.Lock()
		if a := p.Data["alert_id"]; a != "" {
			if _, ok := l.first[a]; !ok {
				l.first[a] = r.Time
			}
		}
		if n := p.Data["notification_id"]; n != "" {
			l.receipts[n] = append(l.receipts[n], r.Time)
		}
		l.mu.Unlock()
		if maxDelay > 0 {
			time.Sleep(rand.N(maxDelay))
		}
	})
	return l
}

func (l *pushLog) close() { l.svc.Close() }

// firstPush is when alert was first pushed (ok false: never).
func (l *pushLog) firstPush(alert string) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.first[alert]
	return t, ok
}

// counts is the number of receipts, of notifications, and of notifications
// received more than once.
func (l *pushLog) counts() (receipts, notifications, duplicated int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ts := range l.receipts {
		receipts += len(ts)
		if len(ts) > 1 {
			duplicated++
		}
	}
	return receipts, len(l.receipts), duplicated
}

// resends are the second and later receipts of every notification.
func (l *pushLog) resends() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []time.Time
	for _, ts := range l.receipts {
		if len(ts) > 1 {
			out = append(out, ts[1:]...)
		}
	}
	return out
}
