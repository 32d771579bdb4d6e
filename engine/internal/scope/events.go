package scope

import (
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine/access"
)

// PatientVisibleEvents lists the event types of no thread that a patient's
// own users (patient and device) may receive on the live stream. Alert
// events are for the care team only, so today the list is empty. Events of a
// thread (messages) are decided by the thread's participants instead
// (SeesThreadEvent, ThreadSQL).
func PatientVisibleEvents() []string { return []string{} }

// EventSQL is the predicate "the actor may see event e" of the event log:
// admins every event of their organisation (its care team's, or else its
// patient's), clinicians the events of their care teams, schedulers
// none of no thread (every such event is an alert's, and schedulers neither
// list nor read alerts), patient and device users the events of their own patient whose type
// is in PatientVisibleEvents. An event of a thread (thread_id set) goes to
// the thread's participants only (ThreadSQL), admins included only when they
// are one. e is the events row alias; role, patient, user and types are the
// SQL expressions of the actor's role, patient id, user id and the
// patient-visible types (a text array).
func EventSQL(e, role, patient, user, types string) string {
	return strings.NewReplacer("{e}", e, "{role}", role, "{patient}", patient, "{user}", user, "{types}", types).Replace(`(({e}.thread_id IS NULL AND (`+AdminSQL(`coalesce(
		(SELECT ot.org_id FROM care_teams ot WHERE ot.id = {e}.care_team_id), (SELECT op.org_id FROM patients op WHERE op.id = {e}.patient_id))`,
		"{role}", "{user}")+`
	OR ({role} = 'clinician' AND EXISTS (
		SELECT 1 FROM care_team_members m WHERE m.care_team_id = {e}.care_team_id AND m.user_id = {user}))
	OR ({role} IN ('patient', 'device') AND {e}.patient_id = {patient} AND {e}.type = ANY({types}))))
	OR ({e}.thread_id IS NOT NULL AND EXISTS (SELECT 1 FROM threads et WHERE et.id = {e}.thread_id AND `) +
		ThreadSQL("et", role, patient, user) + `)))`
}

// SeesEvent is EventSQL for an event of no thread already loaded: org is the
// event's organisation and members the user ids of its care team (as the
// log read them with the event). Thread events are decided by
// SeesThreadEvent.
func SeesEvent(a access.Actor, typ string, org, patientID uuid.UUID, members []uuid.UUID) bool {
	switch a.Role {
	case access.RoleAdmin:
		return a.OrgID == uuid.Nil && a.UserID == uuid.Nil || a.OrgID == org
	case access.RoleClinician:
		return slices.Contains(members, a.UserID)
	case access.RolePatient, access.RoleDevice:
		return patientID != uuid.Nil && patientID == a.PatientID && slices.Contains(PatientVisibleEvents(), typ)
	}
	return false
}
