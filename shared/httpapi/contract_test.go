package httpapi_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/caio-licensing/caio-licensing/shared/contract"
	"github.com/caio-licensing/caio-licensing/shared/httpapi"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// codeConsts reads the string constants named Code... that the package in
// dir declares (its tests aside), by name. Reading the source is the only
// way to list a package's constants, and it lists the ones added tomorrow.
func codeConsts(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]string{}
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, path, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, "Code") || i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						codes[name.Name], _ = strconv.Unquote(lit.Value)
					}
				}
			}
		}
	}
	if len(codes) == 0 {
		t.Fatalf("no codes found in %s", dir)
	}
	return codes
}

// The server answers only with the contract's codes, so that the client
// (which reads the contract alone) knows every one: a domain code the API
// answers with must be the contract's, spelled as the contract spells it.
func TestServerAnswersOnlyContractCodes(t *testing.T) {
	domain := codeConsts(t, filepath.Join("..", "licensing"))
	wire := codeConsts(t, filepath.Join("..", "contract"))
	isContract := func(code string) bool { return slices.Contains(contract.Codes(), code) }

	for name, value := range domain {
		if w, ok := wire[name]; ok && w != value {
			t.Errorf("licensing.%s is %q, contract.%s is %q", name, value, name, w)
		}
		// A code with a status of its own goes out as it is; any other
		// (a 500) goes out as INTERNAL.
		if httpapi.StatusFor(licensing.Code(value)) != http.StatusInternalServerError && !isContract(value) {
			t.Errorf("the API answers licensing.%s (%q), which is no contract code", name, value)
		}
	}
	for _, code := range contract.Codes() {
		status := httpapi.StatusFor(licensing.Code(code))
		if (status == http.StatusInternalServerError) != (code == contract.CodeInternal) {
			t.Errorf("contract code %s has status %d", code, status)
		}
	}
}
