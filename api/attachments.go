package api

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tendhealth/tend/engine"
)

// attachmentExt names a downloaded file by its type.
var attachmentExt = map[string]string{"image/jpeg": ".jpg", "image/png": ".png", "image/heic": ".heic", "application/pdf": ".pdf",
	"audio/mp4": ".m4a", "audio/ogg": ".opus", "audio/mpeg": ".mp3", "video/mp4": ".mp4", "video/webm": ".webm",
	engine.EncryptedAttachmentType: ".bin"}

// uploadAttachment stores the request body, the file's raw bytes, in a
// thread. Content-Type declares the file's type; the bytes must agree. The
// body limit here is the attachment limit, not the API's JSON limit.
func (s *Server) uploadAttachment(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	limit := s.eng.AttachmentMaxBytes()
	files, media := s.eng.AttachmentLimits()
	tooLarge := func() {
		writeProblem(w, r, http.StatusRequestEntityTooLarge, "Attachment too large",
			fmt.Sprintf("an image or PDF is at most %d bytes, an audio or video file at most %d bytes", files, media), nil)
	}
	data, ok := readRaw(w, r, limit, tooLarge)
	if !ok {
		return
	}
	att, err := s.eng.UploadAttachment(r.Context(), actor(r), id, r.Header.Get("Content-Type"), data)
	var te *engine.AttachmentTypeError
	switch {
	case errors.As(err, &te):
		writeProblem(w, r, http.StatusUnsupportedMediaType, "Unsupported attachment type",
			te.Reason+": attachments are JPEG, PNG, HEIC, PDF, M4A, Ogg Opus, MP3, MP4 or WebM files, "+
				"sent as raw bytes with their Content-Type", nil)
		return
	case errors.Is(err, engine.ErrTooLarge):
		tooLarge()
		return
	case err != nil:
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/attachments/"+att.ID.String())
	writeJSON(w, http.StatusCreated, att)
}

// getAttachment answers an attachment's bytes, once they decrypt and match
// the SHA-256 recorded at upload. Range requests are answered (206, or 416
// for a range outside the file) from the checked bytes, so a player can
// seek: every range request opens and checks the whole file first. A stored file that fails the check is
// never sent: 409, because the request is sound and the server works, but
// the stored object's state forbids answering it (a retry cannot help, and
// 5xx would invite one); the failure is logged and audited for the
// operators.
func (s *Server) getAttachment(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	att, data, err := s.eng.GetAttachment(r.Context(), actor(r), id)
	switch {
	case errors.Is(err, engine.ErrIntegrity):
		writeProblem(w, r, http.StatusConflict, "Attachment failed its integrity check",
			"the stored file does not decrypt or does not match the SHA-256 recorded when it was uploaded, so it is withheld; "+
				"the failure is logged and audited, and an administrator can restore the file from a backup", nil)
		return
	case err != nil:
		s.writeError(w, r, err)
		return
	}
	sum, _ := hex.DecodeString(att.SHA256)
	h := w.Header()
	h.Set("Content-Type", att.ContentType)
	h.Set("Content-Disposition", `attachment; filename="`+att.ID.String()+attachmentExt[att.ContentType]+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "private, no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("ETag", `"`+att.SHA256+`"`)
	h.Set("Repr-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(sum)+":")
	// ServeContent answers Range (206 with Content-Range, 416 beyond the
	// end) and If-Range against the ETag; the modification time is left
	// out so that only the ETag validates.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}
