package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/check"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/rpm"
)

// Account lifecycle: listing users, disabling them, and tokens that expire,
// are listed (never their secret) and are revoked. A disabled user's tokens
// and a revoked token stop working within the authentication cache's TTL (1
// second by default) on every process: each process re-reads the token at
// the end of its cache entry.

// MaxTokenLifetime bounds a token's expires_in.
const MaxTokenLifetime = 366 * 24 * time.Hour

// Token is an issued bearer token, without its secret.
type Token struct {
	ID        uuid.UUID  `json:"id"`
	UserID    uuid.UUID  `json:"user_id"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at"`
}

// IssueToken issues a bearer token for a user (admins only) that expires
// after expiresIn (0: never). The secret is returned once; only its SHA-256
// is stored.
func (us *Service) IssueToken(ctx context.Context, a access.Actor, userID uuid.UUID, expiresIn time.Duration) (Token, string, error) {
	if err := access.Require(a, access.RoleAdmin, access.RoleSuperAdmin); err != nil {
		return Token{}, "", err
	}
	if expiresIn < 0 || expiresIn > MaxTokenLifetime {
		return Token{}, "", check.FieldError("expires_in", "must be a duration from 1m to 8784h, or absent for a token that does not expire")
	}
	if expiresIn > 0 && expiresIn < time.Minute {
		return Token{}, "", check.FieldError("expires_in", "must be at least 1m")
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return Token{}, "", fmt.Errorf("token: %w", err)
	}
	secret := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	hash := sha256.Sum256([]byte(secret))
	t := Token{ID: pg.NewID(), UserID: userID, CreatedAt: us.now()}
	if expiresIn > 0 {
		at := t.CreatedAt.Add(expiresIn)
		t.ExpiresAt = &at
	}
	err := pg.InTx(ctx, us.pool, func(tx pgx.Tx) error {
		var org *uuid.UUID
		err := tx.QueryRow(ctx, insertTokenSQL, t.ID, userID, hash[:], t.CreatedAt, t.ExpiresAt, a.Org(), a.Role == access.RoleSuperAdmin).Scan(&org)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("user: %w", access.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("insert token: %w", err)
		}
		return us.audit.Write(ctx, tx, a, audit.Entry{Action: "token.create", ObjectType: "token", ObjectID: t.ID.String(),
			Detail: map[string]any{"user_id": userID, "expires": t.ExpiresAt != nil}, OrgID: pg.Deref(org)})
	})
	if err != nil {
		return Token{}, "", err
	}
	return t, secret, nil
}

// ListTokens lists a user's tokens, newest first, never their secrets
// (admins only).
func (us *Service) ListTokens(ctx context.Context, a access.Actor, userID uuid.UUID) ([]Token, error) {
	if err := access.Require(a, access.RoleAdmin, access.RoleSuperAdmin); err != nil {
		return nil, err
	}
	var out []Token
	err := pg.InTx(ctx, us.pool, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, userExistsSQL, userID, a.Org(), a.Role == access.RoleSuperAdmin).Scan(&exists); err != nil {
			return fmt.Errorf("list tokens: %w", err)
		}
		if !exists {
			return fmt.Errorf("user: %w", access.ErrNotFound)
		}
		rows, err := tx.Query(ctx, listTokensSQL, userID)
		if err != nil {
			return fmt.Errorf("list tokens: %w", err)
		}
		if out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Token, error) {
			var t Token
			err := r.Scan(&t.ID, &t.UserID, &t.CreatedAt, &t.ExpiresAt, &t.RevokedAt)
			return t, err
		}); err != nil {
			return fmt.Errorf("list tokens: %w", err)
		}
		return us.audit.Write(ctx, tx, a, audit.Entry{Action: "token.list", ObjectType: "user", ObjectID: userID.String()})
	})
	return out, err
}

// RevokeToken revokes a token (admins only). Revoking a revoked token is a
// no-op.
func (us *Service) RevokeToken(ctx context.Context, a access.Actor, id uuid.UUID) error {
	if err := access.Require(a, access.RoleAdmin, access.RoleSuperAdmin); err != nil {
		return err
	}
	return pg.InTx(ctx, us.pool, func(tx pgx.Tx) error {
		var userID uuid.UUID
		err := tx.QueryRow(ctx, revokeTokenSQL, id, us.now(), a.Org(), a.Role == access.RoleSuperAdmin).Scan(&userID)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("token: %w", access.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("revoke token: %w", err)
		}
		return us.audit.Write(ctx, tx, a, audit.Entry{Action: "token.revoke", ObjectType: "token", ObjectID: id.String(),
			Detail: map[string]any{"user_id": userID}})
	})
}

// UserFilter selects users.
type UserFilter struct {
	Role   access.Role
	Query  string // a part of the name, case-insensitive
	Cursor string
	Limit  int
}

type userCursor struct {
	Name string    `json:"n"`
	ID   uuid.UUID `json:"i"`
}

func (c *userCursor) Valid() bool { return len(c.Name) <= check.MaxNameLen }

// ListUsers lists users by name (admins only).
func (us *Service) ListUsers(ctx context.Context, a access.Actor, f UserFilter) ([]User, string, error) {
	if err := access.Require(a, access.RoleAdmin, access.RoleSuperAdmin); err != nil {
		return nil, "", err
	}
	var v rpm.ValidationError
	if f.Role != "" && !f.Role.Valid() {
		v.Add("role", "must be admin, clinician, scheduler, patient or device")
	}
	afterName, afterID := decodeUserCursor(f.Cursor, &v)
	if err := v.OrNil(); err != nil {
		return nil, "", err
	}
	limit := pg.ClampLimit(f.Limit)
	var out []User
	err := pg.InTx(ctx, us.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, listUsersSQL, string(f.Role), likePattern(f.Query), afterName, afterID, limit+1, a.Org(), a.Role == access.RoleSuperAdmin)
		if err != nil {
			return fmt.Errorf("list users: %w", err)
		}
		if out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (User, error) { return scanUser(r) }); err != nil {
			return fmt.Errorf("list users: %w", err)
		}
		return us.audit.Write(ctx, tx, a, audit.Entry{Action: "user.list", ObjectType: "user", Detail: map[string]any{"count": len(out)}})
	})
	if err != nil {
		return nil, "", err
	}
	out, next := pg.Page(out, limit, func(last User) string { return pg.EncodeCursor(userCursor{Name: last.Name, ID: last.ID}) })
	return out, next, nil
}

// SetUserDisabled disables (or re-enables) a user (admins only): a disabled
// user's tokens stop working within a second on every process, and they are
// never paged. An admin cannot disable themselves.
func (us *Service) SetUserDisabled(ctx context.Context, a access.Actor, id uuid.UUID, disabled bool) (User, error) {
	if err := access.Require(a, access.RoleAdmin, access.RoleSuperAdmin); err != nil {
		return User{}, err
	}
	if disabled && id == a.UserID {
		return User{}, check.FieldError("disabled", "an admin cannot disable their own account")
	}
	var u User
	err := pg.InTx(ctx, us.pool, func(tx pgx.Tx) error {
		var at *time.Time
		if disabled {
			now := us.now()
			at = &now
		}
		var err error
		u, err = scanUser(tx.QueryRow(ctx, setUserDisabledSQL, id, at, a.Org(), a.Role == access.RoleSuperAdmin))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("user: %w", access.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("disable user: %w", err)
		}
		action := "user.enable"
		if disabled {
			action = "user.disable"
		}
		return us.audit.Write(ctx, tx, a, audit.Entry{Action: action, ObjectType: "user", ObjectID: id.String()})
	})
	return u, err
}

func scanUser(r pgx.Row) (User, error) {
	var u User
	err := r.Scan(&u.ID, &u.Name, &u.Role, &u.PatientID, &u.CreatedAt, &u.DisabledAt, &u.OIDCSubject, &u.OrgID)
	return u, err
}

// likePattern matches names containing q, case-insensitively ("" matches all).
// decodeUserCursor reads a cursor of a page of users by name: where the
// next page starts (nil, nil for the first), or a field error.
func decodeUserCursor(cursor string, v *rpm.ValidationError) (afterName *string, afterID *uuid.UUID) {
	if cursor == "" {
		return nil, nil
	}
	var cur userCursor
	if err := pg.DecodeCursor(cursor, &cur); err != nil {
		v.Add("cursor", "is not a cursor returned by this endpoint")
		return nil, nil
	}
	return &cur.Name, &cur.ID
}

func likePattern(q string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(q) + "%"
}
