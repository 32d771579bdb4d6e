package care

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/check"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/presence"
	"github.com/tendhealth/tend/engine/internal/scope"
	"github.com/tendhealth/tend/engine/internal/thread"
	"github.com/tendhealth/tend/rpm"
)

// CareTeam is a group of clinicians and schedulers responsible for patients.
type CareTeam struct {
	ID         uuid.UUID         `json:"id"`
	Name       string            `json:"name"`
	Members    []TeamMember      `json:"members"`
	Escalation *EscalationPolicy `json:"escalation,omitempty"`
	// Timezone is the IANA zone of the on-call rota (default: the
	// organisation's).
	Timezone string `json:"timezone"`
	// OnCall is the weekly on-call rota, in Timezone.
	OnCall    []OnCallSlot `json:"on_call"`
	CreatedAt time.Time    `json:"created_at"`
	UpdatedAt time.Time    `json:"updated_at"`
}

// TeamMember is a user's membership of a care team.
type TeamMember struct {
	UserID uuid.UUID `json:"user_id"`
	Role   string    `json:"role"` // clinician, lead or scheduler
	// Name is the member's name in answers (ignored on input), so that a
	// client can offer people by name.
	Name string `json:"name,omitempty"`
	// Presence is the member's presence, in GET /v1/care-teams/{id} for a
	// reader who belongs to the team (ignored on input).
	Presence *presence.Presence `json:"presence,omitempty"`
}

// NewCareTeam is the input of CreateCareTeam. MemberIDs join as clinicians.
type NewCareTeam struct {
	Name       string
	MemberIDs  []uuid.UUID
	Members    []TeamMember
	Escalation *EscalationInput
	// Timezone defaults to the organisation's; OnCall to no rota.
	Timezone string
	OnCall   []OnCallSlot
}

// CreateCareTeam creates a care team with its members (admins only).
func (cr *Service) CreateCareTeam(ctx context.Context, a access.Actor, in NewCareTeam) (CareTeam, error) {
	if err := access.Require(a, access.RoleAdmin); err != nil {
		return CareTeam{}, err
	}
	var v rpm.ValidationError
	check.Name(&v, "name", in.Name)
	members := teamMembers(&v, in.MemberIDs, in.Members)
	policy := in.Escalation.Policy(&v, "escalation")
	tz := checkTeamZone(&v, in.Timezone)
	onCall := checkOnCall(&v, in.OnCall, members)
	if err := v.OrNil(); err != nil {
		return CareTeam{}, err
	}
	now := cr.now()
	t := CareTeam{ID: pg.NewID(), Name: in.Name, Members: members, Escalation: policy, Timezone: tz, OnCall: onCall,
		CreatedAt: now, UpdatedAt: now}
	err := pg.InTx(ctx, cr.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, insertCareTeamSQL, t.ID, t.Name, t.Escalation, t.CreatedAt, t.Timezone, t.OnCall, a.HomeOrg()).Scan(&t.Timezone)
		if err != nil {
			return fmt.Errorf("insert care team: %w", err)
		}
		if err := storeMembers(ctx, tx, t.ID, members, len(in.MemberIDs)); err != nil {
			return err
		}
		if err := thread.CreateTeamThread(ctx, tx, t.ID, now); err != nil {
			return err
		}
		return cr.audit.Write(ctx, tx, a, audit.Entry{Action: "care_team.create", ObjectType: "care_team", ObjectID: t.ID.String()})
	})
	return t, err
}

// teamMembers checks and merges member_ids (clinicians) and members.
func teamMembers(v *rpm.ValidationError, memberIDs []uuid.UUID, in []TeamMember) []TeamMember {
	members := make([]TeamMember, 0, len(memberIDs)+len(in))
	seen := map[uuid.UUID]bool{}
	for i, id := range memberIDs {
		if seen[id] {
			v.Add(fmt.Sprintf("member_ids[%d]", i), "is listed twice")
		}
		seen[id] = true
		members = append(members, TeamMember{UserID: id, Role: "clinician"})
	}
	for i, m := range in {
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
	return members
}

// storeMembers adds members to team (the first implicit of them listed in
// member_ids), after checking that only staff join, in a team role that fits
// their user role: anything else is reported by index. It fixes each
// member's stored role in members.
func storeMembers(ctx context.Context, tx pgx.Tx, team uuid.UUID, members []TeamMember, implicit int) error {
	if len(members) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, len(members))
	roles := make([]string, len(members))
	for i, m := range members {
		ids[i], roles[i] = m.UserID, m.Role
	}
	rows, err := tx.Query(ctx, memberRolesSQL, ids, team)
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
			v.Add(memberField(implicit, i), "no such clinician, scheduler or admin user")
			continue
		}
		role, reason := teamRoleFor(access.Role(*ur), members[i].Role, i < implicit)
		if reason != "" {
			v.Add(memberField(implicit, i), reason)
		}
		roles[i], members[i].Role = role, role
	}
	if err := v.OrNil(); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, insertMembersSQL, team, ids, roles); err != nil {
		return fmt.Errorf("insert members: %w", err)
	}
	return nil
}

// teamRoleFor checks that a user of role userRole may hold teamRole in a
// care team, and returns the team role to store. Listed in member_ids
// (implicit), a member takes the role that fits their user: schedulers
// schedule, clinicians and admins are clinicians. Clinicians and leads must
// be clinician (or admin) users, since they are paged for alerts they must be
// able to open; patients and devices never join a team.
func teamRoleFor(userRole access.Role, teamRole string, implicit bool) (string, string) {
	switch userRole {
	case access.RoleClinician, access.RoleAdmin:
		return teamRole, ""
	case access.RoleScheduler:
		if implicit || teamRole == "scheduler" {
			return "scheduler", ""
		}
		return teamRole, "a scheduler user can only be a team's scheduler, not its " + teamRole
	}
	return teamRole, "no such clinician, scheduler or admin user"
}

func memberField(implicit, i int) string {
	if i < implicit {
		return fmt.Sprintf("member_ids[%d]", i)
	}
	return fmt.Sprintf("members[%d].user_id", i-implicit)
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
	// Restricted: processing is restricted (GDPR article 18): readings are
	// stored but no rule runs, no alert, retake or reminder follows.
	Restricted bool `json:"restricted"`
	// Erased: the patient's personal data was erased; what is kept is
	// pseudonymised (docs/data-rights.md).
	Erased bool `json:"erased"`
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
func (cr *Service) CreatePatient(ctx context.Context, a access.Actor, in NewPatient) (Patient, error) {
	if err := access.Require(a, access.RoleAdmin, access.RoleClinician); err != nil {
		return Patient{}, err
	}
	var v rpm.ValidationError
	checkPatient(&v, in)
	if err := v.OrNil(); err != nil {
		return Patient{}, err
	}
	now := cr.now()
	p := Patient{ID: pg.NewID(), DisplayName: in.DisplayName, Timezone: in.Timezone, CareTeamID: in.CareTeamID,
		Programs: check.Dedupe(in.Programs), EnrolledAt: now, CreatedAt: now}
	if in.ExternalID != "" {
		p.ExternalID = &in.ExternalID
	}
	err := pg.InTx(ctx, cr.pool, func(tx pgx.Tx) error {
		var ok bool
		if err := tx.QueryRow(ctx, teamInScopeSQL, p.CareTeamID, a.Role, a.UserID).Scan(&ok); err != nil {
			return fmt.Errorf("check care team: %w", err)
		}
		if !ok {
			return check.FieldError("care_team_id", "no such care team")
		}
		_, err := tx.Exec(ctx, insertPatientSQL, p.ID, p.DisplayName, p.Timezone, p.CareTeamID, p.Programs, p.ExternalID, now)
		if pg.IsUniqueViolation(err) {
			return check.FieldError("external_id", "is already used by another patient")
		}
		if err != nil {
			return fmt.Errorf("insert patient: %w", err)
		}
		if err := thread.CreatePatientThreads(ctx, tx, p.ID, p.CareTeamID, now); err != nil {
			return err
		}
		return cr.audit.Write(ctx, tx, a, audit.Entry{Action: "patient.create", PatientID: p.ID, ObjectType: "patient", ObjectID: p.ID.String()})
	})
	return p, err
}

// GetPatient returns a patient in the actor's scope.
func (cr *Service) GetPatient(ctx context.Context, a access.Actor, id uuid.UUID) (Patient, error) {
	var p Patient
	err := pg.InTx(ctx, cr.pool, func(tx pgx.Tx) error {
		if _, err := scope.OfPatient(ctx, tx, a, id); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, getPatientSQL, id).Scan(&p.ID, &p.DisplayName, &p.Timezone, &p.CareTeamID, &p.Programs, &p.ExternalID,
			&p.EnrolledAt, &p.CreatedAt, &p.Restricted, &p.Erased); err != nil {
			return fmt.Errorf("get patient: %w", err)
		}
		return cr.audit.Write(ctx, tx, a, audit.Entry{Action: "patient.read", PatientID: id, ObjectType: "patient", ObjectID: id.String()})
	})
	return p, err
}
