package api_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/e2ee"
	"github.com/tendhealth/tend/engine"
)

// consoleE2EEResult is what api/console/test/e2ee.test.mjs reports.
type consoleE2EEResult struct {
	Fingerprint        string `json:"fingerprint"`
	SigningExtractable bool   `json:"signingExtractable"`
	WrapWorkers        int    `json:"wrapWorkers"`
	EncryptedState     string `json:"encryptedState"`
	Fingerprints       []struct {
		ID   string `json:"id"`
		Text string `json:"text"`
	} `json:"fingerprints"`
	EnvelopeAnswers []int    `json:"envelopeAnswers"`
	Refused         []string `json:"refused"`
	ShownTexts      []string `json:"shownTexts"`
	// Swap is what a swapped key did: the error shown, the devices marked,
	// the envelopes posted.
	Swap struct {
		Error   string `json:"error"`
		Marked  int    `json:"marked"`
		Answers []int  `json:"answers"`
	} `json:"swap"`
	// Lost is a browser without its keys: its notice, new fingerprint, and
	// what the earlier messages say.
	Lost struct {
		Notice      string   `json:"notice"`
		Fingerprint string   `json:"fingerprint"`
		Messages    []string `json:"messages"`
	} `json:"lost"`
	// PatientFile is the patient's encrypted attachment as the console
	// decrypted and saved it (base64url).
	PatientFile  e2ee.Bytes `json:"patientFile"`
	PatientName  string     `json:"patientName"`
	Problems     []string   `json:"problems"`
	RefusedCalls []string   `json:"refusedCalls"`
	Checks       struct {
		AxeRuns        int      `json:"axe_runs"`
		AxeViolations  []string `json:"axe_violations"`
		LayoutProblems []string `json:"layout_problems"`
	} `json:"checks"`
}

// TestConsoleE2EEInBrowser: a clinician in the console (Chromium) and the
// patient's device (Go's package e2ee, as an independent client) exchange
// end-to-end encrypted messages both ways in the patient's thread. The
// console generates and registers its keys (the signing key not
// extractable) and shows the fingerprint the server registered; it opens
// the patient's message, lists the patient device's fingerprint, and seals
// its reply, which the patient's device and the record key open — re-wrapped
// once after a 409, because the first keys it was given (by a stale
// server) lacked the patient's device. The database holds neither text. A
// forged signature, a replayed envelope and a swapped key (a compromised
// server, played by the script) are refused and said to be, and a browser
// that lost its keys says so plainly.
func TestConsoleE2EEInBrowser(t *testing.T) {
	pb := newPageBrowser(t, "console", "playwright-core", "axe-core")
	s, patient, record := newE2EESetup(t)
	phone := newE2EEClient(t, patient)
	var threads struct{ Items []struct{ ID string } }
	patient.do("GET", "/v1/threads", nil).decode(t, &threads)
	thread := threads.Items[0].ID
	swap, err := e2ee.GenerateDeviceKeys()
	if err != nil {
		t.Fatal(err)
	}
	const patientText, replyText = "Ankle swollen since Tuesday, wrapped in zinc-oxide gauze", "Raise it above your hip for twenty minutes"
	// The files each side attaches: the patient's photo (any bytes; the
	// server never sees them) and the console's leaflet.
	patientFile := append([]byte("\x89PNG\r\n\x1a\n"), []byte("ANKLE-PHOTO-BYTES "+strings.Repeat("px", 2000))...)
	const replyFile = "ELEVATION-LEAFLET: raise the ankle above the hip"

	run, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := pb.command(run, "e2ee.test.mjs", s.admin.base, "TOKEN="+s.clinician.token, "THREAD="+thread,
		"PATIENT_TEXT="+patientText, "REPLY_TEXT="+replyText, "SWAP_KEY="+b64url(swap.HPKEPublic), "REPLY_FILE="+replyFile)
	var res consoleE2EEResult
	driveBrowser(t, cmd, &res, func(line string, reply func(string)) bool {
		if fp, ok := strings.CutPrefix(line, "FINGERPRINT "); ok {
			checkRegisteredFingerprint(t, s.clinician, fp)
			if r := patient.do("POST", "/v1/threads/"+thread+"/encrypt", nil); r.status != http.StatusOK {
				t.Fatalf("encrypt: %d %s", r.status, r.body)
			}
			ref, _ := phone.upload(t, patient, thread, "ankle.png", "image/png", patientFile)
			if r := patient.do("POST", "/v1/threads/"+thread+"/envelopes", phone.seal(t, fetchKeys(t, patient, thread), patientText, ref)); r.status != http.StatusCreated {
				t.Fatalf("the patient's envelope: %d %s", r.status, r.body)
			}
			reply("PATIENT_WROTE")
			return true
		}
		if line == "SENT" {
			checkReplyOpens(t, s, patient, phone, record, thread, replyText, replyFile)
			reply("CHECKED")
			return true
		}
		return false
	})
	t.Logf("console: %+v", res)
	checkConsoleE2EE(t, res, phone)
	if !bytes.Equal(res.PatientFile, patientFile) || res.PatientName != "ankle.png" {
		t.Errorf("the console saved the patient's attachment as %q (%d bytes), want ankle.png's %d bytes", res.PatientName,
			len(res.PatientFile), len(patientFile))
	}
	checkOldDeviceRevoked(t, s.clinician, res.Fingerprint, res.Lost.Fingerprint)
	// The stale keys' 409, and the read mark the console moved to the last
	// message listed, which the script made up (the server knows no such id).
	want := []string{"POST /v1/threads/" + thread + "/envelopes 409", "POST /v1/threads/" + thread + "/read 422"}
	if !slices.Equal(res.RefusedCalls, want) {
		t.Errorf("the console's refused calls %q, want only %q", res.RefusedCalls, want)
	}
	if res.Lost.Fingerprint == res.Fingerprint || len(res.Lost.Fingerprint) != 79 {
		t.Errorf("after losing its keys the console shows %q, want new keys (not %q)", res.Lost.Fingerprint, res.Fingerprint)
	}
	for _, text := range []string{patientText, replyText, "This must never be sent", "ANKLE-PHOTO-BYTES", "ELEVATION-LEAFLET", "ankle.png"} {
		if where := databaseContains(t, s.pool, text); len(where) > 0 {
			t.Errorf("the database holds the plaintext %q in %v", text, where)
		}
	}
}

// newE2EESetup is a server with a record key (whose keys it returns) and a
// patient user.
func newE2EESetup(t *testing.T) (*setup, client, *e2ee.DeviceKeys) {
	t.Helper()
	record, err := e2ee.GenerateDeviceKeys()
	if err != nil {
		t.Fatal(err)
	}
	s := newSetupWith(t, engine.Config{RecordPublicKey: record.HPKEPublic})
	return s, s.admin.as(s.userToken(t, map[string]any{"name": "Sam Lee", "role": "patient", "patient_id": s.patientID})), record
}

// checkRegisteredFingerprint: fp is the fingerprint of a device c's user
// registered, as the server stores it and as Go computes it from the
// registered keys.
func checkRegisteredFingerprint(t *testing.T, c client, fp string) {
	t.Helper()
	var devs struct {
		Items []struct {
			HPKEPublicKey    e2ee.Bytes `json:"hpke_public_key"`
			SigningPublicKey e2ee.Bytes `json:"signing_public_key"`
			Fingerprint      string     `json:"fingerprint"`
		}
	}
	c.do("GET", "/v1/me/e2ee-devices", nil).decode(t, &devs)
	i := slices.IndexFunc(devs.Items, func(d struct {
		HPKEPublicKey    e2ee.Bytes `json:"hpke_public_key"`
		SigningPublicKey e2ee.Bytes `json:"signing_public_key"`
		Fingerprint      string     `json:"fingerprint"`
	}) bool {
		return d.Fingerprint == fp
	})
	if i < 0 {
		t.Fatalf("no registered device has the fingerprint %q the page shows", fp)
	}
	d := devs.Items[i]
	if want := e2ee.FormatFingerprint(e2ee.Fingerprint(d.HPKEPublicKey, d.SigningPublicKey)); fp != want || d.Fingerprint != want {
		t.Fatalf("the console shows the fingerprint %q; the registered keys' is %q (server: %q)", fp, want, d.Fingerprint)
	}
}

// checkReplyOpens: the clinician's one encrypted message opens to text for
// the patient's device and for the record key, with the signing key the
// clinician's device registered; its stored body is empty.
func checkReplyOpens(t *testing.T, s *setup, patient client, phone *e2eeClient, record *e2ee.DeviceKeys, thread, text, file string) {
	t.Helper()
	var devs struct {
		Items []struct {
			SigningPublicKey e2ee.Bytes `json:"signing_public_key"`
		}
	}
	s.clinician.do("GET", "/v1/me/e2ee-devices", nil).decode(t, &devs)
	var msgs struct {
		Items []struct {
			SenderRole string          `json:"sender_role"`
			Envelope   json.RawMessage `json:"envelope"`
		}
	}
	patient.do("GET", "/v1/threads/"+thread+"/messages", nil).decode(t, &msgs)
	var sent []json.RawMessage
	for _, m := range msgs.Items {
		if m.SenderRole != "patient" {
			sent = append(sent, m.Envelope)
		}
	}
	if len(sent) != 1 || len(devs.Items) != 1 {
		t.Fatalf("%d messages from the console, %d console devices; want 1 and 1", len(sent), len(devs.Items))
	}
	var env e2ee.Envelope
	if err := json.Unmarshal(sent[0], &env); err != nil {
		t.Fatal(err)
	}
	rid := hex.EncodeToString(e2ee.Fingerprint(record.HPKEPublic, nil)[:16])
	for id, key := range map[string][]byte{phone.id: phone.keys.HPKEPrivate, rid: record.HPKEPrivate} {
		pt, err := e2ee.Open(&env, e2ee.OpenParams{ThreadID: thread, RecipientID: id, PrivateKey: key,
			SenderKey: ed25519.PublicKey(devs.Items[0].SigningPublicKey)})
		if err != nil || string(pt) != text {
			t.Errorf("%s opened the console's envelope as %q, %v", id, pt, err)
		}
		c, err := e2ee.OpenContent(&env, e2ee.OpenParams{ThreadID: thread, RecipientID: id, PrivateKey: key,
			SenderKey: ed25519.PublicKey(devs.Items[0].SigningPublicKey)})
		if err != nil || len(c.Attachments) != 1 || c.Attachments[0].Name != "leaflet.txt" {
			t.Fatalf("%s: the console's envelope carries %+v, %v; want its leaflet.txt", id, c, err)
		}
		r := patient.do("GET", "/v1/attachments/"+c.Attachments[0].ID, nil)
		got, err := e2ee.DecryptFile(&env, c.Attachments[0], r.body)
		if err != nil || string(got) != file {
			t.Errorf("%s: the console's attachment decrypts to %q, %v", id, got, err)
		}
	}
}

// registeredDevice is what the device tests read of GET /v1/me/e2ee-devices.
type registeredDevice struct {
	Fingerprint string  `json:"fingerprint"`
	RevokedAt   *string `json:"revoked_at"`
}

// registeredDevices lists c's user's end-to-end encryption devices.
func registeredDevices(t *testing.T, c client) []registeredDevice {
	t.Helper()
	var devs struct{ Items []registeredDevice }
	c.do("GET", "/v1/me/e2ee-devices", nil).decode(t, &devs)
	return devs.Items
}

// currentFingerprint is the fingerprint of c's user's one current device.
func currentFingerprint(t *testing.T, c client) string {
	t.Helper()
	for _, d := range registeredDevices(t, c) {
		if d.RevokedAt == nil {
			return d.Fingerprint
		}
	}
	return ""
}

// checkOldDeviceRevoked: after the console lost its keys, its old device
// (fingerprint old) is revoked and the new one (fingerprint now) is the
// user's only current device.
func checkOldDeviceRevoked(t *testing.T, c client, old, now string) {
	t.Helper()
	var current []string
	oldRevoked := false
	for _, d := range registeredDevices(t, c) {
		if d.RevokedAt == nil {
			current = append(current, d.Fingerprint)
		} else if d.Fingerprint == old {
			oldRevoked = true
		}
	}
	if !oldRevoked || !slices.Equal(current, []string{now}) {
		t.Errorf("after losing its keys: old device revoked %v, current devices %q; want only %q", oldRevoked, current, now)
	}
}

// checkConsoleE2EE checks what the console showed.
func checkConsoleE2EE(t *testing.T, res consoleE2EEResult, phone *e2eeClient) {
	t.Helper()
	if res.SigningExtractable {
		t.Error("the console's Ed25519 signing key is extractable")
	}
	if res.WrapWorkers == 0 {
		t.Error("the console sealed without its key-wrapping workers (Web Workers refused by its policy?)")
	}
	if !strings.HasPrefix(res.EncryptedState, "End-to-end encrypted") {
		t.Errorf("the thread says %q", res.EncryptedState)
	}
	want := e2ee.FormatFingerprint(e2ee.Fingerprint(phone.keys.HPKEPublic, phone.keys.SigningPublic()))
	i := slices.IndexFunc(res.Fingerprints, func(f struct {
		ID   string `json:"id"`
		Text string `json:"text"`
	}) bool {
		return f.ID == phone.id
	})
	if i < 0 || !strings.Contains(res.Fingerprints[i].Text, want) || !strings.HasPrefix(res.Fingerprints[i].Text, "Patient's device") {
		t.Errorf("the thread's fingerprints %+v lack the patient device's %s", res.Fingerprints, want)
	}
	if !slices.Equal(res.EnvelopeAnswers, []int{http.StatusConflict, http.StatusCreated}) {
		t.Errorf("envelope answers %v, want a 409 (stale keys) then a 201 (re-wrapped)", res.EnvelopeAnswers)
	}
	if len(res.Refused) != 2 || !strings.Contains(res.Refused[0], "signature does not verify") || !strings.Contains(res.Refused[1], "replay") {
		t.Errorf("forged and replayed envelopes shown as %q", res.Refused)
	}
	if len(res.ShownTexts) != 2 {
		t.Errorf("texts shown %q: want only the two genuine messages", res.ShownTexts)
	}
	if !strings.Contains(res.Swap.Error, "changed since this browser first saw them") || res.Swap.Marked != 1 || len(res.Swap.Answers) != 0 {
		t.Errorf("a swapped key: %q, %d devices marked, envelopes posted %v", res.Swap.Error, res.Swap.Marked, res.Swap.Answers)
	}
	if !strings.Contains(res.Lost.Notice, "Older messages cannot be opened on this device") || len(res.Lost.Messages) != 2 ||
		!strings.Contains(res.Lost.Messages[0], "not encrypted for this browser's keys") {
		t.Errorf("lost keys: notice %q, messages %q", res.Lost.Notice, res.Lost.Messages)
	}
	if len(res.Problems) > 0 || len(res.Checks.AxeViolations) > 0 || len(res.Checks.LayoutProblems) > 0 || res.Checks.AxeRuns == 0 {
		t.Errorf("page problems %q, axe %q, layout %q", res.Problems, res.Checks.AxeViolations, res.Checks.LayoutProblems)
	}
}

// databaseContains names the tables of which a row's text (bytea as hex
// included) holds needle.
func databaseContains(t *testing.T, pool *pgxpool.Pool, needle string) []string {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM information_schema.tables
		WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	hexNeedle := hex.EncodeToString([]byte(needle))
	for _, tbl := range tables {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+tbl+` r WHERE strpos(r::text, $1) > 0 OR strpos(r::text, $2) > 0`,
			needle, hexNeedle).Scan(&n); err != nil {
			t.Fatalf("%s: %v", tbl, err)
		}
		if n > 0 {
			found = append(found, tbl)
		}
	}
	if len(tables) < 10 {
		t.Fatalf("scanned only %d tables", len(tables))
	}
	return found
}

// consoleAppResult is what api/console/test/e2ee-app.test.mjs reports: each
// page's fingerprint, the fingerprints each lists, the texts the app shows.
type consoleAppResult struct {
	// Fingerprint is the one each page shows for its own keys; Lists the
	// fingerprints each lists in the thread.
	Fingerprint struct{ App, Console string }   `json:"fingerprint"`
	Lists       struct{ App, Console []string } `json:"lists"`
	AppTexts    []string                        `json:"appTexts"`
	// WrapWorkers are the key-wrapping workers each page runs.
	WrapWorkers struct{ App, Console int } `json:"wrapWorkers"`
	// AppLost is the app after its keys were lost: its notice and what the
	// earlier messages say.
	AppLost struct {
		Notice  string   `json:"notice"`
		Refused []string `json:"refused"`
	} `json:"appLost"`
	// ConsoleGot and AppGot are the attachment each page decrypted and
	// saved: the app's photo in the console, the console's PDF in the app.
	ConsoleGot, AppGot struct {
		Name  string     `json:"name"`
		Bytes e2ee.Bytes `json:"bytes"`
	}
	Problems []string `json:"problems"`
	Checks   struct {
		AxeViolations []string `json:"axe_violations"`
	} `json:"checks"`
}

// TestE2EEConsoleAndAppInBrowser: a patient in the patient app and a
// clinician in the console exchange end-to-end encrypted messages both
// ways. Each page registers its own keys and shows their fingerprint, as
// registered; the app turns the thread encrypted once both have keys; each
// lists the other's fingerprint; the server stores only envelopes, and the
// database holds neither text.
func TestE2EEConsoleAndAppInBrowser(t *testing.T) {
	pb := newPageBrowser(t, "console", "playwright-core", "axe-core")
	s, patient, _ := newE2EESetup(t)
	const patientText, replyText = "My weight went up two kilos since Monday", "Take an extra furosemide tablet today"
	photo := append([]byte("\x89PNG\r\n\x1a\n"), []byte("SCALE-PHOTO "+strings.Repeat("\x00\xff", 600))...)
	plan := []byte("%PDF-1.7\nDIURETIC-PLAN: 40 mg furosemide tomorrow morning")
	run, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := pb.command(run, "e2ee-app.test.mjs", s.admin.base, "TOKEN_CLINICIAN="+s.clinician.token, "TOKEN_PATIENT="+patient.token,
		"PATIENT_TEXT="+patientText, "REPLY_TEXT="+replyText, "PATIENT_FILE="+b64url(photo), "REPLY_FILE="+b64url(plan))
	var res consoleAppResult
	driveBrowser(t, cmd, &res, func(string, func(string)) bool { return false })
	t.Logf("browser: %+v", res)
	checkRegisteredFingerprint(t, patient, res.Fingerprint.App)
	checkRegisteredFingerprint(t, s.clinician, res.Fingerprint.Console)
	if !slices.ContainsFunc(res.Lists.Console, func(l string) bool { return strings.Contains(l, res.Fingerprint.App) }) ||
		!slices.ContainsFunc(res.Lists.App, func(l string) bool { return strings.Contains(l, res.Fingerprint.Console) }) {
		t.Errorf("the console lists %q, the app %q: each must list the other's fingerprint", res.Lists.Console, res.Lists.App)
	}
	if !slices.Equal(res.AppTexts, []string{patientText, replyText}) {
		t.Errorf("the app shows %q", res.AppTexts)
	}
	if res.WrapWorkers.App == 0 || res.WrapWorkers.Console == 0 {
		t.Errorf("key-wrapping workers: %+v, want some in each page", res.WrapWorkers)
	}
	if len(res.Problems) > 0 || len(res.Checks.AxeViolations) > 0 {
		t.Errorf("problems %q, axe %q", res.Problems, res.Checks.AxeViolations)
	}
	if res.ConsoleGot.Name != "weight.png" || !bytes.Equal(res.ConsoleGot.Bytes, photo) ||
		res.AppGot.Name != "diuretic plan.pdf" || !bytes.Equal(res.AppGot.Bytes, plan) {
		t.Errorf("attachments: the console got %q (%d bytes), the app %q (%d bytes); want the identical files",
			res.ConsoleGot.Name, len(res.ConsoleGot.Bytes), res.AppGot.Name, len(res.AppGot.Bytes))
	}
	if !strings.Contains(res.AppLost.Notice, "Older messages cannot be opened on this device") || len(res.AppLost.Refused) != 2 {
		t.Errorf("the app after losing its keys: notice %q, messages %q", res.AppLost.Notice, res.AppLost.Refused)
	}
	checkOldDeviceRevoked(t, patient, res.Fingerprint.App, currentFingerprint(t, patient))
	var msgs struct{ Items []struct{ Kind, Body string } }
	var threads struct{ Items []struct{ ID string } }
	patient.do("GET", "/v1/threads", nil).decode(t, &threads)
	patient.do("GET", "/v1/threads/"+threads.Items[0].ID+"/messages", nil).decode(t, &msgs)
	if len(msgs.Items) != 2 || msgs.Items[0].Kind != "encrypted" || msgs.Items[1].Kind != "encrypted" || msgs.Items[0].Body != "" {
		t.Errorf("stored messages %+v, want two envelopes", msgs.Items)
	}
	for _, text := range []string{patientText, replyText, "SCALE-PHOTO", "DIURETIC-PLAN", "weight.png", "diuretic plan"} {
		if where := databaseContains(t, s.pool, text); len(where) > 0 {
			t.Errorf("the database holds the plaintext %q in %v", text, where)
		}
	}
}
