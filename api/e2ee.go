package api

import (
	"encoding/base64"
	"fmt"
	"net/http"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/e2ee"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/rpm"
)

// End-to-end encryption (docs/e2ee.md): device keys and encrypted threads.
// Binary fields travel as unpadded base64url strings; they are read as
// strings here so that a malformed one is a 422 naming it exactly.

// e2eeDeviceBody is the body of POST /v1/me/e2ee-devices.
type e2eeDeviceBody struct {
	Label            string `json:"label"`
	HPKEPublicKey    string `json:"hpke_public_key"`
	SigningPublicKey string `json:"signing_public_key"`
}

func (s *Server) registerE2EEDevice(w http.ResponseWriter, r *http.Request) {
	withJSON(s, w, r, func(in *e2eeDeviceBody) (any, int, error) {
		var v rpm.ValidationError
		nd := engine.NewE2EEDevice{Label: in.Label, HPKEPublicKey: b64(&v, "hpke_public_key", in.HPKEPublicKey),
			SigningPublicKey: b64(&v, "signing_public_key", in.SigningPublicKey)}
		if err := v.OrNil(); err != nil {
			return nil, 0, err
		}
		d, err := s.eng.RegisterE2EEDevice(r.Context(), actor(r), nd)
		return d, http.StatusCreated, err
	})
}

func (s *Server) listE2EEDevices(w http.ResponseWriter, r *http.Request) {
	reply(s, w, r, func() (any, int, error) {
		ds, err := s.eng.ListE2EEDevices(r.Context(), actor(r))
		return newList(ds, ""), http.StatusOK, err
	})
}

func (s *Server) revokeE2EEDevice(w http.ResponseWriter, r *http.Request) {
	withID(s, w, r, func(id uuid.UUID) (any, int, error) {
		d, err := s.eng.RevokeE2EEDevice(r.Context(), actor(r), id)
		return d, http.StatusOK, err
	})
}

func (s *Server) threadKeys(w http.ResponseWriter, r *http.Request) {
	withID(s, w, r, func(id uuid.UUID) (any, int, error) {
		k, err := s.eng.ThreadKeys(r.Context(), actor(r), id)
		return k, http.StatusOK, err
	})
}

func (s *Server) encryptThread(w http.ResponseWriter, r *http.Request) {
	id, ok := s.idAndEmptyBody(w, r)
	if !ok {
		return
	}
	reply(s, w, r, func() (any, int, error) {
		t, err := s.eng.EncryptThread(r.Context(), actor(r), id)
		return t, http.StatusOK, err
	})
}

// wireWrap and wireEnvelope are e2ee.Wrap and e2ee.Envelope as JSON
// carries them, binary fields still base64url text.
type wireWrap struct {
	ID         string `json:"id"`
	Enc        string `json:"enc"`
	WrappedKey string `json:"wrapped_key"`
}

type wireEnvelope struct {
	V            int        `json:"v"`
	Suite        e2ee.Suite `json:"suite"`
	ThreadID     string     `json:"thread_id"`
	SenderDevice string     `json:"sender_device_id"`
	SenderSeq    uint64     `json:"sender_seq"`
	Nonce        string     `json:"nonce"`
	Ciphertext   string     `json:"ciphertext"`
	Attachments  []string   `json:"attachments"`
	Recipients   []wireWrap `json:"recipients"`
	Record       wireWrap   `json:"record"`
	Signature    string     `json:"signature"`
}

// envelopeBody is the body of POST /v1/threads/{id}/envelopes.
type envelopeBody struct {
	Envelope *wireEnvelope `json:"envelope"`
	Urgent   bool          `json:"urgent"`
}

func (s *Server) postEnvelope(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	in, err := s.readEnvelope(w, r) // e2eeread.go
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	m, err := s.eng.PostEnvelope(r.Context(), actor(r), id, in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeEnvelopeMessage(w, createdOr200(m.Created), m.Message)
}

// decode turns the wire form into an envelope, naming each field that is
// not unpadded base64url.
func (we *wireEnvelope) decode() (*e2ee.Envelope, error) {
	var v rpm.ValidationError
	wrap := func(field string, w wireWrap) e2ee.Wrap {
		return e2ee.Wrap{ID: w.ID, Enc: b64(&v, field+".enc", w.Enc), WrappedKey: b64(&v, field+".wrapped_key", w.WrappedKey)}
	}
	env := &e2ee.Envelope{Version: we.V, Suite: we.Suite, ThreadID: we.ThreadID, SenderDevice: we.SenderDevice,
		SenderSeq: we.SenderSeq, Nonce: b64(&v, "envelope.nonce", we.Nonce),
		Ciphertext: b64(&v, "envelope.ciphertext", we.Ciphertext), Attachments: we.Attachments,
		Record:    wrap("envelope.record", we.Record),
		Signature: b64(&v, "envelope.signature", we.Signature)}
	for i, w := range we.Recipients {
		env.Recipients = append(env.Recipients, wrap(fmt.Sprintf("envelope.recipients[%d]", i), w))
	}
	return env, v.OrNil()
}

// b64 decodes unpadded base64url, adding a field error to v when it is not.
func b64(v *rpm.ValidationError, field, s string) []byte {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		v.Add(field, "must be unpadded base64url (RFC 4648 §5)")
		return nil
	}
	return b
}
