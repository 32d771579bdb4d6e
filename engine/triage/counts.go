package triage

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/rpm"
)

// AlertCounts are the unresolved alerts of the caller's care teams, per
// urgency and per status: the header of the triage queue. Every urgency and
// unresolved status is present, zero or not.
type AlertCounts struct {
	Urgency map[rpm.Urgency]int `json:"urgency"`
	Status  map[string]int      `json:"status"`
}

// CountAlerts counts the unresolved alerts the actor may see (of care team
// careTeamID if it is not uuid.Nil).
func (tr *Service) CountAlerts(ctx context.Context, a access.Actor, careTeamID uuid.UUID) (AlertCounts, error) {
	if err := access.Require(a, access.RoleAdmin, access.RoleClinician); err != nil {
		return AlertCounts{}, err
	}
	c := AlertCounts{Urgency: map[rpm.Urgency]int{}, Status: map[string]int{}}
	for _, u := range []rpm.Urgency{rpm.Critical, rpm.High, rpm.Medium, rpm.Low} {
		c.Urgency[u] = 0
	}
	for _, s := range alertStatuses[:3] {
		c.Status[s] = 0
	}
	rows, err := tr.pool.Query(ctx, countAlertsSQL, a.Role, a.UserID, pg.NilIfZero(careTeamID))
	if err != nil {
		return AlertCounts{}, fmt.Errorf("count alerts: %w", err)
	}
	var u rpm.Urgency
	var status string
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&u, &status, &n}, func() error {
		c.Urgency[u] += n
		c.Status[status] += n
		return nil
	}); err != nil {
		return AlertCounts{}, fmt.Errorf("count alerts: %w", err)
	}
	return c, nil
}
