package fhir

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// Interaction is one FHIR interaction Tend implements: a row of the table
// that both the router and the CapabilityStatement are built from.
type Interaction struct {
	// Resource is the resource type; empty for system interactions
	// (batch, transaction).
	Resource string
	// Code is the FHIR interaction: read, search-type, create, batch,
	// transaction.
	Code string
	// SearchParams are the search parameters of a search-type interaction.
	SearchParams []SearchParam
	// Profile is a profile every instance conforms to.
	Profile string
	// Doc says what Tend does, in a sentence.
	Doc string
}

// SearchParam is a supported search parameter.
type SearchParam struct {
	Name, Type, Doc string
}

// enumCode converts a FHIR code into the models' enum type.
func enumCode[T any](s string) (T, error) {
	var v T
	b, _ := json.Marshal(s)
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("code %q: %w", s, err)
	}
	return v, nil
}

// CapabilityStatement describes exactly the interactions given.
func CapabilityStatement(interactions []Interaction, software, version string, date time.Time) (r4.CapabilityStatement, error) {
	cs := r4.CapabilityStatement{
		Status:         r4.PublicationStatusActive,
		Date:           instant(date),
		Kind:           r4.CapabilityStatementKindInstance,
		Software:       &r4.CapabilityStatementSoftware{Name: software, Version: ptr(version)},
		Implementation: &r4.CapabilityStatementImplementation{Description: "Tend remote patient monitoring: vital signs, alerts and care-team messages"},
		FhirVersion:    r4.FHIRVersion4_0_1,
		Format:         []string{"application/fhir+json"},
		Meta:           meta(date),
	}
	rest := r4.CapabilityStatementRest{Mode: r4.RestfulCapabilityModeServer,
		Documentation: ptr("Every request carries Authorization: Bearer <token>; out-of-scope resources answer 404.")}
	var order []string
	byType := map[string]*r4.CapabilityStatementRestResource{}
	for _, in := range interactions {
		if in.Resource == "" {
			c, err := enumCode[r4.SystemRestfulInteraction](in.Code)
			if err != nil {
				return cs, err
			}
			rest.Interaction = append(rest.Interaction, r4.CapabilityStatementRestInteraction{Code: c, Documentation: ptrOrNil(in.Doc)})
			continue
		}
		res, ok := byType[in.Resource]
		if !ok {
			t, err := enumCode[r4.ResourceType](in.Resource)
			if err != nil {
				return cs, err
			}
			res = &r4.CapabilityStatementRestResource{Type: t}
			byType[in.Resource] = res
			order = append(order, in.Resource)
		}
		if in.Profile != "" && !slices.Contains(res.SupportedProfile, in.Profile) {
			res.SupportedProfile = append(res.SupportedProfile, in.Profile)
		}
		c, err := enumCode[r4.TypeRestfulInteraction](in.Code)
		if err != nil {
			return cs, err
		}
		res.Interaction = append(res.Interaction, r4.CapabilityStatementRestResourceInteraction{Code: c, Documentation: ptrOrNil(in.Doc)})
		for _, p := range in.SearchParams {
			t, err := enumCode[r4.SearchParamType](p.Type)
			if err != nil {
				return cs, err
			}
			res.SearchParam = append(res.SearchParam, r4.CapabilityStatementRestResourceSearchParam{Name: p.Name, Type: t, Documentation: ptrOrNil(p.Doc)})
		}
	}
	for _, t := range order {
		rest.Resource = append(rest.Resource, *byType[t])
	}
	cs.Rest = []r4.CapabilityStatementRest{rest}
	return cs, nil
}

func ptrOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
