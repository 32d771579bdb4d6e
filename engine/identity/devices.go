package identity

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/check"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/notify"
	"github.com/tendhealth/tend/notify/webpush"
)

// Device is a registered push destination of a user. Tokens and endpoints are
// never returned in full.
type Device struct {
	ID             uuid.UUID       `json:"id"`
	Platform       notify.Platform `json:"platform"`
	Environment    string          `json:"environment,omitempty"`
	Topic          string          `json:"topic,omitempty"`
	Enabled        bool            `json:"enabled"`
	DisabledReason *string         `json:"disabled_reason,omitempty"`
	CreatedAt      time.Time       `json:"created_at"`
	LastSuccessAt  *time.Time      `json:"last_success_at,omitempty"`
}

// NewDevice is the input of RegisterDevice.
type NewDevice struct {
	Platform notify.Platform
	// Token is the FCM registration token or the APNs device token (hex).
	Token string
	// Topic is the APNs topic; empty means Config.APNsTopic.
	Topic string
	// Environment is "production" (default) or "sandbox" for APNs.
	Environment string
	// Endpoint, P256dh and Auth form a Web Push subscription.
	Endpoint, P256dh, Auth string
}

// RegisterDevice registers a push device for the calling user. Registering
// the same token or endpoint again is idempotent (created is false). A
// registration never moves a device away from another account: a token held
// by another user is registered for this user as well, and both receive their
// pushes on it until one removes it (DELETE /v1/me/devices/{id}, which is how
// an app hands a phone over at sign-out). The answer is the same whether or
// not another account holds the token, so it reveals nothing about others.
func (us *Service) RegisterDevice(ctx context.Context, a access.Actor, in NewDevice) (d Device, created bool, err error) {
	if a.UserID == uuid.Nil {
		return Device{}, false, fmt.Errorf("device registration needs a user: %w", access.ErrForbidden)
	}
	address, err := us.validateDevice(&in)
	if err != nil {
		return Device{}, false, err
	}
	now := us.now()
	sandbox := in.Environment == "sandbox"
	err = pg.InTx(ctx, us.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, upsertDeviceSQL,
			pg.NewID(), a.UserID, in.Platform, address, in.P256dh, in.Auth, in.Topic, sandbox, now).
			Scan(&d.ID, &created, &d.CreatedAt, &d.LastSuccessAt)
		if err != nil {
			return fmt.Errorf("register device: %w", err)
		}
		return us.audit.Write(ctx, tx, a, audit.Entry{Action: "device.register", ObjectType: "device", ObjectID: d.ID.String()})
	})
	if err != nil {
		return Device{}, false, err
	}
	d.Platform, d.Topic, d.Enabled = in.Platform, in.Topic, true
	if in.Platform == notify.APNs {
		d.Environment = cmpOr(in.Environment, "production")
	}
	return d, created, nil
}

// validateDevice checks a registration and returns the device's address.
func (us *Service) validateDevice(in *NewDevice) (string, error) {
	if in.Platform != notify.APNs {
		if in.Environment != "" {
			return "", check.FieldError("environment", "only applies to apns devices")
		}
		if in.Topic != "" {
			return "", check.FieldError("topic", "only applies to apns devices")
		}
	}
	switch in.Platform {
	case "":
		return "", check.FieldError("platform", "is required (fcm, apns or webpush)")
	case notify.FCM:
		if in.Token == "" || len(in.Token) > 4096 || strings.ContainsAny(in.Token, " \t\r\n") {
			return "", check.FieldError("token", "must be an FCM registration token")
		}
		return in.Token, nil
	case notify.APNs:
		if _, err := hex.DecodeString(in.Token); err != nil || len(in.Token) < 64 || len(in.Token) > 200 {
			return "", check.FieldError("token", "must be an APNs device token (at least 64 hex characters)")
		}
		switch in.Environment {
		case "", "production", "sandbox":
		default:
			return "", check.FieldError("environment", "must be production or sandbox")
		}
		if in.Topic == "" && us.apnsTopic == "" {
			return "", check.FieldError("topic", "is required: no default APNs topic is configured")
		}
		if len(in.Topic) > 255 {
			return "", check.FieldError("topic", "is longer than 255 characters")
		}
		return strings.ToLower(in.Token), nil
	case notify.WebPush:
		if err := webpush.ValidateSubscription(in.Endpoint, in.P256dh, in.Auth); err != nil {
			var se *webpush.SubscriptionError
			if errors.As(err, &se) {
				field := "subscription." + se.Field
				if se.Field != "endpoint" {
					field = "subscription.keys." + se.Field
				}
				return "", check.FieldError(field, se.Reason)
			}
			return "", check.FieldError("subscription", err.Error())
		}
		u, _ := url.Parse(in.Endpoint)
		if !hostAllowed(u.Hostname(), us.webPushAllowedHosts) {
			return "", check.FieldError("subscription.endpoint", "host is not an allowed push service (TEND_WEBPUSH_ALLOWED_HOSTS)")
		}
		return in.Endpoint, nil
	}
	return "", check.FieldError("platform", "must be fcm, apns or webpush")
}

// hostAllowed matches a host against an allow-list of exact hosts,
// "*.suffix" wildcards and "*" (any).
func hostAllowed(host string, allowed []string) bool {
	host = strings.ToLower(host)
	for _, a := range allowed {
		a = strings.ToLower(strings.TrimSpace(a))
		switch {
		case a == "*":
			return true
		case strings.HasPrefix(a, "*."):
			if strings.HasSuffix(host, a[1:]) {
				return true
			}
		case host == a:
			return true
		}
	}
	return false
}

// ListDevices lists the calling user's devices.
func (us *Service) ListDevices(ctx context.Context, a access.Actor) ([]Device, error) {
	rows, err := us.pool.Query(ctx, listDevicesSQL, a.UserID)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Device, error) {
		var d Device
		var sandbox bool
		err := r.Scan(&d.ID, &d.Platform, &sandbox, &d.Topic, &d.Enabled, &d.DisabledReason, &d.CreatedAt, &d.LastSuccessAt)
		if d.Platform == notify.APNs {
			d.Environment = "production"
			if sandbox {
				d.Environment = "sandbox"
			}
		}
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	return out, nil
}

// DeleteDevice unregisters one of the calling user's devices. Its delivery
// history is kept; the device is disabled and hidden.
func (us *Service) DeleteDevice(ctx context.Context, a access.Actor, id uuid.UUID) error {
	return pg.InTx(ctx, us.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, deleteDeviceSQL, id, a.UserID, us.now())
		if err != nil {
			return fmt.Errorf("delete device: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("device: %w", access.ErrNotFound)
		}
		return us.audit.Write(ctx, tx, a, audit.Entry{Action: "device.delete", ObjectType: "device", ObjectID: id.String()})
	})
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
