package rules

import (
	"errors"
	"fmt"
	"strings"

	"cel.dev/cel-go/common/functions"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"

	"github.com/tendhealth/tend/rpm"
)

// activation supplies the variables and the late-bound window aggregates of
// one CEL evaluation. Activations are pooled per pack; they copy what they
// need from the evaluation context so that the context itself stays on the
// caller's stack.
type activation struct {
	cur      Observation
	hist     []Observation
	baseline map[rpm.Kind]float64
	params   map[string]float64
	agg      functions.LateBoundOp
}

func newActivation() *activation {
	a := &activation{params: map[string]float64{}}
	a.agg = a.aggregate
	return a
}

func (a *activation) load(c *ectx, names []string) {
	a.cur = *c.cur
	a.hist = c.hist
	a.baseline = c.baseline
	clear(a.params)
	for i, n := range names {
		a.params[n] = c.params[i]
	}
}

func (a *activation) reset() {
	a.cur = Observation{}
	a.hist = nil
	a.baseline = nil
}

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "value":
		return types.Double(fieldValue.value(&a.cur)), true
	case "systolic":
		return types.Double(fieldSystolic.value(&a.cur)), true
	case "diastolic":
		return types.Double(fieldDiastolic.value(&a.cur)), true
	case "unit":
		return types.String(a.cur.Unit), true
	case "params":
		return a.params, true
	case "baseline":
		if v, ok := a.baseline[a.cur.Kind]; ok {
			return types.Double(v), true
		}
		return types.WrapErr(errNoBaseline), true
	case "has_baseline":
		_, ok := a.baseline[a.cur.Kind]
		return types.Bool(ok), true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }

// ResolveFunction implements interpreter.FunctionActivation.
func (a *activation) ResolveFunction(name string) (functions.LateBoundOp, bool) {
	if _, ok := aggNames[name]; ok {
		return a.agg, true
	}
	return nil, false
}

// aggregate implements the late-bound aggregate functions.
func (a *activation) aggregate(overloadID string, args ...ref.Val) ref.Val {
	name, _, _ := strings.Cut(strings.TrimPrefix(overloadID, "agg_"), "_")
	fn, ok := aggNames[name]
	if !ok || len(args) == 0 {
		return types.NewErr("no such overload: %s", overloadID)
	}
	w, ok := args[0].(types.String)
	if !ok {
		return types.NewErr("%s: the window must be a string", name)
	}
	d, err := ParseDuration(string(w))
	if err != nil {
		return types.NewErr("%s: %v", name, err)
	}
	arg := ""
	if len(args) > 1 {
		s, ok := args[1].(types.String)
		if !ok {
			return types.NewErr("%s: the series must be a string", name)
		}
		arg = string(s)
	}
	s, err := resolveSeries(arg, a.cur.Kind)
	if err != nil {
		return types.NewErr("%s: %v", name, err)
	}
	spec := aggSpec{fn: fn, window: d.Std(), series: s}
	spec.empty = fmt.Errorf("%s(%q): %w", name, string(w), ErrNoHistory)
	c := ectx{cur: &a.cur, hist: a.hist, baseline: a.baseline}
	v, err := aggregate(&c, &spec)
	if err != nil {
		return types.WrapErr(err)
	}
	if fn == aggCount {
		return types.Int(v)
	}
	return types.Double(v)
}

// testCEL evaluates the expression with the CEL interpreter.
func (e *expr) testCEL(c *ectx) (bool, error) {
	a, _ := e.rt.acts.Get().(*activation)
	if a == nil {
		a = newActivation()
	}
	a.load(c, e.names)
	out, _, err := e.prg.Eval(a)
	a.reset()
	e.rt.acts.Put(a)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, errors.New("expression did not produce a bool")
	}
	return bool(b), nil
}
