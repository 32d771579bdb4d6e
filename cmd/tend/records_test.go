package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/e2ee"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// tend records keygen writes a record key that the server is configured
// with; tend records export opens a patient's encrypted conversation with it;
// the device key registrations are sealed into the audit chain that tend
// audit verify walks.
func TestRecordsCommands(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	file := filepath.Join(t.TempDir(), "record.json")
	var out, errOut bytes.Buffer
	if err := runEnv(ctx, envMap(nil), []string{"records", "keygen", "--out", file}, &out, &errOut); err != nil {
		t.Fatalf("keygen: %v\n%s", err, errOut.String())
	}
	pub, ok := strings.CutPrefix(strings.TrimSpace(out.String()), "TEND_RECORD_PUBLIC_KEY=")
	if !ok {
		t.Fatalf("keygen printed %q", out.String())
	}
	if err := runEnv(ctx, envMap(nil), []string{"records", "keygen", "--out", file}, io.Discard, io.Discard); err == nil {
		t.Fatal("keygen overwrote an existing key file")
	}
	db := enginetest.NewDatabase(t)
	env := envMap(map[string]string{"TEND_DATABASE_URL": db, "TEND_ENCRYPTION_KEYS": enginetest.NewKey(t, "k1"),
		"TEND_RECORD_PUBLIC_KEY": pub})
	if err := runEnv(ctx, env, []string{"migrate", "up"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	eng, done, err := adminEngine(ctx, env, io.Discard, db)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	patient, thread := encryptedConversation(t, eng, "the rash is spreading")
	out.Reset()
	if err := runEnv(ctx, env, []string{"records", "export", "--record-key", file, "--patient", patient}, &out, &errOut); err != nil {
		t.Fatalf("export: %v\n%s", err, errOut.String())
	}
	sc := bufio.NewScanner(&out)
	var lines []exported
	for sc.Scan() {
		var l exported
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	if len(lines) != 1 || lines[0].Text == nil || *lines[0].Text != "the rash is spreading" || lines[0].ThreadID.String() != thread {
		t.Fatalf("export printed %s", out.String())
	}
	if a := lines[0].Attachments; len(a) != 1 || a[0].Name != "rash.png" || a[0].Type != "image/png" || string(a[0].Data) != exportedPhoto {
		t.Fatalf("the export's attachments: %+v", lines[0].Attachments)
	}
	// tend patient export writes the patient's whole record; the encrypted
	// message is in it by its metadata only.
	zipFile := filepath.Join(t.TempDir(), "export.zip")
	if err := runEnv(ctx, env, []string{"patient", "export", "--patient", patient, "--out", zipFile}, io.Discard, &errOut); err != nil {
		t.Fatalf("patient export: %v\n%s", err, errOut.String())
	}
	zr, err := zip.OpenReader(zipFile)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var bundle []byte
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if bytes.Contains(b, []byte("the rash is spreading")) || bytes.Contains(b, []byte(exportedPhoto)) || bytes.Contains(b, []byte("rash.png")) {
			t.Errorf("the export's %s holds an end-to-end encrypted message's text", f.Name)
		}
		if f.Name == "patient-bundle.json" {
			bundle = b
		}
	}
	if !bytes.Contains(bundle, []byte(`"resourceType":"Communication"`)) || !bytes.Contains(bundle, []byte("end-to-end encrypted")) ||
		!bytes.Contains(bundle, []byte("http://localhost:8080/fhir/r4/Patient/"+patient)) {
		t.Errorf("the export's bundle: %.500s", bundle)
	}
	if err := runEnv(ctx, env, []string{"patient", "export", "--patient", patient, "--out", zipFile}, io.Discard, io.Discard); err == nil {
		t.Error("patient export overwrote an existing file")
	}
	// The key registrations are in the chain tend audit verify walks.
	if _, err := eng.SealAudit(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := runEnv(ctx, env, []string{"audit", "verify"}, &out, &errOut); err != nil || !strings.HasPrefix(out.String(), "ok: ") {
		t.Fatalf("audit verify: %v %s", err, out.String())
	}
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var chained int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM audit_entries e JOIN audit_chain c ON c.entry_id = e.id WHERE action = 'e2ee_device.register'
		AND detail ? 'fingerprint'`).Scan(&chained); err != nil || chained != 2 {
		t.Fatalf("chained key registrations: %d, %v", chained, err)
	}
	// tend patient restrict needs a reason (or --lift), restricts and lifts:
	// the flag the API shows follows.
	restricted := func() bool {
		t.Helper()
		var r bool
		if err := conn.QueryRow(ctx, `SELECT restricted_at IS NOT NULL FROM patients WHERE id = $1`, patient).Scan(&r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, args := range [][]string{{"--patient", patient}, {"--patient", patient, "--reason", "x", "--lift"}, {"--patient", "nope", "--lift"}} {
		if err := runEnv(ctx, env, append([]string{"patient", "restrict"}, args...), io.Discard, io.Discard); err == nil {
			t.Errorf("patient restrict %v ran", args)
		}
	}
	out.Reset()
	if err := runEnv(ctx, env, []string{"patient", "restrict", "--patient", patient, "--reason", "objection, article 21"}, &out, &errOut); err != nil ||
		strings.TrimSpace(out.String()) != "restricted: true" || !restricted() {
		t.Fatalf("patient restrict: %v %q %s", err, out.String(), errOut.String())
	}
	out.Reset()
	if err := runEnv(ctx, env, []string{"patient", "restrict", "--patient", patient, "--lift"}, &out, &errOut); err != nil ||
		strings.TrimSpace(out.String()) != "restricted: false" || restricted() {
		t.Fatalf("patient restrict --lift: %v %q %s", err, out.String(), errOut.String())
	}
	// tend patient erase needs a reason, erases once, and the chain still
	// verifies.
	if err := runEnv(ctx, env, []string{"patient", "erase", "--patient", patient}, io.Discard, io.Discard); err == nil {
		t.Error("patient erase without --reason ran")
	}
	out.Reset()
	if err := runEnv(ctx, env, []string{"patient", "erase", "--patient", patient, "--reason", "written request"}, &out, &errOut); err != nil {
		t.Fatalf("patient erase: %v\n%s", err, errOut.String())
	}
	var erased struct {
		PatientID string `json:"patient_id"`
		Messages  int    `json:"messages"`
	}
	if err := json.Unmarshal(out.Bytes(), &erased); err != nil || erased.PatientID != patient || erased.Messages != 1 {
		t.Fatalf("patient erase printed %s (%v)", out.String(), err)
	}
	if err := runEnv(ctx, env, []string{"patient", "erase", "--patient", patient, "--reason", "again"}, io.Discard, io.Discard); err == nil {
		t.Error("a second erasure succeeded")
	}
	if _, err := eng.SealAudit(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := runEnv(ctx, env, []string{"audit", "verify"}, &out, &errOut); err != nil || !strings.HasPrefix(out.String(), "ok: ") {
		t.Fatalf("audit verify after erasure: %v %s", err, out.String())
	}
}

// encryptedConversation makes a care team, a patient with a user, a device
// with keys each, and one encrypted message from the patient; it returns the
// patient's id and the thread's id.
// exportedPhoto is the file of the encrypted conversation.
const exportedPhoto = "\x89PNG\r\n\x1a\nRASH-PHOTO-BYTES"

func encryptedConversation(t *testing.T, eng *engine.Engine, text string) (patient, thread string) {
	t.Helper()
	ctx := context.Background()
	sys := engine.System("test")
	doc, err := eng.CreateUser(ctx, sys, engine.NewUser{Name: "Dr Ng", Role: engine.RoleClinician})
	if err != nil {
		t.Fatal(err)
	}
	team, err := eng.CreateCareTeam(ctx, sys, engine.NewCareTeam{Name: "Derm", MemberIDs: []uuid.UUID{doc.ID}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := eng.CreatePatient(ctx, sys, engine.NewPatient{DisplayName: "Kit Moss", Timezone: "UTC", CareTeamID: team.ID,
		Programs: []string{"hypertension"}})
	if err != nil {
		t.Fatal(err)
	}
	pu, err := eng.CreateUser(ctx, sys, engine.NewUser{Name: "Kit", Role: engine.RolePatient, PatientID: p.ID})
	if err != nil {
		t.Fatal(err)
	}
	pat := engine.Actor{UserID: pu.ID, Role: engine.RolePatient, PatientID: p.ID}
	clin := engine.Actor{UserID: doc.ID, Role: engine.RoleClinician}
	var keys *e2ee.DeviceKeys
	var id string
	for _, a := range []engine.Actor{clin, pat} {
		k, err := e2ee.GenerateDeviceKeys()
		if err != nil {
			t.Fatal(err)
		}
		d, err := eng.RegisterE2EEDevice(ctx, a, engine.NewE2EEDevice{HPKEPublicKey: k.HPKEPublic, SigningPublicKey: k.SigningPublic()})
		if err != nil {
			t.Fatal(err)
		}
		keys, id = k, d.ID.String()
	}
	threads, _, err := eng.ListThreads(ctx, pat, engine.ThreadFilter{})
	if err != nil || len(threads) != 1 {
		t.Fatalf("threads: %v", err)
	}
	th := threads[0].ID
	if _, err := eng.EncryptThread(ctx, clin, th); err != nil {
		t.Fatal(err)
	}
	tk, err := eng.ThreadKeys(ctx, pat, th)
	if err != nil {
		t.Fatal(err)
	}
	// With a photo, encrypted before upload.
	ct, ref, err := e2ee.EncryptFile(th.String(), id, "rash.png", "image/png", []byte(exportedPhoto))
	if err != nil {
		t.Fatal(err)
	}
	att, err := eng.UploadAttachment(ctx, pat, th, engine.EncryptedAttachmentType, ct)
	if err != nil {
		t.Fatal(err)
	}
	ref.ID = att.ID.String()
	sp := e2ee.SealParams{ThreadID: th.String(), SenderDevice: id, SenderSeq: 1, SigningKey: keys.Signing,
		Record: e2ee.Recipient{ID: tk.RecordKey.ID, PublicKey: tk.RecordKey.PublicKey}, Attachments: []e2ee.FileRef{ref}}
	for _, d := range tk.Devices {
		sp.Recipients = append(sp.Recipients, e2ee.Recipient{ID: d.ID.String(), PublicKey: d.HPKEPublicKey})
	}
	env, err := e2ee.Seal(sp, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.PostEnvelope(ctx, pat, th, engine.NewEnvelope{Envelope: env}); err != nil {
		t.Fatal(err)
	}
	return p.ID.String(), th.String()
}
