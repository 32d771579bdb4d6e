package rules

import (
	"time"

	"github.com/tendhealth/tend/rpm"
)

// HistoryNeeds says which readings Input.History must hold to evaluate a
// reading of kind: for each kind the enabled rules look at, how far back from
// the reading. Kinds absent from the map are not needed. The engine uses it to
// load only what the rules read, with one query per batch.
func (p *Pack) HistoryNeeds(kind rpm.Kind) map[rpm.Kind]time.Duration {
	out := map[rpm.Kind]time.Duration{}
	for _, r := range p.readings[kind] {
		for k, d := range r.needs {
			out[k] = max(out[k], d)
		}
	}
	return out
}
