package engine

import (
	"context"

	"github.com/google/uuid"
)

// CreateOrganisation creates an organisation (operators only).
func (e *Engine) CreateOrganisation(ctx context.Context, a Actor, in NewOrganisation) (Organisation, error) {
	return e.orgs.Create(ctx, a, in)
}

// ListOrganisations lists every organisation to an operator, the caller's
// own to anyone else.
func (e *Engine) ListOrganisations(ctx context.Context, a Actor) ([]Organisation, error) {
	return e.orgs.List(ctx, a)
}

// GetOrganisation reads an organisation: an operator any, anyone else their
// own.
func (e *Engine) GetOrganisation(ctx context.Context, a Actor, id uuid.UUID) (Organisation, error) {
	return e.orgs.Get(ctx, a, id)
}

// UpdateOrganisation changes an organisation's settings (its admins and
// operators).
func (e *Engine) UpdateOrganisation(ctx context.Context, a Actor, id uuid.UUID, in OrganisationUpdate) (Organisation, error) {
	return e.orgs.Update(ctx, a, id, in)
}

// SetOrganisationLogo replaces (or, with no data, removes) an organisation's
// logo (its admins and operators).
func (e *Engine) SetOrganisationLogo(ctx context.Context, a Actor, id uuid.UUID, contentType string, data []byte) (Organisation, error) {
	return e.orgs.SetLogo(ctx, a, id, contentType, data)
}

// OrganisationLogo reads an organisation's logo (anyone of it; operators).
func (e *Engine) OrganisationLogo(ctx context.Context, a Actor, id uuid.UUID) (OrganisationLogo, error) {
	return e.orgs.Logo(ctx, a, id)
}
