package pgtest

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// PrepareQueries checks a package's statement catalogue. file is the
// package's queries.go and queries its map of every statement by name
// (var queries = map[string]string{"fooSQL": fooSQL, ...}).
//
// It fails when a constant or variable of file whose name ends in SQL is
// missing from the map, or when a key of the map does not name the value
// beside it; then it PREPAREs every statement against a freshly migrated
// database, so that a typo, a dropped column or a parameter whose type
// PostgreSQL cannot infer fails the test and not production. Last, every
// statement on a patient-owned table must name its patient, or be on the
// reviewed list of cross-patient statements (distribution.go).
func PrepareQueries(t *testing.T, file string, queries map[string]string) {
	t.Helper()
	PrepareQueriesOf(t, file, "queries", queries)
}

// PrepareQueriesOf is PrepareQueries for a second statement file of a
// package, whose map is named mapName (a package has one "queries").
func PrepareQueriesOf(t *testing.T, file, mapName string, queries map[string]string) {
	t.Helper()
	declared, listed := catalogue(t, file, mapName)
	for _, name := range declared {
		if !slices.Contains(listed, name) {
			t.Errorf("%s: %s is not listed in queries: add it, so that it is prepared", file, name)
		}
	}
	for _, name := range listed {
		if !slices.Contains(declared, name) {
			t.Errorf("%s: queries lists %s, which %s does not declare", file, name, file)
		}
	}
	if got, want := slices.Sorted(maps.Keys(queries)), slices.Sorted(slices.Values(listed)); !slices.Equal(got, want) {
		t.Errorf("%s: the queries map holds %v, its source lists %v", file, got, want)
	}
	if len(queries) == 0 {
		t.Fatalf("%s: no statements listed", file)
	}

	pool := NewPool(t)
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatalf("pgtest: acquire: %v", err)
	}
	defer conn.Release()
	for _, name := range slices.Sorted(maps.Keys(queries)) {
		if _, err := conn.Conn().Prepare(ctx, name, queries[name]); err != nil {
			t.Errorf("prepare %s: %v", name, err)
		}
	}
	checkPatientKeys(t, conn.Conn(), file, queries)
}

// catalogue parses file and returns the names of its package-level constants
// and variables ending in SQL, and the keys of its queries map (checking that
// each key names the identifier it maps to).
func catalogue(t *testing.T, file, mapName string) (declared, listed []string) {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("pgtest: parse %s: %v", file, err)
	}
	found := false
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || (g.Tok != token.CONST && g.Tok != token.VAR) {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, id := range vs.Names {
				if strings.HasSuffix(id.Name, "SQL") {
					declared = append(declared, id.Name)
				}
				if id.Name != mapName || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.CompositeLit)
				if !ok {
					t.Fatalf("%s: %s must be a map literal", file, mapName)
				}
				found = true
				for _, e := range lit.Elts {
					kv, ok := e.(*ast.KeyValueExpr)
					key, kok := kv.Key.(*ast.BasicLit)
					val, vok := kv.Value.(*ast.Ident)
					if !ok || !kok || !vok {
						t.Fatalf("%s: queries entries must read \"nameSQL\": nameSQL", file)
					}
					name, err := strconv.Unquote(key.Value)
					if err != nil || name != val.Name {
						t.Errorf("%s: queries key %s maps to %s: the key must be the name", file, key.Value, val.Name)
					}
					listed = append(listed, val.Name)
				}
			}
		}
	}
	if !found {
		t.Fatalf("%s: no var %s = map[string]string{...}", file, mapName)
	}
	return declared, listed
}
