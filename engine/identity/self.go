package identity

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
)

// Self returns the caller's own user. Any signed-in user may read it; Tend's
// own work (a system actor) has no user and gets access.ErrNotFound.
func (us *Service) Self(ctx context.Context, a access.Actor) (User, error) {
	var u User
	err := us.pool.QueryRow(ctx, selfSQL, a.UserID).Scan(&u.ID, &u.Name, &u.Role, &u.PatientID, &u.CreatedAt, &u.DisabledAt, &u.OIDCSubject, &u.OrgID)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, fmt.Errorf("user: %w", access.ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("read own user: %w", err)
	}
	return u, nil
}
