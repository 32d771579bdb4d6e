// Package rules defines Tend's alerting rules: loading and validating rule
// packs (YAML or JSON), compiling their CEL expressions, and judging
// readings, symptom reports, care events and missing data against them.
//
// The package is pure: no database, no network, no clock, no logging.
// Everything an evaluation depends on — the reading, the patient's recent
// history, programs, personalised params, the time — is in its input, so the
// same input always gives the same result, live or in a backtest.
//
// # Usage
//
//	pack, err := rules.Load(yamlOrJSON) // or rules.Default()
//	if err != nil {
//		var le *rules.LoadError // every problem, with its line
//		errors.As(err, &le)
//		return err
//	}
//	res := pack.Evaluate(rules.Input{
//		Reading:  rules.Observation{ID: id, Kind: rpm.SpO2, Value: 87, Unit: "%", ObservedAt: t},
//		History:  history, // from t - pack.Lookback() to now, ascending
//		Programs: []string{"copd"},
//		Params:   overrides, // rule id → param → value
//		Now:      now,
//	})
//	for _, f := range res.Findings { … } // most urgent first
//	for _, e := range res.Errors { … }   // rules that could not be evaluated
//
// # Rules
//
// A rule pack is a YAML (or JSON) list of rules; see Rule for every field
// and packs/default.yaml for the default pack. A reading rule names a vital
// kind and a condition:
//
//	# from packs/default.yaml
//	- id: bp-crisis
//	  title: Blood pressure in crisis range
//	  kind: blood_pressure
//	  when: systolic >= params.systolic_max || diastolic >= params.diastolic_max
//	  params: {systolic_max: 180, diastolic_max: 120}
//	  rearm: {params: {systolic_max: 10, diastolic_max: 10}}
//	  urgency: critical
//
// The condition is any combination of when (a CEL expression), delta (a
// rise or fall over a window) and all/any lists of sub-conditions; it can be
// qualified by consecutive (the last N readings all match) or sustained (it
// has held for a duration). Other rules watch missing data (missing: 36h,
// EvaluateMissing), reported symptoms (symptom, min_severity,
// EvaluateSymptoms) and care events (event: missed doses, EvaluateEvents).
//
// # Expressions
//
// when is CEL (https://cel.dev), type-checked when the rule is loaded. It
// must be a bool and sees:
//
//	value       double  the reading's value (systolic for blood pressure)
//	systolic    double  blood pressure rules only
//	diastolic   double  blood pressure rules only
//	unit        string  the canonical unit
//	baseline    double  Input.Baseline for the kind (an error when absent)
//	params      map(string, double)  the rule's params after personalisation
//
// and window aggregates over the patient's earlier readings observed within
// the window before this one (this one excluded):
//
//	avg(w) min(w) max(w) last(w)   double, an error when the window is empty
//	count(w)                       int
//	rise(w)  this value minus min(w);  fall(w)  max(w) minus this value
//
// w is a string literal duration ("24h", "7d"). An optional second argument
// picks the series: "systolic", "diastolic", or another vital kind
// ("heart_rate"): avg("24h", "diastolic"). Guard aggregates that may lack
// data with count: count("7d") > 2 && value > avg("7d") + 10 is false, not
// an error, for a new patient. Numbers mix freely in comparisons (value <
// 92), but arithmetic needs doubles (value + 1.0).
//
// Values are read at a resolution of 1e-6, so that unit conversion noise does
// not move a reading across a threshold (101.3 °F is 38.5 °C, not
// 38.49999999999999), and a delta's rise or fall is compared with a
// tolerance of 1e-9.
//
// Evaluation errors (an empty window, a missing baseline, the cost limit)
// are returned in Result.Errors: a rule that cannot be evaluated is never
// silently false. Most expressions run on a native evaluator with CEL's
// semantics; the rest run on the CEL interpreter.
//
// # Params
//
// Thresholds are params. A rule's params are its defaults, overridden by
// program_params for the patient's programs, overridden by the patient's own
// values (Input.Params[rule id]). Declarative thresholds are params too:
// delta rise/fall ("rise", "fall"), min_severity, event count ("count").
// EffectiveParams and CheckParams serve the patient params API.
//
// # Hysteresis
//
// Armed-ness is derived from History; there is no state to persist. When a
// reading rule's condition holds, the rule walks back through the earlier
// readings of its kind within its re-arm period (rearm.after, by default the
// longer of 12h and the history its condition looks at). The first reading
// that decides wins: one past the re-arm band arms the rule (it fires), one
// on which the rule matched disarms it (the episode was already reported:
// the finding goes to Result.Suppressed). No deciding reading: armed. The
// band is the condition with every threshold param moved towards firing by
// its margin (rearm.value, rearm.params), or an explicit rearm.when. So a
// glucose of 68, 71, 69 fires glucose-low once: 71 is under 80 (70 plus the
// margin of 10) and does not re-arm it.
//
// # Late data
//
// When History holds a reading of the same kind observed after the reading
// evaluated, that reading is late: it is judged against the readings before
// it only, and its findings are marked Late (the engine records them without
// paging).
//
// # Backtesting
//
// Replay runs a patient's stored readings, symptom reports and events
// through a pack in time order and reports the findings, and the alerts they
// would have opened after grouping.
package rules
