package api

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/rpm"
)

// createOrganisation answers POST /v1/organisations (operators):
// {name, slug, timezone?}.
func (s *Server) createOrganisation(w http.ResponseWriter, r *http.Request) {
	withJSON(s, w, r, func(in *engine.NewOrganisation) (any, int, error) {
		o, err := s.eng.CreateOrganisation(r.Context(), actor(r), *in)
		if err == nil {
			w.Header().Set("Location", "/v1/organisations/"+o.ID.String())
		}
		return o, http.StatusCreated, err
	})
}

// listOrganisations answers GET /v1/organisations: every organisation for an
// operator, the caller's own for anyone else.
func (s *Server) listOrganisations(w http.ResponseWriter, r *http.Request) {
	reply(s, w, r, func() (any, int, error) {
		items, err := s.eng.ListOrganisations(r.Context(), actor(r))
		return newList(items, ""), http.StatusOK, err
	})
}

func (s *Server) getOrganisation(w http.ResponseWriter, r *http.Request) {
	withID(s, w, r, func(id uuid.UUID) (any, int, error) {
		o, err := s.eng.GetOrganisation(r.Context(), actor(r), id)
		return o, http.StatusOK, err
	})
}

// updateOrganisation answers PATCH /v1/organisations/{id}: a field left out
// keeps its value, null clears it.
func (s *Server) updateOrganisation(w http.ResponseWriter, r *http.Request) {
	withBody(s, w, r, func(id uuid.UUID, in *engine.OrganisationUpdate) (any, int, error) {
		o, err := s.eng.UpdateOrganisation(r.Context(), actor(r), id, *in)
		return o, http.StatusOK, err
	})
}

// putOrganisationLogo answers PUT /v1/organisations/{id}/logo: the image's
// raw bytes with their Content-Type (PNG, JPEG or WebP, at most 256 KiB).
func (s *Server) putOrganisationLogo(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	tooLarge := func() {
		writeProblem(w, r, http.StatusRequestEntityTooLarge, "Logo too large",
			fmt.Sprintf("a logo is at most %d bytes", engine.MaxLogoBytes), nil)
	}
	data, ok := readRaw(w, r, engine.MaxLogoBytes, tooLarge)
	switch {
	case !ok:
		return
	case len(data) == 0:
		writeProblem(w, r, http.StatusUnprocessableEntity, "Invalid request", "the body is the logo's bytes; DELETE removes a logo",
			[]rpm.FieldError{{Field: "logo", Reason: "is required"}})
		return
	}
	reply(s, w, r, func() (any, int, error) {
		o, err := s.eng.SetOrganisationLogo(r.Context(), actor(r), id, r.Header.Get("Content-Type"), data)
		return o, http.StatusOK, err
	})
}

// deleteOrganisationLogo answers DELETE /v1/organisations/{id}/logo.
func (s *Server) deleteOrganisationLogo(w http.ResponseWriter, r *http.Request) {
	withID(s, w, r, func(id uuid.UUID) (any, int, error) {
		o, err := s.eng.SetOrganisationLogo(r.Context(), actor(r), id, "", nil)
		return o, http.StatusOK, err
	})
}

// getOrganisationLogo answers GET /v1/organisations/{id}/logo: the image,
// to anyone of the organisation.
func (s *Server) getOrganisationLogo(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	l, err := s.eng.OrganisationLogo(r.Context(), actor(r), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", l.ContentType)
	h.Set("Content-Length", strconv.Itoa(len(l.Data)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cache-Control", "private, max-age=3600")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(l.Data)
}
