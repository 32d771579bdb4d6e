package engine

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/rpm"
)

// User is a person or device that calls the API.
type User struct {
	ID        uuid.UUID  `json:"id"`
	Name      string     `json:"name"`
	Role      Role       `json:"role"`
	PatientID *uuid.UUID `json:"patient_id,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}

// NewUser is the input of CreateUser.
type NewUser struct {
	Name      string
	Role      Role
	PatientID uuid.UUID // required for patient and device users
}

// maxNameLen bounds user, team and patient names.
const maxNameLen = 200

// CreateUser creates a user (admins only).
func (e *Engine) CreateUser(ctx context.Context, a Actor, in NewUser) (User, error) {
	if err := forbid(a, RoleAdmin); err != nil {
		return User{}, err
	}
	var v rpm.ValidationError
	checkName(&v, "name", in.Name)
	switch {
	case in.Role == "":
		v.Add("role", "is required")
	case !in.Role.Valid():
		v.Add("role", "must be one of admin, clinician, scheduler, patient, device")
	case (in.Role == RolePatient || in.Role == RoleDevice) && in.PatientID == uuid.Nil:
		v.Add("patient_id", fmt.Sprintf("is required for role %s", in.Role))
	case in.Role != RolePatient && in.Role != RoleDevice && in.PatientID != uuid.Nil:
		v.Add("patient_id", fmt.Sprintf("must not be set for role %s", in.Role))
	}
	if err := v.OrNil(); err != nil {
		return User{}, err
	}
	u := User{ID: newID(), Name: in.Name, Role: in.Role, CreatedAt: e.now()}
	if in.PatientID != uuid.Nil {
		u.PatientID = &in.PatientID
	}
	err := e.inTx(ctx, func(tx pgx.Tx) error {
		if u.PatientID != nil {
			var ok bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM patients WHERE id = $1)`, u.PatientID).Scan(&ok); err != nil {
				return fmt.Errorf("check patient: %w", err)
			}
			if !ok {
				return fieldError("patient_id", "no such patient")
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO users (id, name, role, patient_id, created_at) VALUES ($1, $2, $3, $4, $5)`,
			u.ID, u.Name, u.Role, u.PatientID, u.CreatedAt); err != nil {
			return fmt.Errorf("insert user: %w", err)
		}
		return e.audit(ctx, tx, a, Audit{Action: "user.create", PatientID: deref(u.PatientID), ObjectType: "user", ObjectID: u.ID.String()})
	})
	return u, err
}

// tokenPrefix marks Tend tokens so secret scanners can recognise them.
const tokenPrefix = "tend_"

// CreateToken issues a new bearer token for a user (admins only). The token is
// returned once; only its SHA-256 hash is stored.
func (e *Engine) CreateToken(ctx context.Context, a Actor, userID uuid.UUID) (string, error) {
	if err := forbid(a, RoleAdmin); err != nil {
		return "", err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	hash := sha256.Sum256([]byte(token))
	err := e.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO tokens (id, user_id, hash, created_at)
			SELECT $1, id, $3, $4 FROM users WHERE id = $2 AND disabled_at IS NULL`, newID(), userID, hash[:], e.now())
		if err != nil {
			return fmt.Errorf("insert token: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("user: %w", ErrNotFound)
		}
		return e.audit(ctx, tx, a, Audit{Action: "token.create", ObjectType: "user", ObjectID: userID.String()})
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// Authenticate resolves a bearer token to its actor. It returns
// ErrUnauthenticated for unknown, revoked or expired tokens. Successful
// lookups are remembered for Config.AuthCacheTTL, so a revocation takes
// effect within that time.
func (e *Engine) Authenticate(ctx context.Context, token string) (Actor, error) {
	if !strings.HasPrefix(token, tokenPrefix) || len(token) > 100 {
		return Actor{}, ErrUnauthenticated
	}
	hash := sha256.Sum256([]byte(token))
	now := e.now()
	if a, ok := e.auth.get(hash, now); ok {
		return a, nil
	}
	a, err := e.lookupToken(ctx, hash)
	if err != nil {
		return Actor{}, err
	}
	e.auth.put(hash, a, now)
	return a, nil
}

func (e *Engine) lookupToken(ctx context.Context, hash [32]byte) (Actor, error) {
	var a Actor
	var patient *uuid.UUID
	err := e.pool.QueryRow(ctx, `SELECT u.id, u.role, u.patient_id FROM tokens t JOIN users u ON u.id = t.user_id
		WHERE t.hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2) AND u.disabled_at IS NULL`,
		hash[:], e.now()).Scan(&a.UserID, &a.Role, &patient)
	if errors.Is(err, pgx.ErrNoRows) {
		return Actor{}, ErrUnauthenticated
	}
	if err != nil {
		return Actor{}, fmt.Errorf("authenticate: %w", err)
	}
	a.PatientID = deref(patient)
	return a, nil
}

// CareTeam is a group of clinicians and schedulers responsible for patients.
type CareTeam struct {
	ID         uuid.UUID      `json:"id"`
	Name       string         `json:"name"`
	Members    []TeamMember   `json:"members"`
	Escalation map[string]any `json:"escalation,omitempty"`
	CreatedAt  time.Time      `json:"created_at"`
}

// TeamMember is a user's membership of a care team.
type TeamMember struct {
	UserID uuid.UUID `json:"user_id"`
	Role   string    `json:"role"` // clinician, lead or scheduler
}

// NewCareTeam is the input of CreateCareTeam. MemberIDs join as clinicians.
type NewCareTeam struct {
	Name       string
	MemberIDs  []uuid.UUID
	Members    []TeamMember
	Escalation map[string]any
}

// CreateCareTeam creates a care team with its members (admins only).
func (e *Engine) CreateCareTeam(ctx context.Context, a Actor, in NewCareTeam) (CareTeam, error) {
	if err := forbid(a, RoleAdmin); err != nil {
		return CareTeam{}, err
	}
	var v rpm.ValidationError
	checkName(&v, "name", in.Name)
	members := make([]TeamMember, 0, len(in.MemberIDs)+len(in.Members))
	seen := map[uuid.UUID]bool{}
	for i, id := range in.MemberIDs {
		if seen[id] {
			v.Add(fmt.Sprintf("member_ids[%d]", i), "is listed twice")
		}
		seen[id] = true
		members = append(members, TeamMember{UserID: id, Role: "clinician"})
	}
	for i, m := range in.Members {
		if !slices.Contains([]string{"clinician", "lead", "scheduler"}, m.Role) {
			v.Add(fmt.Sprintf("members[%d].role", i), "must be clinician, lead or scheduler")
		}
		if seen[m.UserID] {
			v.Add(fmt.Sprintf("members[%d].user_id", i), "is listed twice")
		}
		seen[m.UserID] = true
		members = append(members, m)
	}
	if len(members) > 500 {
		v.Add("member_ids", "a team has at most 500 members")
	}
	if err := v.OrNil(); err != nil {
		return CareTeam{}, err
	}
	t := CareTeam{ID: newID(), Name: in.Name, Members: members, Escalation: in.Escalation, CreatedAt: e.now()}
	err := e.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO care_teams (id, name, escalation, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)`,
			t.ID, t.Name, t.Escalation, t.CreatedAt); err != nil {
			return fmt.Errorf("insert care team: %w", err)
		}
		if len(members) > 0 {
			ids := make([]uuid.UUID, len(members))
			roles := make([]string, len(members))
			for i, m := range members {
				ids[i], roles[i] = m.UserID, m.Role
			}
			// Only staff may join a team, in a team role that fits their user
			// role: anything else is reported by index.
			rows, err := tx.Query(ctx, `SELECT x.i - 1, u.role FROM unnest($1::uuid[]) WITH ORDINALITY AS x(id, i)
				LEFT JOIN users u ON u.id = x.id AND u.disabled_at IS NULL ORDER BY x.i`, ids)
			if err != nil {
				return fmt.Errorf("check members: %w", err)
			}
			userRoles, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*string, error) {
				var i int
				var role *string
				err := r.Scan(&i, &role)
				return role, err
			})
			if err != nil {
				return fmt.Errorf("check members: %w", err)
			}
			var v rpm.ValidationError
			for i, ur := range userRoles {
				if ur == nil {
					v.Add(memberField(in, i), "no such clinician, scheduler or admin user")
					continue
				}
				role, reason := teamRoleFor(Role(*ur), members[i].Role, i < len(in.MemberIDs))
				if reason != "" {
					v.Add(memberField(in, i), reason)
				}
				roles[i], members[i].Role = role, role
			}
			if err := v.OrNil(); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO care_team_members (care_team_id, user_id, role)
				SELECT $1, id, role FROM unnest($2::uuid[], $3::text[]) AS x(id, role)`, t.ID, ids, roles); err != nil {
				return fmt.Errorf("insert members: %w", err)
			}
		}
		return e.audit(ctx, tx, a, Audit{Action: "care_team.create", ObjectType: "care_team", ObjectID: t.ID.String()})
	})
	return t, err
}

// teamRoleFor checks that a user of role userRole may hold teamRole in a
// care team, and returns the team role to store. Listed in member_ids
// (implicit), a member takes the role that fits their user: schedulers
// schedule, clinicians and admins are clinicians. Clinicians and leads must
// be clinician (or admin) users, since they are paged for alerts they must be
// able to open; patients and devices never join a team.
func teamRoleFor(userRole Role, teamRole string, implicit bool) (string, string) {
	switch userRole {
	case RoleClinician, RoleAdmin:
		return teamRole, ""
	case RoleScheduler:
		if implicit || teamRole == "scheduler" {
			return "scheduler", ""
		}
		return teamRole, "a scheduler user can only be a team's scheduler, not its " + teamRole
	}
	return teamRole, "no such clinician, scheduler or admin user"
}

func memberField(in NewCareTeam, i int) string {
	if i < len(in.MemberIDs) {
		return fmt.Sprintf("member_ids[%d]", i)
	}
	return fmt.Sprintf("members[%d].user_id", i-len(in.MemberIDs))
}

// Patient is a person enrolled in remote monitoring.
type Patient struct {
	ID          uuid.UUID `json:"id"`
	DisplayName string    `json:"display_name"`
	Timezone    string    `json:"timezone"`
	CareTeamID  uuid.UUID `json:"care_team_id"`
	Programs    []string  `json:"programs"`
	ExternalID  *string   `json:"external_id,omitempty"`
	EnrolledAt  time.Time `json:"enrolled_at"`
	CreatedAt   time.Time `json:"created_at"`
}

// NewPatient is the input of CreatePatient.
type NewPatient struct {
	DisplayName string
	Timezone    string
	CareTeamID  uuid.UUID
	Programs    []string
	ExternalID  string
}

// CreatePatient enrols a patient in a care team. Admins may use any team,
// clinicians only their own.
func (e *Engine) CreatePatient(ctx context.Context, a Actor, in NewPatient) (Patient, error) {
	if err := forbid(a, RoleAdmin, RoleClinician); err != nil {
		return Patient{}, err
	}
	var v rpm.ValidationError
	checkName(&v, "display_name", in.DisplayName)
	if in.Timezone == "" {
		v.Add("timezone", "is required (IANA time zone such as America/Chicago)")
	} else if _, err := loadZone(in.Timezone); err != nil {
		v.Add("timezone", "is not a known IANA time zone")
	}
	if in.CareTeamID == uuid.Nil {
		v.Add("care_team_id", "is required")
	}
	for i, p := range in.Programs {
		if !rpm.ValidProgram(p) {
			v.Add(fmt.Sprintf("programs[%d]", i), "must be one of "+strings.Join(rpm.Programs(), ", "))
		}
	}
	if len(in.ExternalID) > 200 {
		v.Add("external_id", "is longer than 200 characters")
	}
	if err := v.OrNil(); err != nil {
		return Patient{}, err
	}
	now := e.now()
	p := Patient{ID: newID(), DisplayName: in.DisplayName, Timezone: in.Timezone, CareTeamID: in.CareTeamID,
		Programs: dedupe(in.Programs), EnrolledAt: now, CreatedAt: now}
	if in.ExternalID != "" {
		p.ExternalID = &in.ExternalID
	}
	err := e.inTx(ctx, func(tx pgx.Tx) error {
		var ok bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM care_teams t WHERE t.id = $1 AND ($2 = 'admin'
			OR EXISTS (SELECT 1 FROM care_team_members m WHERE m.care_team_id = t.id AND m.user_id = $3)))`,
			p.CareTeamID, a.Role, a.UserID).Scan(&ok); err != nil {
			return fmt.Errorf("check care team: %w", err)
		}
		if !ok {
			return fieldError("care_team_id", "no such care team")
		}
		_, err := tx.Exec(ctx, `INSERT INTO patients (id, display_name, timezone, care_team_id, programs, external_id, enrolled_at, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, p.ID, p.DisplayName, p.Timezone, p.CareTeamID, p.Programs, p.ExternalID, now)
		if isUniqueViolation(err) {
			return fieldError("external_id", "is already used by another patient")
		}
		if err != nil {
			return fmt.Errorf("insert patient: %w", err)
		}
		return e.audit(ctx, tx, a, Audit{Action: "patient.create", PatientID: p.ID, ObjectType: "patient", ObjectID: p.ID.String()})
	})
	return p, err
}

// GetPatient returns a patient in the actor's scope.
func (e *Engine) GetPatient(ctx context.Context, a Actor, id uuid.UUID) (Patient, error) {
	var p Patient
	err := e.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := scopePatient(ctx, tx, a, id); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT id, display_name, timezone, care_team_id, programs, external_id, enrolled_at, created_at
			FROM patients WHERE id = $1`, id).Scan(&p.ID, &p.DisplayName, &p.Timezone, &p.CareTeamID, &p.Programs, &p.ExternalID,
			&p.EnrolledAt, &p.CreatedAt); err != nil {
			return fmt.Errorf("get patient: %w", err)
		}
		return e.audit(ctx, tx, a, Audit{Action: "patient.read", PatientID: id, ObjectType: "patient", ObjectID: id.String()})
	})
	return p, err
}

// patientScope is what ingest and routing need to know of a patient in scope.
type patientScope struct {
	CareTeamID uuid.UUID
	Programs   []string
	EnrolledAt time.Time
}

const scopeSQL = `SELECT p.care_team_id, p.programs, p.enrolled_at FROM patients p WHERE p.id = $1 AND (
	$2 = 'admin'
	OR ($2 IN ('patient', 'device') AND p.id = $3)
	OR ($2 IN ('clinician', 'scheduler') AND EXISTS (
		SELECT 1 FROM care_team_members m WHERE m.care_team_id = p.care_team_id AND m.user_id = $4)))`

// scopePatient loads a patient if the actor may see it; otherwise
// ErrNotFound, so that existence does not leak.
func scopePatient(ctx context.Context, q pgx.Tx, a Actor, id uuid.UUID) (patientScope, error) {
	var s patientScope
	err := q.QueryRow(ctx, scopeSQL, id, a.Role, a.PatientID, a.UserID).Scan(&s.CareTeamID, &s.Programs, &s.EnrolledAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, fmt.Errorf("patient: %w", ErrNotFound)
	}
	if err != nil {
		return s, fmt.Errorf("patient scope: %w", err)
	}
	return s, nil
}

func checkName(v *rpm.ValidationError, field, name string) {
	switch {
	case strings.TrimSpace(name) == "":
		v.Add(field, "is required")
	case len(name) > maxNameLen:
		v.Add(field, fmt.Sprintf("is longer than %d characters", maxNameLen))
	}
}

func fieldError(field, reason string) error {
	return &rpm.ValidationError{Fields: []rpm.FieldError{{Field: field, Reason: reason}}}
}

func newID() uuid.UUID { return uuid.Must(uuid.NewV7()) }

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

func dedupe(s []string) []string {
	out := make([]string, 0, len(s))
	for _, x := range s {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}
