package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/rpm"
)

// The API's resource handlers share one shape — decode, validate, call the
// engine once, encode — and these helpers are it, so that a handler says
// only what differs: how the body or query becomes the engine's request,
// which call it makes, and which status the result gets. Whatever step
// fails, its error is written once as problem+json (writeError: a bad
// field names itself, an engine error maps to its status) and nothing
// after it runs, so a bad request never reaches the engine.

// withID handles a request on the resource named by the path's {id} (a
// malformed id is a missing resource): call reads any query, makes the
// engine call and returns the result to encode as JSON with its status.
func withID(s *Server, w http.ResponseWriter, r *http.Request, call func(id uuid.UUID) (any, int, error)) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	reply(s, w, r, func() (any, int, error) { return call(id) })
}

// withBody is withID for a request with a JSON body, decoded strictly into
// In (content type, size, unknown fields, types) before call sees it.
func withBody[In any](s *Server, w http.ResponseWriter, r *http.Request, call func(id uuid.UUID, in *In) (any, int, error)) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	withJSON(s, w, r, func(in *In) (any, int, error) { return call(id, in) })
}

// withJSON handles a request with a JSON body (decoded as withBody does) on
// a path without an {id}.
func withJSON[In any](s *Server, w http.ResponseWriter, r *http.Request, call func(in *In) (any, int, error)) {
	var in In
	if err := s.decode(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	reply(s, w, r, func() (any, int, error) { return call(&in) })
}

// reply runs call and writes its result as JSON, or its error.
func reply(s *Server, w http.ResponseWriter, r *http.Request, call func() (any, int, error)) {
	out, status, err := call()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, status, out)
}

// createdOr200 is 201 Created when the call created something, else 200
// (a duplicate, or an object that already existed).
func createdOr200(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}

// listPage handles a list request: filter reads the query string (adding
// any field error to v), call returns a page and the next cursor, written
// as {items, next_cursor}.
func listPage[F, T any](s *Server, w http.ResponseWriter, r *http.Request, filter func(q url.Values, v *rpm.ValidationError) F,
	call func(ctx context.Context, a engine.Actor, f F) ([]T, string, error)) {
	var v rpm.ValidationError
	f := filter(r.URL.Query(), &v)
	if err := v.OrNil(); err != nil {
		s.writeError(w, r, err)
		return
	}
	reply(s, w, r, func() (any, int, error) {
		items, next, err := call(r.Context(), actor(r), f)
		return newList(items, next), http.StatusOK, err
	})
}

// readRaw reads a raw (non-JSON) request body of at most limit bytes: a body
// over it is answered by tooLarge, an unreadable one with 400; false when
// an answer was written.
func readRaw(w http.ResponseWriter, r *http.Request, limit int64, tooLarge func()) ([]byte, bool) {
	if r.ContentLength > limit {
		tooLarge()
		return nil, false
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		tooLarge()
		return nil, false
	case err != nil:
		writeProblem(w, r, http.StatusBadRequest, "Unreadable body", "the request body could not be read", nil)
		return nil, false
	}
	return data, true
}
