// Package scope holds every visibility rule of Tend in one place: which
// patients, care teams and alerts an actor may see. Each rule is a SQL
// predicate built from the caller's column and parameter names, so the many
// queries that filter by visibility share one definition. Objects outside an
// actor's scope are answered as not found, so existence never leaks.
package scope

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
)

// PatientSQL is the predicate "the actor may see patient p": admins all,
// patient and device users their own patient, clinicians and schedulers the
// patients of their care teams. p is the patients row alias; role, patient
// and user are the SQL expressions of the actor's role, patient id and user
// id.
func PatientSQL(p, role, patient, user string) string {
	return strings.NewReplacer("{p}", p, "{role}", role, "{patient}", patient, "{user}", user).Replace(`({role} = 'admin'
	OR ({role} IN ('patient', 'device') AND {p}.id = {patient})
	OR ({role} IN ('clinician', 'scheduler') AND EXISTS (
		SELECT 1 FROM care_team_members m WHERE m.care_team_id = {p}.care_team_id AND m.user_id = {user})))`)
}

// TeamSQL is the predicate "the actor may see care team team": admins all,
// staff the teams they belong to. team is the expression of the team's id.
func TeamSQL(team, role, user string) string {
	return strings.NewReplacer("{team}", team, "{role}", role, "{user}", user).Replace(
		`({role} = 'admin' OR EXISTS (SELECT 1 FROM care_team_members m WHERE m.care_team_id = {team} AND m.user_id = {user}))`)
}

// AlertSQL restricts alerts (alias a) to those the actor may see, with the
// actor's role as $1 and user id as $2: admins all, clinicians their care
// teams'.
var AlertSQL = TeamSQL("a.care_team_id", "$1", "$2")

// Patient is what use cases need to know of a patient in scope.
type Patient struct {
	CareTeamID uuid.UUID
	Programs   []string
	EnrolledAt time.Time
}

// OfPatient loads a patient if the actor may see it; otherwise
// access.ErrNotFound, so that existence does not leak.
func OfPatient(ctx context.Context, q pgx.Tx, a access.Actor, id uuid.UUID) (Patient, error) {
	var s Patient
	err := q.QueryRow(ctx, patientSQL, id, a.Role, a.PatientID, a.UserID).Scan(&s.CareTeamID, &s.Programs, &s.EnrolledAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, fmt.Errorf("patient: %w", access.ErrNotFound)
	}
	if err != nil {
		return s, fmt.Errorf("patient scope: %w", err)
	}
	return s, nil
}
