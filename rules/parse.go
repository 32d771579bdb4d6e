package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/tendhealth/tend/internal/text"
	"gopkg.in/yaml.v3"
)

// Parse reads rules from YAML or JSON: a list of rules, or a single rule
// object. It reports the structural problems (syntax, unknown fields, wrong
// types) as a *LoadError; the meaning of the rules is checked by Compile.
func Parse(data []byte) ([]Rule, error) {
	rules, ps := parse(data)
	if err := ps.err(); err != nil {
		return nil, err
	}
	return rules, nil
}

// Load parses and compiles a pack. Problems carry source line numbers.
func Load(data []byte) (*Pack, error) {
	rules, ps := parse(data)
	if len(ps.list) > 0 {
		// Still check what could be read, so that one round trip reports
		// every problem.
		compile(rules, ps)
		return nil, ps.err()
	}
	return compile(rules, ps)
}

// Check lists every problem of a pack (structure, meaning, CEL types), in
// source order; nil when the pack is valid.
func Check(data []byte) []Problem {
	rules, ps := parse(data)
	compile(rules, ps)
	return ps.sorted()
}

// maxNodes bounds the YAML nodes walked, so that alias bombs cannot make a
// small document expensive.
const maxNodes = 100_000

// maxSource bounds the size of a pack.
const maxSource = 4 << 20

type decoder struct {
	ps    *problems
	nodes int
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// parse decodes data, recording every structural problem and the line of
// every field in ps.
func parse(data []byte) ([]Rule, *problems) {
	ps := &problems{lines: map[string]int{"": 1}, block: map[string]bool{}}
	if len(data) > maxSource {
		ps.addAt(1, "", "", "pack is larger than %d bytes", maxSource)
		return nil, ps
	}
	if bytes.IndexByte(data, '\t') >= 0 && json.Valid(data) {
		// JSON: tabs are only whitespace there (never inside strings), but
		// YAML refuses them as indentation.
		data = bytes.ReplaceAll(data, []byte{'\t'}, []byte{' '})
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, ps // an empty pack
		}
		ps.addAt(syntaxLine(err), "", "", "%s", syntaxReason(err))
		return nil, ps
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		ps.addAt(extra.Line, "", "", "a pack is one YAML document; found another after ---")
	} else if !errors.Is(err, io.EOF) {
		ps.addAt(syntaxLine(err), "", "", "%s", syntaxReason(err))
	}
	d := &decoder{ps: ps}
	root := d.resolve(&doc)
	if root == nil {
		return nil, ps
	}
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, ps
		}
		root = d.resolve(root.Content[0])
	}
	switch {
	case root == nil:
		return nil, ps
	case root.Kind == yaml.ScalarNode && root.Tag == "!!null":
		return nil, ps
	case root.Kind == yaml.SequenceNode:
		rules := make([]Rule, 0, len(root.Content))
		for i, n := range root.Content {
			var r Rule
			p := index("", i)
			ps.lines[p] = n.Line
			d.decode(d.resolve(n), reflect.ValueOf(&r).Elem(), p)
			rules = append(rules, r)
		}
		return rules, ps
	case root.Kind == yaml.MappingNode:
		ps.single = true
		var r Rule
		d.decode(root, reflect.ValueOf(&r).Elem(), "")
		return []Rule{r}, ps
	}
	ps.addAt(root.Line, "", "", "a pack is a list of rules (or one rule object)")
	return nil, ps
}

func syntaxLine(err error) int {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		if n, e := strconv.Atoi(m[1]); e == nil {
			// yaml.v3 reports parser (not scanner) errors at the 0-based
			// line where the enclosing collection starts.
			if strings.Contains(err.Error(), "did not find expected") {
				n++
			}
			return n
		}
	}
	return 1
}

func syntaxReason(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	s = yamlLine.ReplaceAllString(s, "")
	s = strings.TrimLeft(s, ": ")
	return "syntax error: " + text.Truncate(s, 200)
}

// resolve follows aliases and counts nodes.
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	for depth := 0; n != nil && n.Kind == yaml.AliasNode; depth++ {
		if depth > 100 {
			return nil
		}
		n = n.Alias
	}
	return n
}

func (d *decoder) budget(n *yaml.Node, path string) bool {
	d.nodes++
	if d.nodes == maxNodes {
		d.ps.addAt(n.Line, path, "", "pack has too many nodes (aliases expand to more than %d)", maxNodes)
	}
	return d.nodes < maxNodes
}

var (
	durationType = reflect.TypeFor[Duration]()
)

// decode decodes n into v, recording problems under path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n == nil {
		d.ps.add(path, "", "invalid alias")
		return
	}
	if !d.budget(n, path) {
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // null leaves the zero value
	}
	if v.Type() == durationType {
		d.decodeDuration(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		e := reflect.New(v.Type().Elem())
		d.decode(n, e.Elem(), path)
		v.Set(e)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	default:
		d.decodeScalar(n, v, path)
	}
}

// decodeDuration decodes a duration such as "24h" or "7d".
func (d *decoder) decodeDuration(n *yaml.Node, v reflect.Value, path string) {
	var dur Duration
	if n.Kind != yaml.ScalarNode {
		d.ps.addAt(n.Line, path, "", `must be a duration such as "24h" or "7d"`)
		return
	}
	if err := dur.UnmarshalText([]byte(n.Value)); err != nil {
		d.ps.addAt(n.Line, path, "", "%s", err.Error())
		return
	}
	v.Set(reflect.ValueOf(dur))
}

// decodeSlice decodes a sequence, recording the line of each item.
func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.ps.addAt(n.Line, path, "", "must be a list")
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, c := range n.Content {
		p := index(path, i)
		d.ps.lines[p] = c.Line
		d.decode(d.resolve(c), s.Index(i), p)
	}
	v.Set(s)
}

// decodeMap decodes a mapping, refusing a key given twice.
func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.ps.addAt(n.Line, path, "", "must be a mapping")
		return
	}
	m := reflect.MakeMap(v.Type())
	seen := map[string]int{}
	d.pairs(n, path, func(key string, keyNode, val *yaml.Node) {
		p := join(path, key)
		if first, dup := seen[key]; dup {
			d.ps.addAt(keyNode.Line, p, "", "duplicate key %q (first at line %d)", text.Truncate(key, 40), first)
			return
		}
		seen[key] = keyNode.Line
		d.ps.lines[p] = val.Line
		e := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, e, p)
		m.SetMapIndex(reflect.ValueOf(key).Convert(v.Type().Key()), e)
	})
	v.Set(m)
}

// decodeScalar decodes a string, an integer, a finite number or a boolean.
func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.ps.addAt(n.Line, path, "", "must be a string")
			return
		}
		v.SetString(n.Value)
	case reflect.Int:
		var i int
		if n.Kind != yaml.ScalarNode || n.Decode(&i) != nil {
			d.ps.addAt(n.Line, path, "", "must be an integer")
			return
		}
		v.SetInt(int64(i))
	case reflect.Float64:
		var f float64
		if n.Kind != yaml.ScalarNode || n.Tag == "!!str" || n.Tag == "!!bool" || n.Decode(&f) != nil {
			d.ps.addAt(n.Line, path, "", "must be a number")
			return
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			d.ps.addAt(n.Line, path, "", "must be a finite number")
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
			d.ps.addAt(n.Line, path, "", "must be true or false")
			return
		}
		v.SetBool(b)
	default:
		d.ps.addAt(n.Line, path, "", "unsupported field type")
	}
}

// pairs calls fn for every key/value of mapping n, expanding YAML merge keys
// (<<) after the explicit keys, which win.
func (d *decoder) pairs(n *yaml.Node, path string, fn func(key string, keyNode, val *yaml.Node)) {
	var merges []*yaml.Node
	explicit := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := d.resolve(n.Content[i]), d.resolve(n.Content[i+1])
		if k == nil || val == nil {
			d.ps.addAt(n.Content[i].Line, path, "", "invalid alias")
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.ps.addAt(k.Line, path, "", "keys must be strings")
			continue
		}
		if k.Tag == "!!merge" || (k.Value == "<<" && k.Style == 0) {
			merges = append(merges, val)
			continue
		}
		explicit[k.Value] = true
		fn(k.Value, k, val)
	}
	for _, m := range merges {
		srcs := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			srcs = srcs[:0]
			for _, c := range m.Content {
				srcs = append(srcs, d.resolve(c))
			}
		}
		for _, src := range srcs {
			if src == nil || src.Kind != yaml.MappingNode {
				d.ps.addAt(m.Line, path, "", "merge key << must refer to a mapping")
				continue
			}
			if !d.budget(src, path) {
				return
			}
			d.pairs(src, path, func(key string, keyNode, val *yaml.Node) {
				if explicit[key] {
					return
				}
				explicit[key] = true
				fn(key, keyNode, val)
			})
		}
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		if path == "" || strings.HasSuffix(path, "]") && strings.Count(path, "[") == 1 && strings.HasPrefix(path, "[") {
			d.ps.addAt(n.Line, path, "", "a rule must be a mapping of fields")
		} else {
			d.ps.addAt(n.Line, path, "", "must be a mapping")
		}
		return
	}
	fields := fieldsOf(v.Type())
	seen := map[string]int{}
	d.pairs(n, path, func(key string, keyNode, val *yaml.Node) {
		p := join(path, key)
		if first, dup := seen[key]; dup {
			d.ps.addAt(keyNode.Line, p, "", "duplicate field %q (first at line %d)", text.Truncate(key, 40), first)
			return
		}
		seen[key] = keyNode.Line
		i, ok := fields[key]
		if !ok {
			reason := fmt.Sprintf("unknown field %q", text.Truncate(key, 40))
			if s := suggest(key, fields); s != "" {
				reason += fmt.Sprintf("; did you mean %q?", s)
			}
			d.ps.addAt(keyNode.Line, p, "", "%s", reason)
			return
		}
		d.ps.lines[p] = val.Line
		if val.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
			d.ps.block[p] = true
		}
		d.decode(val, v.Field(i), p)
	})
}

// fieldsOf maps the yaml names of t's fields to their indexes.
func fieldsOf(t reflect.Type) map[string]int {
	out := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		out[name] = i
	}
	return out
}

// suggest returns the known field closest to key, if it is close.
func suggest(key string, fields map[string]int) string {
	best, bestD := "", 3
	for f := range fields {
		if dd := levenshtein(strings.ToLower(key), f); dd < bestD || dd == bestD && f < best {
			best, bestD = f, dd
		}
	}
	if bestD > 2 {
		return ""
	}
	return best
}

func levenshtein(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
