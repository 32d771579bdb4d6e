package rules

import (
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestNeedsHistoryIsSafe checks the promise the engine relies on: over the
// fixture cohort, whenever NeedsHistory says a reading does not need
// history, Evaluate with the reading's full history finds nothing, suppresses
// nothing and reports no error — so skipping the history changes nothing.
func TestNeedsHistoryIsSafe(t *testing.T) {
	p := mustDefault(t)
	src, err := os.ReadFile(filepath.Join("testdata", "cohort.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cohort []fixturePatient
	if err := yaml.Unmarshal(src, &cohort); err != nil {
		t.Fatal(err)
	}
	skipped, needed := 0, 0
	for _, fp := range cohort {
		in := fp.load(t)
		for i, o := range in.Readings {
			full := Input{Reading: o, History: in.Readings, Programs: in.Programs, Params: in.Params, Now: o.ObservedAt}
			if p.NeedsHistory(Input{Reading: o, Programs: in.Programs, Params: in.Params, Now: o.ObservedAt}) {
				needed++
				continue
			}
			skipped++
			res := p.Evaluate(full)
			if len(res.Findings)+len(res.Suppressed)+len(res.Errors) > 0 {
				t.Errorf("%s reading %d (%s %v): NeedsHistory is false but Evaluate with history gives %+v", fp.Patient, i, o.Kind, o.Value, res)
			}
		}
	}
	if skipped == 0 || needed == 0 {
		t.Errorf("cohort exercised skipped=%d needed=%d readings; want both", skipped, needed)
	}
}
