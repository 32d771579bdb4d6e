package engine

import (
	"context"
	"slices"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/care"
)

// Me is who the caller is and what they may do: their user, their care
// teams with their role in each, and the capabilities a client needs to
// decide what to offer (the API still decides every request).
type Me struct {
	User  User              `json:"user"`
	Role  Role              `json:"role"`
	Teams []care.Membership `json:"teams"`
	// Capabilities name what the caller may do, by the names of Capabilities.
	Capabilities []string `json:"capabilities"`
	// Organisation is the caller's organisation, with the branding a client
	// shows; null for an operator.
	Organisation *Organisation `json:"organisation"`
}

// Capabilities a user may have (GET /v1/me). A client shows what the
// caller may use and hides the rest.
const (
	CapTriage         = "triage"          // the alert queue and the alert lifecycle
	CapMessages       = "messages"        // threads: read and post
	CapPatients       = "patients"        // list, create and edit patients
	CapReadings       = "readings"        // post readings
	CapSchedules      = "schedules"       // create and change reminder schedules
	CapConfirmDoses   = "confirm_doses"   // confirm one's own doses
	CapReadRules      = "rules.read"      // read rules
	CapManageRules    = "rules.manage"    // change rules and run backtests
	CapSimulateRules  = "rules.simulate"  // simulate a change to the rules (admins; leads of a team)
	CapManageUsers    = "users.manage"    // users and tokens
	CapManageTeams    = "teams.manage"    // create and edit care teams
	CapBroadcast      = "broadcast"       // broadcast to a team's patients (admins; leads of a team)
	CapAudit          = "audit"           // read the audit
	CapJobs           = "jobs"            // the job dashboard
	CapPatientParams  = "patient_params"  // personalised rule parameters
	CapTeamDirectory  = "teams.read"      // read one's care teams and their members
	CapReportSymptoms = "symptoms.report" // report symptoms
	CapStaffDirectory = "directory"       // search the staff directory
	CapExport         = "export"          // export a patient's record (admins: any; a patient: their own)
	CapOrganisation   = "organisation"    // change one's organisation's settings and branding (admins)
	CapOrganisations  = "organisations"   // create and manage organisations and their admins (operators)
)

// SeesJobs reports whether a may use the job dashboard, which shows every
// organisation's jobs: operators and the default organisation's admins.
func SeesJobs(a Actor) bool {
	return a.Role == access.RoleSuperAdmin || a.Role == access.RoleAdmin && a.OrgID == access.DefaultOrgID()
}

// capabilities derives a caller's capabilities from their role and their
// roles in their teams. Pure.
func capabilities(role Role, teams []care.Membership) []string {
	var out []string
	switch role {
	case access.RoleAdmin:
		out = []string{CapTriage, CapMessages, CapPatients, CapReadings, CapReadRules, CapManageRules, CapSimulateRules, CapManageUsers,
			CapManageTeams, CapBroadcast, CapAudit, CapJobs, CapTeamDirectory, CapPatientParams, CapStaffDirectory, CapExport,
			CapOrganisation}
	case access.RoleSuperAdmin:
		out = []string{CapOrganisations, CapJobs}
	case access.RoleClinician:
		out = []string{CapTriage, CapMessages, CapPatients, CapReadings, CapSchedules, CapReadRules, CapTeamDirectory, CapPatientParams,
			CapReportSymptoms, CapStaffDirectory}
		if slices.ContainsFunc(teams, func(m care.Membership) bool { return m.Role == "lead" }) {
			out = append(out, CapBroadcast, CapSimulateRules)
		}
	case access.RoleScheduler:
		out = []string{CapMessages, CapSchedules, CapTeamDirectory, CapStaffDirectory}
	case access.RolePatient:
		out = []string{CapMessages, CapReadings, CapConfirmDoses, CapReportSymptoms, CapExport}
	case access.RoleDevice:
		out = []string{CapReadings}
	}
	slices.Sort(out)
	return out
}

// Me returns the caller's user, teams and capabilities.
func (e *Engine) Me(ctx context.Context, a Actor) (Me, error) {
	u, err := e.identityService.Self(ctx, a)
	if err != nil {
		return Me{}, err
	}
	teams, err := e.careService.Memberships(ctx, a)
	if err != nil {
		return Me{}, err
	}
	me := Me{User: u, Role: u.Role, Teams: teams, Capabilities: capabilities(u.Role, teams)}
	if u.Role == access.RoleAdmin && !SeesJobs(a) {
		me.Capabilities = slices.DeleteFunc(me.Capabilities, func(c string) bool { return c == CapJobs })
	}
	if u.OrgID != nil {
		o, err := e.orgs.Get(ctx, a, *u.OrgID)
		if err != nil {
			return Me{}, err
		}
		me.Organisation = &o
	}
	return me, nil
}
