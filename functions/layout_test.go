package functions_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The house's layout, as docs/design.md ("How the code is laid out")
// describes it: four floors with every import pointing down, test helpers
// that only tests import, function mains that only wire, and a doc comment
// and a line in the design doc for every package.

const module = "github.com/caio-licensing/caio-licensing/"

// floors places every package; a new one must be placed here (and in the
// design doc) before it builds green.
var floors = map[string]int{
	// Ground: the domain and its formats.
	"shared/licensing": 0, "shared/contract": 0, "shared/licensekey": 0, "shared/lease": 0,
	"shared/servercert": 0, "shared/secretbox": 0, "shared/secretstrength": 0, "shared/instanceid": 0,
	"shared/ratelimit": 0, "shared/metrics": 0, "shared/atomicfile": 0, "shared/buildinfo": 0,
	// Adapters: one package per outside system.
	"shared/sqlitestore": 1, "shared/s3store": 1, "shared/s3log": 1, "shared/pagelog": 1,
	"shared/mail": 1, "shared/mail/sesmail": 1, "shared/mail/smtpmail": 1, "shared/mail/nomail": 1,
	"shared/awssecret": 1, "shared/awsconf": 1, "shared/awsconf/sdkchain": 1, "shared/licenseclient": 1, "shared/metrics/prommetrics": 1,
	// Wiring and transports.
	"shared/config": 2, "shared/wiring": 2, "shared/wiring/mailwiring": 2, "shared/lambdaevent": 2, "shared/httpapi": 2,
	"shared/operator": 2, "shared/delivery": 2, "shared/reportstore": 2, "shared/report": 2,
	// Programs.
	"functions": 3, "functions/activate": 3, "functions/distribute": 3, "functions/generate": 3,
	"functions/reminders": 3, "functions/stats": 3, "scripts/manage-licenses": 3,
	"scripts/license-check": 3, "scripts/simulate-year": 3, "scripts/coldstart-baseline": 3,
}

// testHelpers are imported by tests (and by one another) only.
var testHelpers = map[string]bool{
	"shared/s3store/s3test": true, "shared/mail/mailtest": true, "shared/awssecret/smtest": true,
	"shared/licenseclient/attacktest": true, "shared/httpapi/apitest": true,
	"shared/secretbox/secretboxtest": true, "shared/testtools": true,
}

type pkg struct {
	path, dir, doc string
	imports        []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{.Dir}}\t{{.Doc}}\t{{join .Imports \" \"}}", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		p := pkg{path: strings.TrimPrefix(f[0], module), dir: f[1], doc: f[2]}
		for _, imp := range strings.Fields(f[3]) {
			if strings.HasPrefix(imp, module) {
				p.imports = append(p.imports, strings.TrimPrefix(imp, module))
			}
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func TestImportsPointDown(t *testing.T) {
	for _, p := range listPackages(t) {
		floor, placed := floors[p.path]
		switch {
		case testHelpers[p.path]:
			floor = 4 // may import anything
		case !placed:
			t.Errorf("%s is on no floor: add it to floors here and to docs/design.md's layout", p.path)
			continue
		}
		for _, imp := range p.imports {
			switch {
			case testHelpers[imp] && !testHelpers[p.path]:
				t.Errorf("%s imports the test helper %s", p.path, imp)
			case floors[imp] > floor:
				t.Errorf("%s (floor %d) imports %s (floor %d): imports point down", p.path, floor, imp, floors[imp])
			}
		}
	}
	// The domain stays free of AWS and SQL, and imports no HTTP package
	// itself (servercert, which it uses for certificates, reads answers'
	// headers as net/http's).
	out, err := exec.Command("go", "list", "-deps", module+"shared/licensing").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "aws") || strings.Contains(dep, "sqlite") {
			t.Errorf("shared/licensing depends on %s", dep)
		}
	}
	out, err = exec.Command("go", "list", "-f", "{{join .Imports \"\\n\"}}", module+"shared/licensing").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range strings.Fields(string(out)) {
		if strings.HasPrefix(imp, "net/http") {
			t.Errorf("shared/licensing imports %s", imp)
		}
	}
}

func TestEveryPackageSaysItsJob(t *testing.T) {
	design, err := os.ReadFile(filepath.Join("..", "docs", "design.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, layout, _ := strings.Cut(string(design), "## How the code is laid out")
	layout, _, _ = strings.Cut(layout, "\n## ")
	for _, p := range listPackages(t) {
		if p.doc == "" && p.path != "functions" { // functions holds tests alone
			t.Errorf("%s has no package doc comment saying its job", p.path)
		}
		if p.path != "functions" && !strings.Contains(layout, "`"+p.path+"`") {
			t.Errorf("docs/design.md's layout does not name %s", p.path)
		}
	}
}

// A function's main only wires: at most 30 lines.
func TestFunctionMainsOnlyWire(t *testing.T) {
	mains, _ := filepath.Glob(filepath.Join("*", "main.go"))
	if len(mains) != 5 {
		t.Fatalf("found %d function mains, want 5: %v", len(mains), mains)
	}
	for _, m := range mains {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(b), "\n"); n > 30 {
			t.Errorf("%s is %d lines: move what it decides into shared/", m, n)
		}
	}
}
