package api

import (
	"net/http"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/notify"
	"github.com/tendhealth/tend/rpm"
)

func (s *Server) registerDevice(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Platform     string `json:"platform"`
		Token        string `json:"token"`
		Topic        string `json:"topic"`
		Environment  string `json:"environment"`
		Subscription *struct {
			Endpoint       string `json:"endpoint"`
			ExpirationTime *int64 `json:"expirationTime"`
			Keys           struct {
				P256dh string `json:"p256dh"`
				Auth   string `json:"auth"`
			} `json:"keys"`
		} `json:"subscription"`
	}
	if err := s.decode(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	nd := engine.NewDevice{Platform: notify.Platform(in.Platform), Token: in.Token, Topic: in.Topic, Environment: in.Environment}
	if in.Subscription != nil {
		nd.Endpoint, nd.P256dh, nd.Auth = in.Subscription.Endpoint, in.Subscription.Keys.P256dh, in.Subscription.Keys.Auth
	} else if nd.Platform == notify.WebPush {
		s.writeError(w, r, &rpm.ValidationError{Fields: []rpm.FieldError{{Field: "subscription", Reason: "is required for webpush"}}})
		return
	}
	d, created, err := s.eng.RegisterDevice(r.Context(), actor(r), nd)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, d)
}

func (s *Server) listDevices(w http.ResponseWriter, r *http.Request) {
	ds, err := s.eng.ListDevices(r.Context(), actor(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newList(ds, ""))
}

func (s *Server) deleteDevice(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.eng.DeleteDevice(r.Context(), actor(r), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
