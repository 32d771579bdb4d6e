package rules

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPurity keeps the package pure: no I/O, clock, logging or package-level
// mutable state in non-test code.
func TestPurity(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	forbidden := []string{"database/", "net", "os", "log", "io/fs", "syscall", "math/rand", "crypto/rand", "github.com/jackc", "github.com/riverqueue"}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbidden {
				if path == bad || strings.HasPrefix(path, bad+"/") || strings.HasPrefix(path, bad) && strings.HasSuffix(bad, "/") {
					t.Errorf("%s imports %s", name, path)
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "time" && (sel.Sel.Name == "Now" || sel.Sel.Name == "Since" || sel.Sel.Name == "Until") {
					t.Errorf("%s: time.%s reads the clock", fset.Position(sel.Pos()), sel.Sel.Name)
				}
			}
			return true
		})
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.VAR {
				continue
			}
			for _, s := range g.Specs {
				for _, n := range s.(*ast.ValueSpec).Names {
					// Allowed: sentinel errors, the embedded pack, and
					// read-only tables built once.
					if !strings.HasPrefix(n.Name, "Err") && !strings.HasPrefix(n.Name, "err") && !readOnly[n.Name] {
						t.Errorf("%s: package-level variable %s", fset.Position(n.Pos()), n.Name)
					}
				}
			}
		}
	}
}

// readOnly lists the package-level variables that are never written after
// initialisation.
var readOnly = map[string]bool{
	"defaultPack": true, "aggNames": true, "cmpOps": true, "arithOps": true, "idPattern": true,
	"paramPattern": true, "yamlLine": true, "durationType": true,
}
