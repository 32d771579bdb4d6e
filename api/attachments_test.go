package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
)

// Small files of each accepted type.
var (
	pngFile  = encodeImage(func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) })
	jpegFile = encodeImage(func(b *bytes.Buffer, m image.Image) error { return jpeg.Encode(b, m, nil) })
	pdfFile  = []byte("%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n")
	// heicFile starts like an iPhone photo: an ftyp box of major brand heic.
	heicFile = append([]byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"), bytes.Repeat([]byte{0x42}, 64)...)
)

func encodeImage(enc func(*bytes.Buffer, image.Image) error) []byte {
	m := image.NewRGBA(image.Rect(0, 0, 4, 4))
	m.Set(1, 1, color.RGBA{R: 200, A: 255})
	var b bytes.Buffer
	if err := enc(&b, m); err != nil {
		panic(err)
	}
	return b.Bytes()
}

type attachmentJSON struct {
	ID          string `json:"id"`
	ThreadID    string `json:"thread_id"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
}

// TestAttachmentSniffing: each accepted type is stored with its SHA-256 and
// comes back byte for byte; an executable or a web page renamed to an image,
// a type that disagrees with the bytes, an empty body and a file over the
// limit are refused and store nothing.
func TestAttachmentSniffing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	thread := w.threadOf("A", "patient")
	pat, doc := w.actors["patient"], w.actors["clinician"]
	for _, tc := range []struct {
		declared, stored string
		data             []byte
	}{
		{"image/jpeg", "image/jpeg", jpegFile},
		{"image/png", "image/png", pngFile},
		{"image/heic", "image/heic", heicFile},
		{"image/heif", "image/heic", heicFile},
		{"application/pdf", "application/pdf", pdfFile},
		{"Application/PDF; name=letter.pdf", "application/pdf", pdfFile},
	} {
		r := w.send(pat, "POST", "/v1/threads/"+thread+"/attachments", tc.declared, tc.data)
		if r.status != http.StatusCreated {
			t.Errorf("%s: %d %s", tc.declared, r.status, r.body)
			continue
		}
		var a attachmentJSON
		r.decode(t, &a)
		sum := sha256.Sum256(tc.data)
		if a.ContentType != tc.stored || a.Size != int64(len(tc.data)) || a.SHA256 != hex.EncodeToString(sum[:]) || a.ThreadID != thread {
			t.Errorf("%s: stored as %+v", tc.declared, a)
		}
		if r.header.Get("Location") != "/v1/attachments/"+a.ID {
			t.Errorf("%s: Location %q", tc.declared, r.header.Get("Location"))
		}
		got := w.send(doc, "GET", "/v1/attachments/"+a.ID, "", nil)
		if got.status != http.StatusOK || !bytes.Equal(got.body, tc.data) || got.header.Get("Content-Type") != tc.stored ||
			got.header.Get("ETag") != `"`+a.SHA256+`"` || got.header.Get("X-Content-Type-Options") != "nosniff" ||
			!strings.HasPrefix(got.header.Get("Content-Disposition"), "attachment;") {
			t.Errorf("%s: download %d %v (%d bytes)", tc.declared, got.status, got.header, len(got.body))
		}
	}
	before := w.counts()
	exe := append([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff"), bytes.Repeat([]byte{0}, 200)...)
	html := []byte("<!DOCTYPE html><html><body><script>alert(1)</script></body></html>")
	for _, tc := range []struct {
		name, declared string
		data           []byte
		status         int
	}{
		{"EXE renamed to .png", "image/png", exe, http.StatusUnsupportedMediaType},
		{"EXE as octet-stream", "application/octet-stream", exe, http.StatusUnsupportedMediaType},
		{"HTML renamed to .jpg", "image/jpeg", html, http.StatusUnsupportedMediaType},
		{"HTML as text/html", "text/html", html, http.StatusUnsupportedMediaType},
		{"PNG declared JPEG", "image/jpeg", pngFile, http.StatusUnsupportedMediaType},
		{"PDF declared PNG", "image/png", pdfFile, http.StatusUnsupportedMediaType},
		{"PNG without a type", "", pngFile, http.StatusUnsupportedMediaType},
		{"an AVIF is no HEIC", "image/heic", []byte("\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + strings.Repeat("x", 40)), http.StatusUnsupportedMediaType},
		{"empty", "image/png", nil, http.StatusUnprocessableEntity},
		{"one byte over the limit", "image/png", append(append([]byte{}, pngFile...), make([]byte, 10<<20-len(pngFile)+1)...), http.StatusRequestEntityTooLarge},
	} {
		r := w.send(pat, "POST", "/v1/threads/"+thread+"/attachments", tc.declared, tc.data)
		if r.status != tc.status || !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
			t.Errorf("%s: %d %.300s, want %d", tc.name, r.status, r.body, tc.status)
		}
	}
	// Exactly at the limit is accepted.
	atLimit := append(append([]byte{}, pngFile...), make([]byte, 10<<20-len(pngFile))...)
	if r := w.send(pat, "POST", "/v1/threads/"+thread+"/attachments", "image/png", atLimit); r.status != http.StatusCreated {
		t.Errorf("a file of exactly 10 MiB: %d %.300s", r.status, r.body)
	}
	after := w.counts()
	for _, tb := range []string{"attachments", "attachment_blobs", "audit_entries"} {
		if after[tb] != before[tb]+1 {
			t.Errorf("%s: %d rows before the refused uploads, %d after the one accepted", tb, before[tb], after[tb])
		}
	}
}

// TestAttachmentAuthorization: uploading to and downloading from a thread,
// as each role, in the caller's own patient's thread, another patient's
// thread of the same team, the team's staff-only thread about the patient,
// and another team's thread. Participants only; everyone else finds
// nothing (404), exactly as for an id that does not exist.
func TestAttachmentAuthorization(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	// Another patient of team A.
	r := w.admin.do("POST", "/v1/patients", map[string]any{"display_name": "Patient A2", "timezone": "Europe/Paris",
		"care_team_id": teamA(w), "programs": []string{"hypertension"}})
	if r.status != http.StatusCreated {
		t.Fatalf("patient: %d %s", r.status, r.body)
	}
	var p2 struct{ ID string }
	r.decode(t, &p2)
	threads := map[string]string{"own": w.threadOf("A", "patient"), "same team": "", "staff only": w.threadOf("A", "staff_patient"),
		"other team": w.threadOf("B", "patient")}
	var same string
	if err := w.pool.QueryRow(ctx, `SELECT id FROM threads WHERE patient_id = $1 AND kind = 'patient'`, p2.ID).Scan(&same); err != nil {
		t.Fatal(err)
	}
	threads["same team"] = same
	// One attachment per thread, uploaded by a participant. The staff-only
	// thread is end-to-end encrypted: it takes encrypted files (their
	// ciphertext, opaque bytes to the server) only.
	uploaders := map[string]client{"own": w.actors["clinician"], "same team": w.actors["clinician"],
		"staff only": w.actors["clinician"], "other team": w.actors["clinicianB"]}
	ciphertext := bytes.Repeat([]byte{0xc3, 0x5a}, 64)
	file := func(object string) (string, []byte) {
		if object == "staff only" {
			return engine.EncryptedAttachmentType, ciphertext
		}
		return "image/png", pngFile
	}
	atts := map[string]string{}
	for object, c := range uploaders {
		typ, data := file(object)
		r := w.send(c, "POST", "/v1/threads/"+threads[object]+"/attachments", typ, data)
		if r.status != http.StatusCreated {
			t.Fatalf("upload to %s: %d %s", object, r.status, r.body)
		}
		var a attachmentJSON
		r.decode(t, &a)
		atts[object] = a.ID
	}
	const ok, no = true, false
	// may[role][object]: whether the role takes part in the thread.
	may := map[string]map[string]bool{
		"admin":      {"own": no, "same team": no, "staff only": no, "other team": no}, // no member of either team
		"clinician":  {"own": ok, "same team": ok, "staff only": ok, "other team": no},
		"scheduler":  {"own": ok, "same team": ok, "staff only": ok, "other team": no},
		"patient":    {"own": ok, "same team": no, "staff only": no, "other team": no},
		"device":     {"own": no, "same team": no, "staff only": no, "other team": no},
		"clinicianB": {"own": no, "same team": no, "staff only": no, "other team": ok},
		"patientB":   {"own": no, "same team": no, "staff only": no, "other team": ok},
		"deviceB":    {"own": no, "same team": no, "staff only": no, "other team": no},
	}
	notFound := w.send(w.actors["patient"], "GET", "/v1/attachments/"+uuid.NewString(), "", nil)
	for role, objects := range may {
		c := w.actors[role]
		for object, allowed := range objects {
			typ, data := file(object)
			if typ == "image/png" {
				typ, data = "image/jpeg", jpegFile
			}
			up := w.send(c, "POST", "/v1/threads/"+threads[object]+"/attachments", typ, data)
			down := w.send(c, "GET", "/v1/attachments/"+atts[object], "", nil)
			if allowed {
				if _, stored := file(object); up.status != http.StatusCreated || down.status != http.StatusOK || !bytes.Equal(down.body, stored) {
					t.Errorf("%s on %s: upload %d, download %d; want 201, 200", role, object, up.status, down.status)
				}
				continue
			}
			if up.status != http.StatusNotFound || down.status != http.StatusNotFound || problemTitle(down) != problemTitle(notFound) {
				t.Errorf("%s on %s: upload %d, download %d %.200s; want 404 like a nonexistent id", role, object, up.status, down.status, down.body)
			}
			if bytes.Contains(down.body, pngFile[:16]) {
				t.Errorf("%s on %s: the refusal carries the file's bytes", role, object)
			}
		}
	}
}

// TestAttachmentTamperAPI: a stored attachment changed behind Tend's back is
// answered 409 with a problem that says so, never with its bytes, and never
// with a 5xx.
func TestAttachmentTamperAPI(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	id := w.attachmentOf("A")
	if r := w.send(w.actors["patient"], "GET", "/v1/attachments/"+id, "", nil); r.status != http.StatusOK || !bytes.Equal(r.body, pngFile) {
		t.Fatalf("before: %d", r.status)
	}
	if _, err := w.pool.Exec(context.Background(), `UPDATE attachment_blobs SET data = set_byte(data, 30, get_byte(data, 30) # 128)
		WHERE attachment_id = $1`, id); err != nil {
		t.Fatal(err)
	}
	r := w.send(w.actors["patient"], "GET", "/v1/attachments/"+id, "", nil)
	p := decodeProblem(t, r)
	if r.status != http.StatusConflict || p.Title != "Attachment failed its integrity check" ||
		!strings.Contains(p.Detail, "SHA-256") || !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("tampered: %d %s", r.status, r.body)
	}
	if bytes.Contains(r.body, pngFile[8:24]) {
		t.Fatal("the refusal carries the file's bytes")
	}
}
