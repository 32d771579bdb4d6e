package care

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
)

// Membership is one care team the caller belongs to, with the caller's role
// in it (clinician, lead or scheduler).
type Membership struct {
	CareTeamID uuid.UUID `json:"care_team_id"`
	Name       string    `json:"name"`
	Role       string    `json:"role"`
	// Timezone is the team's rota time zone (IANA), the zone its dates are
	// read in.
	Timezone string `json:"timezone"`
}

// Memberships returns the care teams the caller is a member of, by name
// (at most MaxTeams). Admins see every team through ListCareTeams but are
// members only of the teams that list them.
func (cr *Service) Memberships(ctx context.Context, a access.Actor) ([]Membership, error) {
	rows, err := cr.pool.Query(ctx, membershipsSQL, a.UserID, MaxTeams)
	if err != nil {
		return nil, fmt.Errorf("memberships: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Membership, error) {
		var m Membership
		err := r.Scan(&m.CareTeamID, &m.Name, &m.Role, &m.Timezone)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("memberships: %w", err)
	}
	if out == nil {
		out = []Membership{}
	}
	return out, nil
}
