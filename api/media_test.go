package api_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// rangeGet downloads an attachment with a Range header (and If-Range when
// ifRange is set).
func rangeGet(t *testing.T, c client, id, rng, ifRange string) response {
	t.Helper()
	req, err := http.NewRequest("GET", c.base+"/v1/attachments/"+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Range", rng)
	if ifRange != "" {
		req.Header.Set("If-Range", ifRange)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// TestMediaAttachments: each audio and video container is stored as sent
// with its length; a clip declared as another type is 415; downloads answer
// ranges (206), refuse a range past the end (416), and still withhold a file
// whose bytes no longer match their SHA-256, range or not.
func TestMediaAttachments(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	thread := w.threadOf("A", "patient")
	pat, doc := w.actors["patient"], w.actors["clinician"]
	ogg := enginetest.OggOpus(2000)
	for _, tc := range []struct {
		declared, stored string
		data             []byte
		duration         string
	}{
		{"audio/ogg", "audio/ogg", ogg, "2000"},
		{"audio/mp4", "audio/mp4", enginetest.MP4(3500, false), "3500"},
		{"video/mp4", "video/mp4", enginetest.MP4(61000, true), "61000"},
		{"video/webm", "video/webm", enginetest.WebM(1250), "1250"},
		{"audio/mpeg", "audio/mpeg", enginetest.MP3(), "null"},
	} {
		r := w.send(pat, "POST", "/v1/threads/"+thread+"/attachments", tc.declared, tc.data)
		if r.status != http.StatusCreated || !strings.Contains(string(r.body), `"content_type":"`+tc.stored+`"`) ||
			!strings.Contains(string(r.body), `"duration_ms":`+tc.duration+`,`) {
			t.Errorf("%s: %d %s", tc.declared, r.status, r.body)
		}
	}
	for _, tc := range []struct{ declared string }{{"video/mp4"}, {"image/png"}, {"audio/mpeg"}} {
		if r := w.send(pat, "POST", "/v1/threads/"+thread+"/attachments", tc.declared, ogg); r.status != http.StatusUnsupportedMediaType {
			t.Errorf("Ogg declared %s: %d %s", tc.declared, r.status, r.body)
		}
	}
	r := w.send(pat, "POST", "/v1/threads/"+thread+"/attachments", "audio/ogg", ogg)
	var a attachmentJSON
	r.decode(t, &a)
	size := len(ogg)
	got := rangeGet(t, doc, a.ID, "bytes=10-99", "")
	if got.status != http.StatusPartialContent || !bytes.Equal(got.body, ogg[10:100]) ||
		got.header.Get("Content-Range") != fmt.Sprintf("bytes 10-99/%d", size) || got.header.Get("ETag") != `"`+a.SHA256+`"` {
		t.Errorf("bytes=10-99: %d %v (%d bytes)", got.status, got.header, len(got.body))
	}
	if got := rangeGet(t, doc, a.ID, "bytes=-16", ""); got.status != http.StatusPartialContent || !bytes.Equal(got.body, ogg[size-16:]) {
		t.Errorf("the last 16 bytes: %d (%d bytes)", got.status, len(got.body))
	}
	if got := rangeGet(t, doc, a.ID, fmt.Sprintf("bytes=%d-", size+10), ""); got.status != http.StatusRequestedRangeNotSatisfiable ||
		got.header.Get("Content-Range") != fmt.Sprintf("bytes */%d", size) || len(got.body) > 200 {
		t.Errorf("a range past the end: %d %v", got.status, got.header)
	}
	// An If-Range of another version sends the whole file.
	if got := rangeGet(t, doc, a.ID, "bytes=0-9", `"0000"`); got.status != http.StatusOK || !bytes.Equal(got.body, ogg) {
		t.Errorf("If-Range of another version: %d (%d bytes)", got.status, len(got.body))
	}
	if got := rangeGet(t, doc, a.ID, "bytes=0-9", `"`+a.SHA256+`"`); got.status != http.StatusPartialContent || len(got.body) != 10 {
		t.Errorf("If-Range of this version: %d (%d bytes)", got.status, len(got.body))
	}
	// Outsiders find nothing, range or not.
	if got := rangeGet(t, w.actors["clinicianB"], a.ID, "bytes=0-9", ""); got.status != http.StatusNotFound {
		t.Errorf("another team's clinician: %d", got.status)
	}
	if _, err := w.pool.Exec(context.Background(), `UPDATE attachment_blobs SET data = set_byte(data, 40, get_byte(data, 40) # 1)
		WHERE attachment_id = $1`, a.ID); err != nil {
		t.Fatal(err)
	}
	got = rangeGet(t, doc, a.ID, "bytes=0-9", "")
	if got.status != http.StatusConflict || bytes.Contains(got.body, ogg[:10]) {
		t.Errorf("a tampered clip, by range: %d %s", got.status, got.body)
	}
}

// voiceNote is a 2-second Ogg Opus clip, which the console's browser test
// plays inline.
var voiceNote = enginetest.OggOpus(2000)

// TestMediaMaxBytes: the audio and video limit (TEND_MEDIA_MAX_BYTES, set
// here far below the image and PDF limit) refuses a clip one byte over it
// with a 413 problem that states both limits, and stores nothing: no row,
// no sealed bytes, no audit entry. A clip exactly at the limit is taken, and
// images and PDFs keep their own, larger limit. (The other way round — an
// image over its limit while the media limit is larger — is
// TestAttachmentSniffing's "one byte over the limit".)
func TestMediaMaxBytes(t *testing.T) {
	t.Parallel()
	const media = 64 << 10
	s := newSetupWith(t, engine.Config{MediaMaxBytes: media})
	ctx := context.Background()
	var thread string
	if err := s.pool.QueryRow(ctx, `SELECT id FROM threads WHERE patient_id = $1 AND kind = 'patient'`, s.patientID).Scan(&thread); err != nil {
		t.Fatal(err)
	}
	stored := func() (n [3]int64) {
		t.Helper()
		if err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM attachments), (SELECT count(*) FROM attachment_blobs),
			(SELECT count(*) FROM audit_entries WHERE action = 'attachment.create')`).Scan(&n[0], &n[1], &n[2]); err != nil {
			t.Fatal(err)
		}
		return n
	}
	pad := func(b []byte, size int) string {
		return string(append(append([]byte{}, b...), make([]byte, size-len(b))...))
	}
	upload := func(typ, body string) response {
		return s.clinician.doWith("POST", "/v1/threads/"+thread+"/attachments", body, map[string]string{"Content-Type": typ})
	}
	before := stored()
	for _, tc := range []struct{ typ, body string }{
		{"audio/ogg", pad(enginetest.OggOpus(2000), media+1)},
		{"video/webm", pad(enginetest.WebM(1250), media+1)},
		{"video/mp4", pad(enginetest.MP4(3500, true), 3*media)},
	} {
		r := upload(tc.typ, tc.body)
		p := wantProblem(t, r, http.StatusRequestEntityTooLarge)
		if !strings.Contains(p.Detail, fmt.Sprintf("an audio or video file at most %d bytes", media)) ||
			!strings.Contains(p.Detail, fmt.Sprintf("an image or PDF is at most %d bytes", engine.DefaultAttachmentMaxBytes)) {
			t.Errorf("%s of %d bytes: the problem does not state the limits: %q", tc.typ, len(tc.body), p.Detail)
		}
	}
	if got := stored(); got != before {
		t.Errorf("refused clips stored something: attachments, blobs, audit entries %v before, %v after", before, got)
	}
	// At the limit, a clip is taken; an image and a PDF far above the media
	// limit are taken too, under their own.
	for _, tc := range []struct{ typ, body string }{
		{"audio/ogg", pad(enginetest.OggOpus(2000), media)},
		{"image/png", pad(pngFile, 1<<20)},
		{"application/pdf", pad(pdfFile, 2<<20)},
	} {
		if r := upload(tc.typ, tc.body); r.status != http.StatusCreated {
			t.Errorf("%s of %d bytes: %d %.300s, want 201", tc.typ, len(tc.body), r.status, r.body)
		}
	}
	if got := stored(); got != [3]int64{before[0] + 3, before[1] + 3, before[2] + 3} {
		t.Errorf("accepted files: attachments, blobs, audit entries %v before, %v after", before, got)
	}
}
