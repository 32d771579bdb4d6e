package rules

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"

	"github.com/tendhealth/tend/internal/text"
	"github.com/tendhealth/tend/rpm"
)

// ErrNoHistory is wrapped by the evaluation error of a window aggregate
// (avg, min, max, last, rise, fall) that has no reading in its window.
var ErrNoHistory = errors.New("no readings in the window")

// ErrNoBaseline is wrapped by the evaluation error of an expression that
// refers to baseline when Input.Baseline has none for the kind.
var ErrNoBaseline = errors.New("no baseline for the kind")

// costLimit bounds the runtime cost of one CEL evaluation (cel.CostLimit):
// comprehensions over large literal lists stop with an error instead of
// stalling ingest.
const costLimit = 10_000

// maxExprLen bounds the length of one expression.
const maxExprLen = 4096

// aggregate functions offered to expressions.
type aggFn uint8

const (
	aggAvg aggFn = iota + 1
	aggMin
	aggMax
	aggCount
	aggLast
	aggRise
	aggFall
)

var aggNames = map[string]aggFn{
	"avg": aggAvg, "min": aggMin, "max": aggMax, "count": aggCount,
	"last": aggLast, "rise": aggRise, "fall": aggFall,
}

// field is the part of a reading a series reads.
type field uint8

const (
	fieldValue field = iota
	fieldSystolic
	fieldDiastolic
)

// series is what a window aggregate reads: one kind, one field.
type series struct {
	kind  rpm.Kind
	field field
}

// value returns the series field of o. A blood pressure reading's value is
// its systolic pressure. Values are read at a resolution of 1e-6, so that
// unit conversion noise does not move a reading across a threshold
// (101.3 °F converts to 38.49999999999999 °C; it is read as 38.5).
func (f field) value(o *Observation) float64 { return resolution(f.raw(o)) }

// raw returns the series field of o as stored. Window scans use it and
// round their result once.
func (f field) raw(o *Observation) float64 {
	switch f {
	case fieldSystolic:
		return o.Systolic
	case fieldDiastolic:
		return o.Diastolic
	}
	if o.Kind == rpm.BloodPressure && o.Value == 0 {
		return o.Systolic
	}
	return o.Value
}

// resolution rounds v to 1e-6.
func resolution(v float64) float64 {
	if r := math.Round(v * 1e6); !math.IsInf(r, 0) {
		return r / 1e6
	}
	return v
}

// aggSpec is one resolved window aggregate call.
type aggSpec struct {
	fn     aggFn
	window time.Duration
	series series
	// empty is the error returned when the window holds no reading.
	empty error
}

// resolveSeries maps the optional series argument of an aggregate.
func resolveSeries(arg string, kind rpm.Kind) (series, error) {
	switch arg {
	case "", "value":
		return series{kind: kind}, nil
	case "systolic":
		return series{kind: rpm.BloodPressure, field: fieldSystolic}, nil
	case "diastolic":
		return series{kind: rpm.BloodPressure, field: fieldDiastolic}, nil
	}
	if k := rpm.Kind(arg); k.Valid() {
		return series{kind: k}, nil
	}
	return series{}, fmt.Errorf("unknown series %q: expected value, systolic, diastolic or a vital kind", text.Truncate(arg, 40))
}

// expr is one compiled CEL expression.
type expr struct {
	src string
	prg cel.Program
	// native evaluates the expression without CEL; nil when the expression
	// uses something outside the native subset (strings, macros, ternaries,
	// int arithmetic…).
	native *node
	// aggs are the window aggregates the expression calls.
	aggs []*aggSpec
	// baseline is set when the expression reads baseline or has_baseline.
	baseline bool
	// names are the rule's params, by slot, for the CEL activation.
	names []string
	rt    *runtime
}

// runtime is what a pack's CEL programs share at evaluation time.
type runtime struct {
	acts    sync.Pool // of *activation
	scratch sync.Pool // of *scratch
}

func newEnv() (*cel.Env, error) {
	opts := []cel.EnvOption{
		cel.CrossTypeNumericComparisons(true),
		cel.ParserExpressionSizeLimit(maxExprLen),
		cel.Variable("value", cel.DoubleType),
		cel.Variable("systolic", cel.DoubleType),
		cel.Variable("diastolic", cel.DoubleType),
		cel.Variable("unit", cel.StringType),
		cel.Variable("baseline", cel.DoubleType),
		cel.Variable("has_baseline", cel.BoolType),
		cel.Variable("params", cel.MapType(cel.StringType, cel.DoubleType)),
	}
	for name, fn := range aggNames {
		ret := cel.DoubleType
		if fn == aggCount {
			ret = cel.IntType
		}
		opts = append(opts, cel.Function(name,
			cel.Overload("agg_"+name+"_string", []*cel.Type{cel.StringType}, ret, cel.LateFunctionBinding()),
			cel.Overload("agg_"+name+"_string_string", []*cel.Type{cel.StringType, cel.StringType}, ret, cel.LateFunctionBinding()),
		))
	}
	return cel.NewEnv(opts...)
}

// exprContext is what compileExpr needs to know about the rule.
type exprContext struct {
	env    *cel.Env
	rt     *runtime
	ps     *problems
	path   string // field path of the expression
	ruleID string
	kind   rpm.Kind
	params map[string]int // declared params → slot
	names  []string       // declared params, by slot
	// dirs collects the direction of every param (nil: not wanted).
	dirs map[string]int8
}

// compileExpr type-checks src and prepares its evaluation. It reports
// problems and returns nil when the expression is invalid.
func compileExpr(x exprContext, src string) *expr {
	if strings.TrimSpace(src) == "" {
		x.ps.add(x.path, x.ruleID, "must not be empty")
		return nil
	}
	if len(src) > maxExprLen {
		x.ps.add(x.path, x.ruleID, "expression is longer than %d characters", maxExprLen)
		return nil
	}
	checked, iss := x.env.Compile(src)
	if iss.Err() != nil {
		x.celProblems(src, iss)
		return nil
	}
	if t := checked.OutputType(); !t.IsExactType(types.BoolType) {
		x.ps.add(x.path, x.ruleID, "must be a boolean expression; it has type %s", t)
		return nil
	}
	e := &expr{src: src, rt: x.rt, names: x.names}
	root := celast.NavigateAST(checked.NativeRep())
	specs := map[int64]*aggSpec{}
	if !x.inspect(root, e, specs) {
		return nil
	}
	prg, err := x.env.Program(checked, cel.CostLimit(costLimit))
	if err != nil {
		x.ps.add(x.path, x.ruleID, "CEL: %v", err)
		return nil
	}
	e.prg = prg
	if x.dirs != nil {
		inferDirs(root, 1, x.dirs)
	}
	b := nativeBuilder{params: x.params, aggs: specs}
	if n, ok := b.boolNode(root); ok {
		e.native = n
	}
	return e
}

// celProblems reports CEL's problems with src at the lines of the rule
// file they are on.
func (x exprContext) celProblems(src string, iss *cel.Issues) {
	base := x.ps.line(x.path)
	if x.ps.block[x.path] {
		base++
	}
	// An error at the end of the text points past its last line.
	lines := strings.Count(strings.TrimRight(src, " \t\r\n"), "\n") + 1
	for _, e := range iss.Errors() {
		line := 0
		if base > 0 {
			line = base + min(max(e.Location.Line(), 1), lines) - 1
		}
		x.ps.addAt(line, x.path, x.ruleID, "CEL: %s (column %d)", text.Truncate(e.Message, 300), e.Location.Column()+1)
	}
}

// inspect walks a type-checked expression: it notes whether it reads the
// baseline, checks the fields and params it names, and resolves its
// aggregates into e (and specs, by node). False when it has problems.
func (x exprContext) inspect(root celast.NavigableExpr, e *expr, specs map[int64]*aggSpec) bool {
	ok := true
	walk(root, func(n celast.NavigableExpr) {
		switch n.Kind() {
		case celast.IdentKind:
			switch n.AsIdent() {
			case "baseline", "has_baseline":
				e.baseline = true
			case "systolic", "diastolic":
				if x.kind.Valid() && x.kind != rpm.BloodPressure {
					x.ps.add(x.path, x.ruleID, "%s is only defined for blood_pressure rules; use value", n.AsIdent())
					ok = false
				}
			}
		case celast.SelectKind:
			s := n.AsSelect()
			if isIdent(s.Operand(), "params") && !s.IsTestOnly() {
				if _, declared := x.params[s.FieldName()]; !declared {
					x.ps.add(x.path, x.ruleID, "params.%s has no default: add it to params", s.FieldName())
					ok = false
				}
			}
		case celast.CallKind:
			if !x.inspectCall(n, e, specs) {
				ok = false
			}
		}
	})
	return ok
}

// inspectCall checks a call: params["name"] must name a declared param, and
// an aggregate must have a literal window and series.
func (x exprContext) inspectCall(n celast.NavigableExpr, e *expr, specs map[int64]*aggSpec) bool {
	c := n.AsCall()
	ok := true
	if c.FunctionName() == operators.Index && len(c.Args()) == 2 && isIdent(c.Args()[0], "params") {
		if name, isLit := stringLiteral(c.Args()[1]); isLit {
			if _, declared := x.params[name]; !declared {
				x.ps.add(x.path, x.ruleID, "params[%q] has no default: add it to params", text.Truncate(name, 40))
				ok = false
			}
		}
	}
	fn, isAgg := aggNames[c.FunctionName()]
	if !isAgg || c.IsMemberFunction() {
		return ok
	}
	spec, err := resolveAgg(c, fn, x.kind)
	if err != nil {
		x.ps.add(x.path, x.ruleID, "%s: %v", c.FunctionName(), err)
		return false
	}
	specs[n.ID()] = spec
	e.aggs = append(e.aggs, spec)
	return ok
}

func resolveAgg(c celast.CallExpr, fn aggFn, kind rpm.Kind) (*aggSpec, error) {
	args := c.Args()
	w, isLit := stringLiteral(args[0])
	if !isLit {
		return nil, errors.New(`the window must be a string literal such as "24h"`)
	}
	d, err := ParseDuration(w)
	if err != nil {
		return nil, err
	}
	if d <= 0 {
		return nil, errors.New("the window must be positive")
	}
	var s series
	arg := ""
	if len(args) == 2 {
		if arg, isLit = stringLiteral(args[1]); !isLit {
			return nil, errors.New("the series must be a string literal such as \"diastolic\"")
		}
	}
	if s, err = resolveSeries(arg, kind); err != nil {
		return nil, err
	}
	name := c.FunctionName()
	spec := &aggSpec{fn: fn, window: d.Std(), series: s}
	spec.empty = fmt.Errorf("%s(%q): %w", name, w, ErrNoHistory)
	return spec, nil
}

// walk visits n and its descendants, parents first.
func walk(n celast.NavigableExpr, fn func(celast.NavigableExpr)) {
	fn(n)
	for _, c := range n.Children() {
		walk(c, fn)
	}
}

func isIdent(e celast.Expr, name string) bool {
	return e.Kind() == celast.IdentKind && e.AsIdent() == name
}

func stringLiteral(e celast.Expr) (string, bool) {
	if e.Kind() != celast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}

// paramRef reports the param an expression node reads (params.x or
// params["x"]).
func paramRef(e celast.Expr) (string, bool) {
	switch e.Kind() {
	case celast.SelectKind:
		s := e.AsSelect()
		if isIdent(s.Operand(), "params") && !s.IsTestOnly() {
			return s.FieldName(), true
		}
	case celast.CallKind:
		c := e.AsCall()
		if c.FunctionName() == operators.Index && len(c.Args()) == 2 && isIdent(c.Args()[0], "params") {
			return stringLiteral(c.Args()[1])
		}
	}
	return "", false
}

// Direction of a param: which way moving it makes the condition fire more
// readily.
const (
	dirUnknown int8 = 0
	dirUp      int8 = 1  // a larger value fires more readily (value < params.min)
	dirDown    int8 = -1 // a smaller value fires more readily (value > params.max)
	dirMixed   int8 = 2  // used both ways, or in a way that hides the direction
)

// inferDirs records in out, for every param the boolean expression e reads,
// the direction that makes e true more readily. sign is +1 at the root and
// flips under negation.
func inferDirs(e celast.Expr, sign int8, out map[string]int8) {
	if e.Kind() == celast.CallKind {
		c := e.AsCall()
		args := c.Args()
		switch c.FunctionName() {
		case operators.LogicalAnd, operators.LogicalOr:
			for _, a := range args {
				inferDirs(a, sign, out)
			}
			return
		case operators.LogicalNot:
			inferDirs(args[0], -sign, out)
			return
		case operators.Less, operators.LessEquals:
			numDirs(args[0], -sign, out)
			numDirs(args[1], sign, out)
			return
		case operators.Greater, operators.GreaterEquals:
			numDirs(args[0], sign, out)
			numDirs(args[1], -sign, out)
			return
		}
	}
	mixParams(e, out)
}

// numDirs records directions in a numeric expression: sign +1 means a larger
// e makes the condition fire more readily.
func numDirs(e celast.Expr, sign int8, out map[string]int8) {
	if name, ok := paramRef(e); ok {
		setDir(out, name, sign)
		return
	}
	if e.Kind() == celast.CallKind {
		c := e.AsCall()
		args := c.Args()
		switch c.FunctionName() {
		case operators.Add:
			numDirs(args[0], sign, out)
			numDirs(args[1], sign, out)
			return
		case operators.Subtract:
			numDirs(args[0], sign, out)
			numDirs(args[1], -sign, out)
			return
		case operators.Negate:
			numDirs(args[0], -sign, out)
			return
		case operators.Multiply:
			if k, ok := numLiteral(args[1]); ok && k != 0 {
				numDirs(args[0], sign*signOf(k), out)
				return
			}
			if k, ok := numLiteral(args[0]); ok && k != 0 {
				numDirs(args[1], sign*signOf(k), out)
				return
			}
		case operators.Divide:
			if k, ok := numLiteral(args[1]); ok && k != 0 {
				numDirs(args[0], sign*signOf(k), out)
				mixParams(args[1], out)
				return
			}
		}
	}
	mixParams(e, out)
}

func signOf(f float64) int8 {
	if f < 0 {
		return -1
	}
	return 1
}

func numLiteral(e celast.Expr) (float64, bool) {
	if e.Kind() != celast.LiteralKind {
		return 0, false
	}
	switch v := e.AsLiteral().(type) {
	case types.Double:
		return float64(v), true
	case types.Int:
		return float64(v), true
	}
	return 0, false
}

// mixParams marks every param read under e as of unknown direction.
func mixParams(e celast.Expr, out map[string]int8) {
	var visit func(e celast.Expr)
	visit = func(e celast.Expr) {
		if name, ok := paramRef(e); ok {
			out[name] = dirMixed
			return
		}
		for _, c := range celast.NavigateExpr(nil, e).Children() {
			visit(c)
		}
	}
	visit(e)
}

func setDir(out map[string]int8, name string, d int8) {
	if prev, seen := out[name]; seen && prev != d {
		out[name] = dirMixed
		return
	}
	out[name] = d
}

// finite reports whether f is neither NaN nor infinite.
func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
