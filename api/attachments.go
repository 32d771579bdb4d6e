package api

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/tendhealth/tend/engine"
)

// attachmentExt names a downloaded file by its type.
var attachmentExt = map[string]string{"image/jpeg": ".jpg", "image/png": ".png", "image/heic": ".heic", "application/pdf": ".pdf"}

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
	tooLarge := func() {
		writeProblem(w, r, http.StatusRequestEntityTooLarge, "Attachment too large",
			fmt.Sprintf("an attachment is at most %d bytes", limit), nil)
	}
	if r.ContentLength > limit {
		tooLarge()
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		tooLarge()
		return
	case err != nil:
		writeProblem(w, r, http.StatusBadRequest, "Unreadable body", "the request body could not be read", nil)
		return
	}
	att, err := s.eng.UploadAttachment(r.Context(), actor(r), id, r.Header.Get("Content-Type"), data)
	var te *engine.AttachmentTypeError
	switch {
	case errors.As(err, &te):
		writeProblem(w, r, http.StatusUnsupportedMediaType, "Unsupported attachment type",
			te.Reason+": attachments are JPEG, PNG, HEIC or PDF files, sent as raw bytes with their Content-Type", nil)
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
// the SHA-256 recorded at upload. A stored file that fails the check is
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
	h.Set("Content-Length", strconv.Itoa(len(data)))
	h.Set("Content-Disposition", `attachment; filename="`+att.ID.String()+attachmentExt[att.ContentType]+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "private, no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("ETag", `"`+att.SHA256+`"`)
	h.Set("Repr-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(sum)+":")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}
