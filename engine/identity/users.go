package identity

import (
	"context"
	"crypto/sha256"
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

// User is a person or device that calls the API.
type User struct {
	ID        uuid.UUID   `json:"id"`
	Name      string      `json:"name"`
	Role      access.Role `json:"role"`
	PatientID *uuid.UUID  `json:"patient_id,omitempty"`
	CreatedAt time.Time   `json:"created_at"`
	// DisabledAt is when the user was disabled; null while enabled.
	DisabledAt *time.Time `json:"disabled_at"`
	// OIDCSubject is the OpenID Connect subject that signs in as this user
	// (single sign-on), when an admin has mapped one.
	OIDCSubject *string `json:"oidc_subject,omitempty"`
	// OrgID is the user's organisation (null for an operator).
	OrgID *uuid.UUID `json:"org_id"`
}

// NewUser is the input of CreateUser.
type NewUser struct {
	Name      string
	Role      access.Role
	PatientID uuid.UUID // required for patient and device users
	// OrgID is the organisation of the new user: an operator's choice (it
	// creates admins only), or Tend itself's (the CLI); an admin's users are
	// in the admin's organisation, and naming another is refused. uuid.Nil:
	// the actor's (the default organisation for Tend itself).
	OrgID uuid.UUID
}

// CreateUser creates a user: admins in their organisation, an operator
// (super_admin) an organisation's admins, Tend itself anyone, operators
// included.
func (us *Service) CreateUser(ctx context.Context, a access.Actor, in NewUser) (User, error) {
	if err := access.Require(a, access.RoleAdmin, access.RoleSuperAdmin); err != nil {
		return User{}, err
	}
	var v rpm.ValidationError
	check.Name(&v, "name", in.Name)
	org := a.HomeOrg()
	switch {
	case a.Role == access.RoleSuperAdmin && in.OrgID == uuid.Nil:
		v.Add("org_id", "is required: the organisation of the new admin")
	case in.OrgID != uuid.Nil && a.OrgID != uuid.Nil && in.OrgID != a.OrgID:
		v.Add("org_id", "no such organisation")
	case in.OrgID != uuid.Nil:
		org = in.OrgID
	}
	switch {
	case in.Role == "":
		v.Add("role", "is required")
	case in.Role == access.RoleSuperAdmin && a.IsSystem():
		if in.OrgID != uuid.Nil {
			v.Add("org_id", "must not be set for role super_admin: an operator belongs to no organisation")
		}
	case a.Role == access.RoleSuperAdmin && in.Role != access.RoleAdmin:
		v.Add("role", "must be admin: an operator creates an organisation's admins, who create everyone else")
	case !in.Role.Valid() || in.Role == access.RoleSuperAdmin:
		v.Add("role", "must be one of admin, clinician, scheduler, patient, device")
	case (in.Role == access.RolePatient || in.Role == access.RoleDevice) && in.PatientID == uuid.Nil:
		v.Add("patient_id", fmt.Sprintf("is required for role %s", in.Role))
	case in.Role != access.RolePatient && in.Role != access.RoleDevice && in.PatientID != uuid.Nil:
		v.Add("patient_id", fmt.Sprintf("must not be set for role %s", in.Role))
	}
	if err := v.OrNil(); err != nil {
		return User{}, err
	}
	u := User{ID: pg.NewID(), Name: in.Name, Role: in.Role, CreatedAt: us.now()}
	if in.PatientID != uuid.Nil {
		u.PatientID = &in.PatientID
	}
	var orgParam *uuid.UUID
	if in.Role != access.RoleSuperAdmin {
		orgParam = &org
	}
	err := pg.InTx(ctx, us.pool, func(tx pgx.Tx) error {
		if u.PatientID != nil {
			var ok bool
			if err := tx.QueryRow(ctx, patientExistsSQL, u.PatientID, a.Org()).Scan(&ok); err != nil {
				return fmt.Errorf("check patient: %w", err)
			}
			if !ok {
				return check.FieldError("patient_id", "no such patient")
			}
		}
		if orgParam != nil && u.PatientID == nil {
			var ok bool
			if err := tx.QueryRow(ctx, orgExistsSQL, org).Scan(&ok); err != nil {
				return fmt.Errorf("check organisation: %w", err)
			}
			if !ok {
				return check.FieldError("org_id", "no such organisation")
			}
		}
		if err := tx.QueryRow(ctx, insertUserSQL, u.ID, u.Name, u.Role, u.PatientID, u.CreatedAt, orgParam).Scan(&u.OrgID); err != nil {
			return fmt.Errorf("insert user: %w", err)
		}
		return us.audit.Write(ctx, tx, a, audit.Entry{Action: "user.create", PatientID: pg.Deref(u.PatientID), ObjectType: "user", ObjectID: u.ID.String(),
			OrgID: pg.Deref(u.OrgID)})
	})
	return u, err
}

// tokenPrefix marks Tend tokens so secret scanners can recognise them.
const tokenPrefix = "tend_"

// CreateToken issues a new bearer token for a user that does not expire
// (admins only). The token is returned once; only its SHA-256 hash is stored.
func (us *Service) CreateToken(ctx context.Context, a access.Actor, userID uuid.UUID) (string, error) {
	_, secret, err := us.IssueToken(ctx, a, userID, 0)
	return secret, err
}

// Authenticate resolves a bearer token to its actor. It returns
// access.ErrUnauthenticated for unknown, revoked or expired tokens. Successful
// lookups are remembered for Config.AuthCacheTTL, so a revocation takes
// effect within that time.
func (us *Service) Authenticate(ctx context.Context, token string) (access.Actor, error) {
	if us.oidc != nil && !strings.HasPrefix(token, tokenPrefix) && strings.Count(token, ".") == 2 {
		return us.authenticateOIDC(ctx, token)
	}
	if !strings.HasPrefix(token, tokenPrefix) || len(token) > 100 {
		return access.Actor{}, access.ErrUnauthenticated
	}
	hash := sha256.Sum256([]byte(token))
	now := us.now()
	if a, ok := us.auth.get(hash, now); ok {
		return a, nil
	}
	a, err := us.lookupToken(ctx, hash)
	if err != nil {
		return access.Actor{}, err
	}
	us.auth.put(hash, a, now, true)
	return a, nil
}

func (us *Service) lookupToken(ctx context.Context, hash [32]byte) (access.Actor, error) {
	var a access.Actor
	var patient, org *uuid.UUID
	err := us.pool.QueryRow(ctx, lookupTokenSQL, hash[:], us.now()).Scan(&a.UserID, &a.Role, &patient, &org)
	if errors.Is(err, pgx.ErrNoRows) {
		return access.Actor{}, access.ErrUnauthenticated
	}
	if err != nil {
		return access.Actor{}, fmt.Errorf("authenticate: %w", err)
	}
	a.PatientID, a.OrgID = pg.Deref(patient), pg.Deref(org)
	return a, nil
}

// EndedTokens returns the SHA-256 hashes of the tokens that stopped working
// since the given time: revoked, expired, or whose user was disabled. A
// listener holding connections open (MQTT) polls it to close them within a
// second of a revocation, without a lookup per connection. The hashes are
// those of the token strings, as sha256.Sum256([]byte(token)).
func (us *Service) EndedTokens(ctx context.Context, since time.Time) ([][32]byte, error) {
	rows, err := us.pool.Query(ctx, endedTokensSQL, since, us.now())
	if err != nil {
		return nil, fmt.Errorf("ended tokens: %w", err)
	}
	hashes, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([32]byte, error) {
		var b []byte
		var h [32]byte
		if err := r.Scan(&b); err != nil {
			return h, err
		}
		copy(h[:], b)
		return h, nil
	})
	if err != nil {
		return nil, fmt.Errorf("ended tokens: %w", err)
	}
	return hashes, nil
}
