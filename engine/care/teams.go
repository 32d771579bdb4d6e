package care

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/check"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/rota"
	"github.com/tendhealth/tend/rpm"
)

// OnCallSlot is one weekly slot of a team's on-call rota: a clinician or
// lead of the team, a weekday (monday … sunday) and a start and end time
// "HH:MM" in the team's zone; an end at or before the start runs past
// midnight.
type OnCallSlot = rota.Slot

// MaxTeams bounds the teams ListCareTeams returns.
const MaxTeams = 1000

// checkTeamZone returns the team's zone name ("" when empty: the
// organisation's), adding a field error on timezone when it is not an IANA
// zone.
func checkTeamZone(v *rpm.ValidationError, tz string) string {
	if tz == "" {
		return ""
	}
	if _, err := check.LoadZone(tz); err != nil {
		v.Add("timezone", "is not a known IANA time zone (such as America/Chicago)")
	}
	return tz
}

// checkOnCall checks a rota against the team's members: only clinicians and
// leads may be on call. It returns the normalised rota (never nil).
func checkOnCall(v *rpm.ValidationError, slots []OnCallSlot, members []TeamMember) []OnCallSlot {
	rota.Check(v, "on_call", slots, func(id uuid.UUID) bool {
		for _, m := range members {
			if m.UserID == id {
				return m.Role == "clinician" || m.Role == "lead"
			}
		}
		return false
	})
	return rota.Normalize(slots)
}

// scanTeam reads a row of teamColumns.
func scanTeam(r pgx.Row) (CareTeam, error) {
	var t CareTeam
	err := r.Scan(&t.ID, &t.Name, &t.Escalation, &t.Timezone, &t.OnCall, &t.CreatedAt, &t.UpdatedAt, &t.Members)
	if t.OnCall == nil {
		t.OnCall = []OnCallSlot{}
	}
	return t, err
}

// ListCareTeams returns the care teams the actor belongs to (admins: every
// team, at most MaxTeams), by name.
func (cr *Service) ListCareTeams(ctx context.Context, a access.Actor) ([]CareTeam, error) {
	if err := access.Require(a, access.RoleAdmin, access.RoleClinician, access.RoleScheduler); err != nil {
		return nil, err
	}
	rows, err := cr.pool.Query(ctx, listTeamsSQL, a.Role, a.UserID, MaxTeams)
	if err != nil {
		return nil, fmt.Errorf("list care teams: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (CareTeam, error) { return scanTeam(r) })
	if err != nil {
		return nil, fmt.Errorf("list care teams: %w", err)
	}
	return out, nil
}

// GetCareTeam returns a care team the actor belongs to (admins: any).
func (cr *Service) GetCareTeam(ctx context.Context, a access.Actor, id uuid.UUID) (CareTeam, error) {
	if err := access.Require(a, access.RoleAdmin, access.RoleClinician, access.RoleScheduler); err != nil {
		return CareTeam{}, fmt.Errorf("care team: %w", access.ErrNotFound)
	}
	t, err := scanTeam(cr.pool.QueryRow(ctx, getTeamSQL, a.Role, a.UserID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return CareTeam{}, fmt.Errorf("care team: %w", access.ErrNotFound)
	}
	if err != nil {
		return CareTeam{}, fmt.Errorf("get care team: %w", err)
	}
	if err := cr.memberPresence(ctx, a, &t); err != nil {
		return CareTeam{}, err
	}
	return t, nil
}

// memberPresence adds to t's members their presence when a belongs to the
// team: staff see the presence of the staff of their own teams (a hidden
// member shows as offline to the others). Not audited: presence is no
// health information.
func (cr *Service) memberPresence(ctx context.Context, a access.Actor, t *CareTeam) error {
	if cr.presence == nil || !slices.ContainsFunc(t.Members, func(m TeamMember) bool { return m.UserID == a.UserID }) {
		return nil
	}
	ids := make([]uuid.UUID, len(t.Members))
	for i, m := range t.Members {
		ids[i] = m.UserID
	}
	ps, err := cr.presence.Users(ctx, cr.pool, a.UserID, ids)
	if err != nil {
		return err
	}
	for i := range t.Members {
		if p, ok := ps[t.Members[i].UserID]; ok {
			t.Members[i].Presence = &p
		}
	}
	return nil
}

// CareTeamUpdate is the input of UpdateCareTeam. A field left out (empty
// string, nil) keeps its value; an empty, non-nil list clears it.
type CareTeamUpdate struct {
	Name string
	// MemberIDs and Members, when either is non-nil, replace the members.
	MemberIDs  []uuid.UUID
	Members    []TeamMember
	Escalation *EscalationInput
	Timezone   string
	OnCall     []OnCallSlot
}

// lockTeamForChange locks care team id for a change by a: admins and the
// team's leads may change it; anyone else out of scope finds no team.
func lockTeamForChange(ctx context.Context, tx pgx.Tx, a access.Actor, id uuid.UUID) (CareTeam, error) {
	var myRole *string
	var cur CareTeam
	err := tx.QueryRow(ctx, lockTeamSQL, a.Role, a.UserID, id).Scan(&cur.ID, &cur.Name, &cur.Escalation, &cur.Timezone, &cur.OnCall,
		&cur.CreatedAt, &cur.UpdatedAt, &cur.Members, &myRole)
	if errors.Is(err, pgx.ErrNoRows) {
		return cur, fmt.Errorf("care team: %w", access.ErrNotFound)
	}
	if err != nil {
		return cur, fmt.Errorf("lock care team: %w", err)
	}
	if a.Role != access.RoleAdmin && (myRole == nil || *myRole != "lead") {
		return cur, fmt.Errorf("only admins and the team's leads may change it: %w", access.ErrForbidden)
	}
	return cur, nil
}

// UpdateCareTeam changes a care team's name, members, escalation policy,
// time zone and on-call rota (admins and the team's leads). Every problem
// is a field error; nothing is stored unless all is valid.
func (cr *Service) UpdateCareTeam(ctx context.Context, a access.Actor, id uuid.UUID, in CareTeamUpdate) (CareTeam, error) {
	if err := access.Require(a, access.RoleAdmin, access.RoleClinician, access.RoleScheduler); err != nil {
		return CareTeam{}, fmt.Errorf("care team: %w", access.ErrNotFound)
	}
	var v rpm.ValidationError
	if in.Name != "" {
		check.Name(&v, "name", in.Name)
	}
	replaceMembers := in.MemberIDs != nil || in.Members != nil
	var members []TeamMember
	if replaceMembers {
		members = teamMembers(&v, in.MemberIDs, in.Members)
	}
	policy := in.Escalation.Policy(&v, "escalation")
	if in.Timezone != "" {
		checkTeamZone(&v, in.Timezone)
	}
	if err := v.OrNil(); err != nil {
		return CareTeam{}, err
	}
	var t CareTeam
	err := pg.InTx(ctx, cr.pool, func(tx pgx.Tx) error {
		cur, err := lockTeamForChange(ctx, tx, a, id)
		if err != nil {
			return err
		}
		t = cur
		if in.Name != "" {
			t.Name = in.Name
		}
		if in.Escalation != nil {
			t.Escalation = policy
		}
		if in.Timezone != "" {
			t.Timezone = in.Timezone
		}
		if replaceMembers {
			if _, err := tx.Exec(ctx, deleteMembersSQL, id); err != nil {
				return fmt.Errorf("replace members: %w", err)
			}
			if err := storeMembers(ctx, tx, id, members, len(in.MemberIDs)); err != nil {
				return err
			}
			t.Members = members
		}
		if in.OnCall != nil {
			t.OnCall = in.OnCall
		}
		// The rota must fit the members as they now are: on a change of
		// either, it is checked again.
		var rv rpm.ValidationError
		t.OnCall = checkOnCall(&rv, t.OnCall, t.Members)
		if err := rv.OrNil(); err != nil {
			if in.OnCall == nil {
				return check.FieldError("on_call", "names a user who is no longer a clinician or lead of the team: send the rota too")
			}
			return err
		}
		t.UpdatedAt = cr.now()
		if _, err := tx.Exec(ctx, updateTeamSQL, id, t.Name, t.Escalation, t.Timezone, t.OnCall, t.UpdatedAt); err != nil {
			return fmt.Errorf("update care team: %w", err)
		}
		return cr.audit.Write(ctx, tx, a, audit.Entry{Action: "care_team.update", ObjectType: "care_team", ObjectID: id.String()})
	})
	if err != nil {
		return CareTeam{}, err
	}
	if t.Members == nil {
		t.Members = []TeamMember{}
	}
	return t, nil
}
