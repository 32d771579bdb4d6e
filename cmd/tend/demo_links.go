package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/engine"
)

// demoEnvFile is where tend demo writes the settings that reopen its data
// with tend serve after it ends (docs/console.md): the database URL and,
// when the demo made it, the encryption key.
const demoEnvFile = "tend-demo.env"

// demoLead and demoAdmin are the demo's other staff.
const (
	demoLead  = "Dr Lea Mensah"
	demoAdmin = "Ops Admin"
)

// signIn is one sign-in link the demo prints.
type signIn struct{ who, path, token, what string }

// demoSignIns creates the demo's lead (of the demo team), admin and the
// first patient's own user, and returns a sign-in link for each and for the
// clinician. The patient's opens the patient app when the server has one,
// else the console (which shows a patient their messages).
func demoSignIns(ctx context.Context, eng *engine.Engine, srv *api.Server, team, doc uuid.UUID, docToken string,
	patient uuid.UUID, patientName string) ([]signIn, error) {
	sys := engine.System("demo")
	user := func(name string, role engine.Role, patientID uuid.UUID) (uuid.UUID, string, error) {
		u, err := eng.CreateUser(ctx, sys, engine.NewUser{Name: name, Role: role, PatientID: patientID})
		if err != nil {
			return uuid.Nil, "", err
		}
		tok, err := eng.CreateToken(ctx, sys, u.ID)
		return u.ID, tok, err
	}
	lead, leadToken, err := user(demoLead, engine.RoleClinician, uuid.Nil)
	if err != nil {
		return nil, err
	}
	if _, err := eng.UpdateCareTeam(ctx, sys, team, engine.CareTeamUpdate{Members: []engine.TeamMember{
		{UserID: doc, Role: "clinician"}, {UserID: lead, Role: "lead"}}}); err != nil {
		return nil, fmt.Errorf("demo lead: %w", err)
	}
	_, adminToken, err := user(demoAdmin, engine.RoleAdmin, uuid.Nil)
	if err != nil {
		return nil, err
	}
	_, patientToken, err := user(patientName, engine.RolePatient, patient)
	if err != nil {
		return nil, err
	}
	patientPath := "/"
	if srv != nil && slices.ContainsFunc(srv.Routes(), func(r api.Route) bool { return strings.HasSuffix(r.Pattern, " /app/") }) {
		patientPath = "/app/"
	}
	return []signIn{
		{"clinician", "/", docToken, demoClinician + ": the triage queue"},
		{"lead", "/", leadToken, demoLead + ": triage, and broadcasts to the team"},
		{"admin", "/", adminToken, demoAdmin + ": users, patients, teams, rules, audit, jobs"},
		{"patient", patientPath, patientToken, patientName + ": their messages with the care team"},
	}, nil
}

// printSignIns prints the links; each opens a signed-in tab (the token in
// the fragment never reaches the server or the history).
func printSignIns(out *printer, base string, links []signIn) {
	out.printf("sign in    (each link opens a tab signed in as that person; tokens stay valid after the demo)")
	for _, l := range links {
		out.printf("  %-10s%s%s#token=%s", l.who, base, l.path, l.token)
		out.printf("           %s", l.what)
	}
}

// writeDemoEnv writes demoEnvFile so that `tend serve` reopens the demo's
// data afterwards: the database, and the key that sealed its messages when
// the demo generated it (a key from TEND_ENCRYPTION_KEYS stays where the
// user keeps it). The file holds a secret: it is written for the owner only.
func writeDemoEnv(out *printer, path, dbURL, generatedKeys string) {
	var b strings.Builder
	b.WriteString("# Written by tend demo: load it (set -a; . ./" + path + "; set +a) and run tend serve\n")
	b.WriteString("# to reopen the demo's data. It holds the key that reads the demo's messages: keep it private.\n")
	fmt.Fprintf(&b, "TEND_DATABASE_URL=%s\n", dbURL)
	if generatedKeys != "" {
		fmt.Fprintf(&b, "TEND_ENCRYPTION_KEYS=%s\n", generatedKeys)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		out.printf("settings   could not write %s: %v", path, err)
		return
	}
	out.printf("settings   %s (database and key: `set -a; . ./%s; set +a; tend serve` reopens this data)", path, path)
}
