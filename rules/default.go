package rules

import (
	_ "embed"
	"fmt"
	"slices"
)

//go:embed packs/default.yaml
var defaultPack []byte

// DefaultSource returns the YAML source of the default pack.
func DefaultSource() []byte { return slices.Clone(defaultPack) }

// DefaultRules parses the default pack that ships in the binary.
// DefaultPackVersion is the version of the embedded default pack. Raise it
// with every change to the pack: the engine applies a new version to existing
// databases once, as new versions of the rules it seeded.
const DefaultPackVersion = 3

func DefaultRules() ([]Rule, error) {
	rules, err := Parse(defaultPack)
	if err != nil {
		return nil, fmt.Errorf("default pack: %w", err)
	}
	return rules, nil
}

// Default loads the default pack that ships in the binary. It parses and
// compiles on every call (a few milliseconds): keep the *Pack.
func Default() (*Pack, error) {
	p, err := Load(defaultPack)
	if err != nil {
		return nil, fmt.Errorf("default pack: %w", err)
	}
	return p, nil
}
