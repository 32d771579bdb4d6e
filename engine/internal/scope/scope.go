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

// AdminSQL is the predicate "the actor is an admin of organisation org":
// an admin user of that organisation, or Tend itself (System: an admin
// without a user), which acts across organisations. role and user are the
// SQL expressions of the actor's role and user id; org is the expression of
// the object's organisation. Every rule below that lets an admin see an
// object goes through it, so an admin never reaches past their
// organisation; the rules for everyone else go through a care team's
// membership or a patient's own id, which composite foreign keys keep
// within one organisation.
func AdminSQL(org, role, user string) string {
	return strings.NewReplacer("{org}", org, "{role}", role, "{user}", user).Replace(
		`({role} = 'admin' AND ({user} = '00000000-0000-0000-0000-000000000000'::uuid
	OR {org} = (SELECT au.org_id FROM users au WHERE au.id = {user})))`)
}

// PatientSQL is the predicate "the actor may see patient p": admins their
// organisation's, patient and device users their own patient, clinicians
// and schedulers the patients of their care teams. p is the patients row
// alias; role, patient and user are the SQL expressions of the actor's role,
// patient id and user id.
func PatientSQL(p, role, patient, user string) string {
	return strings.NewReplacer("{p}", p, "{role}", role, "{patient}", patient, "{user}", user).Replace(`(` +
		AdminSQL("{p}.org_id", "{role}", "{user}") + `
	OR ({role} IN ('patient', 'device') AND {p}.id = {patient})
	OR ({role} IN ('clinician', 'scheduler') AND EXISTS (
		SELECT 1 FROM care_team_members m WHERE m.care_team_id = {p}.care_team_id AND m.user_id = {user})))`)
}

// TeamSQL is the predicate "the actor may see care team team": admins their
// organisation's, staff the teams they belong to. team is the expression of
// the team's id.
func TeamSQL(team, role, user string) string {
	return strings.NewReplacer("{team}", team, "{role}", role, "{user}", user).Replace(
		`(` + AdminSQL("(SELECT ot.org_id FROM care_teams ot WHERE ot.id = {team})", "{role}", "{user}") + ` OR EXISTS (SELECT 1 FROM care_team_members m WHERE m.care_team_id = {team} AND m.user_id = {user}))`)
}

// AlertSQL restricts alerts (alias a) to those the actor may see, with the
// actor's role as $1 and user id as $2: admins their organisation's,
// clinicians their care teams'.
var AlertSQL = TeamSQL("a.care_team_id", "$1", "$2")

// Patient is what use cases need to know of a patient in scope.
type Patient struct {
	CareTeamID uuid.UUID
	Programs   []string
	EnrolledAt time.Time
	// OrgID is the patient's organisation, whose rule pack judges their
	// readings.
	OrgID uuid.UUID
	// Restricted: the patient's processing is restricted (GDPR article
	// 18): no rules, alerts, retakes or reminders.
	Restricted bool
}

// OfPatient loads a patient if the actor may see it; otherwise
// access.ErrNotFound, so that existence does not leak.
func OfPatient(ctx context.Context, q pgx.Tx, a access.Actor, id uuid.UUID) (Patient, error) {
	var s Patient
	err := q.QueryRow(ctx, patientSQL, id, a.Role, a.PatientID, a.UserID).Scan(&s.CareTeamID, &s.Programs, &s.EnrolledAt, &s.OrgID, &s.Restricted)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, fmt.Errorf("patient: %w", access.ErrNotFound)
	}
	if err != nil {
		return s, fmt.Errorf("patient scope: %w", err)
	}
	return s, nil
}
