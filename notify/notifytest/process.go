package notifytest

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ProcessEnv is the environment variable StartProcess sets for the child it
// starts: a program (a test binary's TestMain) that finds it set runs Main
// instead of its usual work.
const ProcessEnv = "NOTIFYTEST_PROCESS"

// Info is what a fakes process tells its parent on start: each fake's URL
// and what a sender needs to talk to it.
type Info struct {
	// Control is the base URL of the process's control API.
	Control string `json:"control"`
	// FCM, APNs and WebPush are the fakes' base URLs.
	FCM     string `json:"fcm"`
	APNs    string `json:"apns"`
	WebPush string `json:"webpush"`
	// APNsKeyPEM, APNsKeyID, APNsTeamID and APNsTopic are the APNs fake's
	// credentials (see APNs); APNsCertPEM is its TLS certificate.
	APNsKeyPEM  []byte `json:"apns_key_pem"`
	APNsKeyID   string `json:"apns_key_id"`
	APNsTeamID  string `json:"apns_team_id"`
	APNsTopic   string `json:"apns_topic"`
	APNsCertPEM []byte `json:"apns_cert_pem"`
}

// Count is how many requests one fake accepted and refused.
type Count struct {
	Received int `json:"received"`
	Rejected int `json:"rejected"`
}

// Counts are the counts of every fake of a process, since it started, and
// the CPU time the process has used (ProcessCPU).
type Counts struct {
	FCM     Count         `json:"fcm"`
	APNs    Count         `json:"apns"`
	WebPush Count         `json:"webpush"`
	CPU     time.Duration `json:"cpu_ns"`
}

// Received is the requests all three fakes accepted.
func (c Counts) Received() int { return c.FCM.Received + c.APNs.Received + c.WebPush.Received }

// Rejected is the requests all three fakes refused.
func (c Counts) Rejected() int { return c.FCM.Rejected + c.APNs.Rejected + c.WebPush.Rejected }

// Main runs the three fakes in this process, for a parent that started it
// with StartProcess: it writes the Info as one JSON line to out, serves
// until in reaches its end (the parent closed it, or exited), and returns
// the process's exit code.
func Main(in io.Reader, out io.Writer) int {
	fcm, apns, push := NewFCM(), NewAPNs(nil), NewWebPush()
	defer fcm.Close()
	defer apns.Close()
	defer push.Close()
	control := httptest.NewServer(controlHandler(fcm, apns, push))
	defer control.Close()
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: apns.srv.Certificate().Raw})
	info := Info{Control: control.URL, FCM: fcm.URL, APNs: apns.URL, WebPush: push.URL,
		APNsKeyPEM: apns.KeyPEM, APNsKeyID: apns.KeyID, APNsTeamID: apns.TeamID, APNsTopic: apns.Topic, APNsCertPEM: cert}
	if err := json.NewEncoder(out).Encode(info); err != nil {
		fmt.Fprintln(os.Stderr, "notifytest:", err)
		return 1
	}
	_, _ = io.Copy(io.Discard, in)
	return 0
}

// controlHandler serves the control API of a fakes process.
func controlHandler(fcm *FCM, apns *APNs, push *WebPush) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /counts", func(w http.ResponseWriter, _ *http.Request) {
		c := Counts{
			FCM:     Count{Received: fcm.received.len(), Rejected: fcm.rejected.len()},
			APNs:    Count{Received: apns.received.len(), Rejected: apns.rejected.len()},
			WebPush: Count{Received: push.received.len(), Rejected: push.rejected.len()},
			CPU:     ProcessCPU(),
		}
		_ = json.NewEncoder(w).Encode(c)
	})
	mux.HandleFunc("POST /webpush/subscriptions", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n < 1 || n > 100_000 {
			http.Error(w, "n must be a count", http.StatusBadRequest)
			return
		}
		subs := make([]Subscription, n)
		for i := range subs {
			subs[i] = push.NewSubscription()
		}
		_ = json.NewEncoder(w).Encode(subs)
	})
	mux.HandleFunc("PUT /webpush/vapid-key", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<10))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		push.RequireVAPIDKey(strings.TrimSpace(string(b)))
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// Process is a parent's handle on fakes running in a process of their own
// (Main), so that their work — decrypting Web Push bodies, verifying
// signatures — does not run in, and is not counted against, the process
// that sends to them.
type Process struct {
	Info
	cmd   *exec.Cmd
	stdin io.WriteCloser
	hc    *http.Client
}

// StartProcess starts cmd, a program that calls Main when ProcessEnv is set
// (typically the running test binary, os.Args[0], whose TestMain does),
// and returns once its fakes listen. Close stops it.
func StartProcess(cmd *exec.Cmd) (*Process, error) {
	cmd.Env = append(cmd.Environ(), ProcessEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("notifytest: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("notifytest: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("notifytest: start fakes process: %w", err)
	}
	p := &Process{cmd: cmd, stdin: stdin, hc: &http.Client{Timeout: 30 * time.Second}}
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &p.Info)
	}
	if err != nil {
		_ = p.Close()
		return nil, fmt.Errorf("notifytest: fakes process did not start: %w", err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return p, nil
}

// Close stops the process and waits for it to exit.
func (p *Process) Close() error {
	_ = p.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		return errors.New("notifytest: fakes process did not exit; killed")
	}
}

// APNsClient returns an HTTP/2 client that trusts the APNs fake's
// certificate.
func (p *Process) APNsClient() (*http.Client, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(p.APNsCertPEM) {
		return nil, errors.New("notifytest: APNs fake certificate is not PEM")
	}
	var h2 http.Protocols
	h2.SetHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &h2, TLSClientConfig: &tls.Config{RootCAs: roots}}}, nil
}

// NewSubscriptions creates n Web Push subscriptions on the process's push
// service.
func (p *Process) NewSubscriptions(ctx context.Context, n int) ([]Subscription, error) {
	var subs []Subscription
	err := p.call(ctx, http.MethodPost, "/webpush/subscriptions?n="+strconv.Itoa(n), "", &subs)
	return subs, err
}

// RequireVAPIDKey makes the process's push service accept only messages
// signed with publicKey (see WebPush.RequireVAPIDKey).
func (p *Process) RequireVAPIDKey(ctx context.Context, publicKey string) error {
	return p.call(ctx, http.MethodPut, "/webpush/vapid-key", publicKey, nil)
}

// Counts returns what each fake has accepted and refused so far.
func (p *Process) Counts(ctx context.Context) (Counts, error) {
	var c Counts
	err := p.call(ctx, http.MethodGet, "/counts", "", &c)
	return c, err
}

// call makes one control request and decodes its JSON answer into out.
func (p *Process) call(ctx context.Context, method, path, body string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, p.Control+path, strings.NewReader(body))
	if err != nil {
		return fmt.Errorf("notifytest: %w", err)
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return fmt.Errorf("notifytest: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return fmt.Errorf("notifytest: %s %s: %s: %s", method, path, resp.Status, b)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("notifytest: %s %s: %w", method, path, err)
	}
	return nil
}
