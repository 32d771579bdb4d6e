package care

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/check"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/scope"
	"github.com/tendhealth/tend/engine/internal/thread"
	"github.com/tendhealth/tend/rpm"
)

// checkPatient adds a field error for each field of a patient's record that
// is not valid.
func checkPatient(v *rpm.ValidationError, in NewPatient) {
	check.Name(v, "display_name", in.DisplayName)
	if in.Timezone == "" {
		v.Add("timezone", "is required (IANA time zone such as America/Chicago)")
	} else if _, err := check.LoadZone(in.Timezone); err != nil {
		v.Add("timezone", "is not a known IANA time zone")
	}
	if in.CareTeamID == uuid.Nil {
		v.Add("care_team_id", "is required")
	}
	for i, p := range in.Programs {
		if !rpm.ValidProgram(p) {
			v.Add(fmt.Sprintf("programs[%d]", i), "must be one of "+strings.Join(rpm.Programs(), ", "))
		}
	}
	if len(in.ExternalID) > 200 {
		v.Add("external_id", "is longer than 200 characters")
	}
}

// PatientUpdate is the input of UpdatePatient: a nil field keeps its value;
// an empty ExternalID clears it.
type PatientUpdate struct {
	DisplayName *string
	Timezone    *string
	CareTeamID  *uuid.UUID
	Programs    []string
	ExternalID  *string
}

// UpdatePatient changes a patient's name, time zone, programs, external id
// or care team (admins, and clinicians of the patient's team; a new team
// must be one the caller may use, as for CreatePatient). Moving a patient to
// another team gives them threads with it; open alerts stay with the team
// that raised them.
func (cr *Service) UpdatePatient(ctx context.Context, a access.Actor, id uuid.UUID, in PatientUpdate) (Patient, error) {
	if err := access.Require(a, access.RoleAdmin, access.RoleClinician); err != nil {
		return Patient{}, fmt.Errorf("patient: %w", access.ErrNotFound)
	}
	var p Patient
	err := pg.InTx(ctx, cr.pool, func(tx pgx.Tx) error {
		if _, err := scope.OfPatient(ctx, tx, a, id); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, getPatientSQL, id).Scan(&p.ID, &p.DisplayName, &p.Timezone, &p.CareTeamID, &p.Programs, &p.ExternalID,
			&p.EnrolledAt, &p.CreatedAt, &p.Restricted, &p.Erased); err != nil {
			return fmt.Errorf("update patient: %w", err)
		}
		if p.Erased {
			return fmt.Errorf("the patient was erased: %w", access.ErrConflict)
		}
		before := p
		changed := applyPatient(&p, in)
		var v rpm.ValidationError
		checkPatient(&v, NewPatient{DisplayName: p.DisplayName, Timezone: p.Timezone, CareTeamID: p.CareTeamID, Programs: p.Programs,
			ExternalID: deref(p.ExternalID)})
		if err := v.OrNil(); err != nil {
			return err
		}
		if len(changed) == 0 {
			return nil
		}
		if p.CareTeamID != before.CareTeamID {
			var ok bool
			if err := tx.QueryRow(ctx, teamInScopeSQL, p.CareTeamID, a.Role, a.UserID).Scan(&ok); err != nil {
				return fmt.Errorf("check care team: %w", err)
			}
			if !ok {
				return check.FieldError("care_team_id", "no such care team")
			}
			if err := thread.CreatePatientThreads(ctx, tx, p.ID, p.CareTeamID, cr.now()); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, updatePatientSQL, p.ID, p.DisplayName, p.Timezone, p.CareTeamID, p.Programs, p.ExternalID)
		if pg.IsUniqueViolation(err) {
			return check.FieldError("external_id", "is already used by another patient")
		}
		if err != nil {
			return fmt.Errorf("update patient: %w", err)
		}
		return cr.audit.Write(ctx, tx, a, audit.Entry{Action: "patient.update", PatientID: p.ID, ObjectType: "patient",
			ObjectID: p.ID.String(), Detail: map[string]any{"fields": changed}})
	})
	if err != nil {
		return Patient{}, err
	}
	return p, nil
}

// applyPatient applies an update to p and names the fields it changed.
func applyPatient(p *Patient, in PatientUpdate) []string {
	var changed []string
	if in.DisplayName != nil && *in.DisplayName != p.DisplayName {
		p.DisplayName = *in.DisplayName
		changed = append(changed, "display_name")
	}
	if in.Timezone != nil && *in.Timezone != p.Timezone {
		p.Timezone = *in.Timezone
		changed = append(changed, "timezone")
	}
	if in.CareTeamID != nil && *in.CareTeamID != p.CareTeamID {
		p.CareTeamID = *in.CareTeamID
		changed = append(changed, "care_team_id")
	}
	if in.Programs != nil && !slices.Equal(check.Dedupe(in.Programs), p.Programs) {
		p.Programs = check.Dedupe(in.Programs)
		changed = append(changed, "programs")
	}
	if in.ExternalID != nil && *in.ExternalID != deref(p.ExternalID) {
		p.ExternalID = in.ExternalID
		if *in.ExternalID == "" {
			p.ExternalID = nil
		}
		changed = append(changed, "external_id")
	}
	return changed
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
