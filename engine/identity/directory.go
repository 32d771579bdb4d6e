package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/rpm"
)

// DirectoryEntry is a staff member as the staff directory shows them: who
// they are and the care teams they work in, with their role in each.
type DirectoryEntry struct {
	UserID uuid.UUID       `json:"user_id"`
	Name   string          `json:"name"`
	Role   access.Role     `json:"role"`
	Teams  []DirectoryTeam `json:"teams"`
}

// DirectoryTeam is a care team a staff member belongs to.
type DirectoryTeam struct {
	CareTeamID uuid.UUID `json:"care_team_id"`
	Name       string    `json:"name"`
	Role       string    `json:"role"` // clinician, lead, scheduler
}

// DirectoryFilter selects staff: Query matches a part of the name, of the
// user's role or team role, or of a team's name, case-insensitive.
type DirectoryFilter struct {
	Query  string
	Cursor string
	Limit  int
}

// MaxDirectoryQuery is the longest q the directory accepts, in characters.
const MaxDirectoryQuery = 200

// Directory searches the staff (admins, clinicians and schedulers; disabled
// users left out) by name, role and team, by name: what a staff member needs
// to start a direct conversation. Staff only: patients and devices get
// ErrForbidden. Staff names and roles are not PHI, so a search is not
// audited.
func (us *Service) Directory(ctx context.Context, a access.Actor, f DirectoryFilter) ([]DirectoryEntry, string, error) {
	if err := access.Require(a, access.RoleAdmin, access.RoleClinician, access.RoleScheduler); err != nil {
		return nil, "", err
	}
	var v rpm.ValidationError
	if utf8.RuneCountInString(f.Query) > MaxDirectoryQuery || !utf8.ValidString(f.Query) {
		v.Add("q", fmt.Sprintf("must be valid UTF-8 of at most %d characters", MaxDirectoryQuery))
	}
	afterName, afterID := decodeUserCursor(f.Cursor, &v)
	if err := v.OrNil(); err != nil {
		return nil, "", err
	}
	limit := pg.ClampLimit(f.Limit)
	rows, err := us.pool.Query(ctx, directorySQL, likePattern(f.Query), afterName, afterID, limit+1, a.HomeOrg())
	if err != nil {
		return nil, "", fmt.Errorf("directory: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DirectoryEntry, error) {
		var e DirectoryEntry
		var teams []byte
		if err := r.Scan(&e.UserID, &e.Name, &e.Role, &teams); err != nil {
			return e, err
		}
		return e, json.Unmarshal(teams, &e.Teams)
	})
	if err != nil {
		return nil, "", fmt.Errorf("directory: %w", err)
	}
	out, next := pg.Page(out, limit, func(last DirectoryEntry) string {
		return pg.EncodeCursor(userCursor{Name: last.Name, ID: last.UserID})
	})
	return out, next, nil
}
