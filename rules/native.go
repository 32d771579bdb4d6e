package rules

import (
	"errors"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
)

// The native evaluator runs the common subset of rule expressions —
// comparisons, && || !, double arithmetic over value, systolic, diastolic,
// baseline, params and window aggregates — without CEL's interpreter, with
// the same results and the same error semantics (&& and || absorb an error
// when the other side decides). It exists for
// speed: ingest evaluates every reading against every rule of its kind.
// Anything outside the subset runs on the CEL program.

type op uint8

const (
	opConst op = iota + 1
	opBool
	opValue
	opSystolic
	opDiastolic
	opBaseline
	opHasBaseline
	opParam
	opAgg
	opAdd
	opSub
	opMul
	opDiv
	opNeg
	opLT
	opLE
	opGT
	opGE
	opEQ
	opNE
	opAnd
	opOr
	opNot
)

type node struct {
	op   op
	num  float64
	b    bool
	slot int
	agg  *aggSpec
	l, r *node
}

// num evaluates a numeric node.
func (n *node) eval(c *ectx) (float64, error) {
	switch n.op {
	case opConst:
		return n.num, nil
	case opValue:
		return fieldValue.value(c.cur), nil
	case opSystolic:
		return fieldSystolic.value(c.cur), nil
	case opDiastolic:
		return fieldDiastolic.value(c.cur), nil
	case opBaseline:
		return c.baselineValue()
	case opParam:
		return c.params[n.slot], nil
	case opAgg:
		return aggregate(c, n.agg)
	case opNeg:
		v, err := n.l.eval(c)
		return -v, err
	}
	l, err := n.l.eval(c)
	if err != nil {
		return 0, err
	}
	r, err := n.r.eval(c)
	if err != nil {
		return 0, err
	}
	switch n.op {
	case opAdd:
		return l + r, nil
	case opSub:
		return l - r, nil
	case opMul:
		return l * r, nil
	case opDiv:
		return l / r, nil
	}
	return 0, errors.New("internal: not a numeric node")
}

// test evaluates a boolean node.
func (n *node) test(c *ectx) (bool, error) {
	switch n.op {
	case opBool:
		return n.b, nil
	case opHasBaseline:
		_, ok := c.baseline[c.cur.Kind]
		return ok, nil
	case opNot:
		v, err := n.l.test(c)
		return !v, err
	case opAnd:
		l, lerr := n.l.test(c)
		if lerr == nil && !l {
			return false, nil
		}
		r, rerr := n.r.test(c)
		if rerr == nil && !r {
			return false, nil
		}
		if lerr != nil {
			return false, lerr
		}
		return r, rerr
	case opOr:
		l, lerr := n.l.test(c)
		if lerr == nil && l {
			return true, nil
		}
		r, rerr := n.r.test(c)
		if rerr == nil && r {
			return true, nil
		}
		if lerr != nil {
			return false, lerr
		}
		return r, rerr
	}
	l, err := n.l.eval(c)
	if err != nil {
		return false, err
	}
	r, err := n.r.eval(c)
	if err != nil {
		return false, err
	}
	// As in CEL, NaN is unequal to everything and every ordering with NaN
	// is false: Go's operators behave the same.
	switch n.op {
	case opEQ:
		return l == r, nil
	case opNE:
		return l != r, nil
	case opLT:
		return l < r, nil
	case opLE:
		return l <= r, nil
	case opGT:
		return l > r, nil
	case opGE:
		return l >= r, nil
	}
	return false, errors.New("internal: not a boolean node")
}

// nativeBuilder turns a checked CEL AST into native nodes.
type nativeBuilder struct {
	params map[string]int
	aggs   map[int64]*aggSpec
}

var cmpOps = map[string]op{
	operators.Less: opLT, operators.LessEquals: opLE, operators.Greater: opGT,
	operators.GreaterEquals: opGE, operators.Equals: opEQ, operators.NotEquals: opNE,
}

var arithOps = map[string]op{
	operators.Add: opAdd, operators.Subtract: opSub, operators.Multiply: opMul, operators.Divide: opDiv,
}

// boolNode builds a boolean node; ok is false when e is outside the subset.
func (b *nativeBuilder) boolNode(e celast.NavigableExpr) (*node, bool) {
	switch e.Kind() {
	case celast.LiteralKind:
		if v, ok := e.AsLiteral().(types.Bool); ok {
			return &node{op: opBool, b: bool(v)}, true
		}
	case celast.IdentKind:
		if e.AsIdent() == "has_baseline" {
			return &node{op: opHasBaseline}, true
		}
	case celast.CallKind:
		c := e.AsCall()
		if c.IsMemberFunction() {
			return nil, false
		}
		kids := e.Children()
		switch name := c.FunctionName(); name {
		case operators.LogicalAnd, operators.LogicalOr:
			if len(kids) != 2 {
				return nil, false
			}
			l, ok1 := b.boolNode(kids[0])
			r, ok2 := b.boolNode(kids[1])
			if !ok1 || !ok2 {
				return nil, false
			}
			o := opAnd
			if name == operators.LogicalOr {
				o = opOr
			}
			return &node{op: o, l: l, r: r}, true
		case operators.LogicalNot:
			l, ok := b.boolNode(kids[0])
			if !ok {
				return nil, false
			}
			return &node{op: opNot, l: l}, true
		default:
			o, isCmp := cmpOps[name]
			if !isCmp || len(kids) != 2 {
				return nil, false
			}
			l, _, ok1 := b.numNode(kids[0])
			r, _, ok2 := b.numNode(kids[1])
			if !ok1 || !ok2 {
				return nil, false
			}
			return &node{op: o, l: l, r: r}, true
		}
	}
	return nil, false
}

// maxExactInt is the largest integer a float64 holds exactly.
const maxExactInt = 1 << 53

// numNode builds a numeric node. isInt reports a CEL int (a literal or
// count), which the subset only compares, never computes with.
func (b *nativeBuilder) numNode(e celast.NavigableExpr) (n *node, isInt, ok bool) {
	if name, isParam := paramRef(e); isParam {
		slot, declared := b.params[name]
		if !declared {
			return nil, false, false
		}
		return &node{op: opParam, slot: slot}, false, true
	}
	switch e.Kind() {
	case celast.LiteralKind:
		switch v := e.AsLiteral().(type) {
		case types.Double:
			return &node{op: opConst, num: float64(v)}, false, true
		case types.Int:
			if v > maxExactInt || v < -maxExactInt {
				return nil, false, false
			}
			return &node{op: opConst, num: float64(v)}, true, true
		}
	case celast.IdentKind:
		switch e.AsIdent() {
		case "value":
			return &node{op: opValue}, false, true
		case "systolic":
			return &node{op: opSystolic}, false, true
		case "diastolic":
			return &node{op: opDiastolic}, false, true
		case "baseline":
			return &node{op: opBaseline}, false, true
		}
	case celast.CallKind:
		c := e.AsCall()
		if c.IsMemberFunction() {
			return nil, false, false
		}
		if spec, isAgg := b.aggs[e.ID()]; isAgg {
			return &node{op: opAgg, agg: spec}, spec.fn == aggCount, true
		}
		kids := e.Children()
		name := c.FunctionName()
		if name == operators.Negate && len(kids) == 1 {
			l, isInt, ok := b.numNode(kids[0])
			if !ok {
				return nil, false, false
			}
			if isInt {
				if l.op != opConst {
					return nil, false, false
				}
				return &node{op: opConst, num: -l.num}, true, true
			}
			return &node{op: opNeg, l: l}, false, true
		}
		if o, isArith := arithOps[name]; isArith && len(kids) == 2 {
			l, lInt, ok1 := b.numNode(kids[0])
			r, rInt, ok2 := b.numNode(kids[1])
			if !ok1 || !ok2 || lInt || rInt {
				return nil, false, false // int arithmetic (overflow, truncation) stays with CEL
			}
			return &node{op: o, l: l, r: r}, false, true
		}
	}
	return nil, false, false
}
