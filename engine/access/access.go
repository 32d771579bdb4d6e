// Package access says who is asking: the Actor of every use case, its roles,
// and the errors that tell a caller what it may not do. An object outside the
// actor's scope is ErrNotFound, never ErrForbidden, so existence never leaks.
package access

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// Role is a user's role.
type Role string

// The roles of SPEC §9 and §15.
const (
	// RoleSuperAdmin is an operator: creates organisations and their first
	// admins, belongs to none and sees no PHI.
	RoleSuperAdmin Role = "super_admin"
	RoleAdmin      Role = "admin"
	RoleClinician  Role = "clinician"
	RoleScheduler  Role = "scheduler"
	RolePatient    Role = "patient"
	RoleDevice     Role = "device"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	switch r {
	case RoleSuperAdmin, RoleAdmin, RoleClinician, RoleScheduler, RolePatient, RoleDevice:
		return true
	}
	return false
}

// DefaultOrg is the id of the default organisation, into which a database
// from before organisations moved (migration 00025), and the organisation of
// the CLI's commands when none is named.
const DefaultOrg = "00000000-0000-0000-0000-000000000001"

// DefaultOrgID is DefaultOrg as a UUID.
func DefaultOrgID() uuid.UUID { return uuid.MustParse(DefaultOrg) }

// Actor is the authenticated caller of a use case.
type Actor struct {
	UserID uuid.UUID
	Role   Role
	// PatientID is the patient a patient or device user acts for.
	PatientID uuid.UUID
	// OrgID is the actor's organisation: uuid.Nil for an operator
	// (RoleSuperAdmin) and for Tend itself (System), which act across
	// organisations.
	OrgID uuid.UUID
	// RequestID correlates audit entries with the request that caused them.
	RequestID string
}

// Is reports whether the actor has one of roles.
func (a Actor) Is(roles ...Role) bool {
	for _, r := range roles {
		if a.Role == r {
			return true
		}
	}
	return false
}

// HomeOrg is the organisation what the actor creates belongs to: its own,
// or the default organisation for Tend itself (the CLI, the demo).
func (a Actor) HomeOrg() uuid.UUID {
	if a.OrgID == uuid.Nil {
		return DefaultOrgID()
	}
	return a.OrgID
}

// Org is the actor's organisation as a query parameter: nil (any
// organisation) for Tend itself and an operator.
func (a Actor) Org() *uuid.UUID {
	if a.OrgID == uuid.Nil {
		return nil
	}
	return &a.OrgID
}

// System returns the actor for work Tend does on its own (jobs, the CLI);
// reason becomes the audit entries' request id.
func System(reason string) Actor { return Actor{Role: RoleAdmin, RequestID: reason} }

// IsSystem reports whether a is Tend itself (System), not a user: it acts
// with an admin's scope, and the audit trail records it as "system".
func (a Actor) IsSystem() bool { return a.UserID == uuid.Nil && a.Role == RoleAdmin }

// Errors returned by the engine; api maps them to HTTP statuses.
var (
	// ErrNotFound: the object does not exist or is outside the actor's scope.
	ErrNotFound = errors.New("not found")
	// ErrForbidden: the actor's role may not perform the action at all.
	ErrForbidden = errors.New("forbidden")
	// ErrConflict: the action conflicts with the object's current state.
	ErrConflict = errors.New("conflict")
	// ErrUnauthenticated: the credential is missing, unknown, expired or revoked.
	ErrUnauthenticated = errors.New("unauthenticated")
)

// Require returns ErrForbidden unless the actor has one of roles.
func Require(a Actor, roles ...Role) error {
	if a.Is(roles...) {
		return nil
	}
	return fmt.Errorf("role %s: %w", a.Role, ErrForbidden)
}
