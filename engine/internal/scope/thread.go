package scope

import (
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine/access"
)

// ThreadSQL is the predicate "the actor is a participant of thread t": a
// patient user in their own patient thread; a member of the thread's care
// team (clinician, scheduler or admin user) in the team's patient threads,
// staff-only threads and staff channel; either user of a direct thread.
// Nobody else — not even an admin outside the team — so a thread outside an
// actor's reach is not found, and a patient can never detect a staff-only
// thread. Membership is read at the time of the query: a member removed from
// a team loses access at once, one added sees the history.
func ThreadSQL(t, role, patient, user string) string {
	return strings.NewReplacer("{t}", t, "{role}", role, "{patient}", patient, "{user}", user).Replace(`(
	({t}.kind = 'patient' AND {role} = 'patient' AND {t}.patient_id = {patient})
	OR ({t}.kind IN ('patient', 'staff_patient', 'team') AND {role} IN ('clinician', 'scheduler', 'admin') AND EXISTS (
		SELECT 1 FROM care_team_members m WHERE m.care_team_id = {t}.care_team_id AND m.user_id = {user}))
	OR ({t}.kind = 'direct' AND {role} IN ('clinician', 'scheduler', 'admin') AND {user} IN ({t}.user_a, {t}.user_b)))`)
}

// ParticipantsSQL is the expression of the user ids (uuid[]) of thread t's
// participants, as ThreadSQL decides them: the patient's enabled patient
// users (patient threads), the team's members (team threads), the pair
// (direct threads).
func ParticipantsSQL(t string) string {
	return strings.ReplaceAll(`ARRAY(
	SELECT u.id FROM users u WHERE {t}.kind = 'patient' AND u.role = 'patient' AND u.patient_id = {t}.patient_id AND u.disabled_at IS NULL
	UNION ALL
	SELECT m.user_id FROM care_team_members m JOIN users mu ON mu.id = m.user_id
		WHERE {t}.kind IN ('patient', 'staff_patient', 'team') AND m.care_team_id = {t}.care_team_id
		AND mu.role IN ('clinician', 'scheduler', 'admin')
	UNION ALL
	SELECT x FROM unnest(ARRAY[{t}.user_a, {t}.user_b]) AS x WHERE {t}.kind = 'direct')`, "{t}", t)
}

// SeesThreadEvent is ThreadSQL for an event of a thread already loaded with
// its participants' user ids.
func SeesThreadEvent(a access.Actor, participants []uuid.UUID) bool {
	if !a.Is(access.RolePatient, access.RoleClinician, access.RoleScheduler, access.RoleAdmin) {
		return false
	}
	return slices.Contains(participants, a.UserID)
}
