package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// docs/api.md shows CAIO under license-check run with systemd and on
// Kubernetes: the unit must be one systemd accepts, the manifests valid
// YAML with the fields they rely on, and every license-check command in
// them one the binary takes.

func apiDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func blocks(doc, lang string) []string {
	var out []string
	for _, m := range regexp.MustCompile("(?s)```"+lang+"\n(.*?)```").FindAllStringSubmatch(doc, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestSystemdUnitVerifies(t *testing.T) {
	units := blocks(apiDoc(t), "ini")
	if len(units) != 1 {
		t.Fatalf("%d unit files in docs/api.md, want 1", len(units))
	}
	unit := units[0]
	exec1 := regexp.MustCompile(`(?m)^ExecStart=(.*)$`).FindStringSubmatch(unit)
	if exec1 == nil || !strings.Contains(exec1[1], "license-check run") || !strings.Contains(exec1[1], " -- ") {
		t.Fatalf("the unit does not start CAIO under license-check run: %q", exec1)
	}
	for _, want := range []string{"KillMode=mixed", "TimeoutStopSec=", "StateDirectory="} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit lacks %s", want)
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	// Real executables where the unit names installed ones.
	path := filepath.Join(t.TempDir(), "caio.service")
	unit = strings.NewReplacer("/usr/local/bin/license-check", check, "/usr/local/bin/caio", "/bin/sleep").Replace(unit)
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", path).CombinedOutput(); err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestKubernetesManifests(t *testing.T) {
	docs := blocks(apiDoc(t), "yaml")
	kinds := map[string]bool{}
	for _, doc := range docs {
		var m struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
			Spec       struct {
				Template struct {
					Spec struct {
						Grace      int `yaml:"terminationGracePeriodSeconds"`
						Containers []struct {
							Command []string `yaml:"command"`
							Env     []struct {
								Name string `yaml:"name"`
							} `yaml:"env"`
						} `yaml:"containers"`
					} `yaml:"spec"`
				} `yaml:"template"`
				VolumeClaimTemplates []any `yaml:"volumeClaimTemplates"`
			} `yaml:"spec"`
		}
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("not YAML: %v\n%s", err, doc)
		}
		if m.APIVersion != "apps/v1" || len(m.Spec.Template.Spec.Containers) != 1 || m.Spec.Template.Spec.Grace <= 30 {
			t.Fatalf("%s: apiVersion %q, %d containers, grace %d s (must exceed --stop-grace 30s)", m.Kind, m.APIVersion, len(m.Spec.Template.Spec.Containers), m.Spec.Template.Spec.Grace)
		}
		kinds[m.Kind] = true
		c := m.Spec.Template.Spec.Containers[0]
		dash := slices.Index(c.Command, "--")
		if len(c.Command) < 3 || c.Command[0] != "license-check" || c.Command[1] != "run" || dash < 0 || dash == len(c.Command)-1 {
			t.Fatalf("%s: the container does not start CAIO under license-check run: %q", m.Kind, c.Command)
		}
		// The flags are the binary's: its own parser says so (a missing
		// server here is fine; a wrong flag exits 2 before anything runs).
		args := append([]string{"run"}, c.Command[2:dash]...)
		h := exec.Command(check, append(args, "--help")...)
		if out, err := h.CombinedOutput(); err != nil {
			t.Fatalf("%s: license-check %v: %v\n%s", m.Kind, args, err, out)
		}
		names := map[string]bool{}
		for _, e := range c.Env {
			names[e.Name] = true
		}
		if !names["CAIO_LICENSE_PUBLIC_KEY"] {
			t.Errorf("%s: no CAIO_LICENSE_PUBLIC_KEY", m.Kind)
		}
		if m.Kind == "StatefulSet" && (!names["POD_NAME"] || !slices.Contains(c.Command, "env:POD_NAME") || len(m.Spec.VolumeClaimTemplates) == 0) {
			t.Errorf("the StatefulSet must name its pods' instances by POD_NAME and keep its state in a claim")
		}
	}
	if !kinds["StatefulSet"] || !kinds["Deployment"] {
		t.Fatalf("manifests for %v, want a StatefulSet and a Deployment", kinds)
	}
}
