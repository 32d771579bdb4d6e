package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tendhealth/tend/internal/text"
	"gopkg.in/yaml.v3"
)

// Duration is a rule duration written as a string such as "36h", "7d",
// "90m" or "1d12h". Units: d (24 hours), h, m, s.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats d the way it is written in packs: "7d", "36h", "1d12h".
func (d Duration) String() string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	v := time.Duration(d)
	if v < 0 {
		b.WriteByte('-')
		v = -v
	}
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := v / u.unit; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteString(u.name)
			v -= n * u.unit
		}
	}
	if v > 0 {
		b.WriteString(v.String())
	}
	return b.String()
}

// ParseDuration parses a rule duration: a sequence of decimal numbers each
// followed by a unit, d (24h), h, m, s, ms (e.g. "7d", "36h", "1d12h", "1.5h").
func ParseDuration(s string) (Duration, error) {
	in := s
	if s == "" {
		return 0, errors.New("empty duration")
	}
	neg := false
	if s[0] == '-' || s[0] == '+' {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return 0, fmt.Errorf("invalid duration %q: expected a number followed by d, h, m or s", text.Truncate(in, 40))
	}
	if s == "0" {
		return 0, nil
	}
	var total float64
	for s != "" {
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("invalid duration %q: expected a number followed by d, h, m or s", text.Truncate(in, 40))
		}
		n, err := strconv.ParseFloat(s[:i], 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: expected a number followed by d, h, m or s", text.Truncate(in, 40))
		}
		s = s[i:]
		j := 0
		for j < len(s) && s[j] >= 'a' && s[j] <= 'z' {
			j++
		}
		var unit time.Duration
		switch s[:j] {
		case "d":
			unit = 24 * time.Hour
		case "h":
			unit = time.Hour
		case "m":
			unit = time.Minute
		case "s":
			unit = time.Second
		case "ms":
			unit = time.Millisecond
		default:
			return 0, fmt.Errorf("invalid duration %q: unit must be d, h, m or s", text.Truncate(in, 40))
		}
		s = s[j:]
		total += n * float64(unit)
		if total > float64(maxDuration) {
			return 0, fmt.Errorf("invalid duration %q: too long", text.Truncate(in, 40))
		}
	}
	if neg {
		total = -total
	}
	return Duration(total), nil
}

// maxDuration bounds every rule duration, so that no rule asks the engine for
// an unbounded history.
const maxDuration = 90 * 24 * time.Hour

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalJSON encodes d as a string such as "36h".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON accepts a string such as "36h".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`duration must be a string such as "24h" or "7d"`)
	}
	return d.UnmarshalText([]byte(s))
}

// MarshalYAML encodes d as a string such as "36h".
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML accepts a scalar such as 36h.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New(`duration must be a string such as "24h" or "7d"`)
	}
	return d.UnmarshalText([]byte(n.Value))
}
