package functions_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/caio-licensing/caio-licensing/shared/testtools"
)

// envFile is infra/env.local.json: "Parameters" for every function, then
// one object per function, as `sam local invoke --env-vars` reads it.
func envFile(t *testing.T) map[string]map[string]string {
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "infra", "env.local.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]map[string]string
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("infra/env.local.json: %v", err)
	}
	return f
}

// functionEnv is what `sam local invoke` gives a function: the template's
// variables (Globals, then the function's), a parameter reference resolved
// to its override or default, and the env file's values for declared
// variables only (SAM ignores the others). A variable naming a resource
// has no meaning locally: it must come from the env file.
func functionEnv(t *testing.T, doc map[string]any, file map[string]map[string]string, id string, overrides map[string]string) (map[string]string, error) {
	declared := map[string]any{}
	for _, vars := range []any{get(doc, "Globals", "Function", "Environment", "Variables"), get(doc, "Resources", id, "Properties", "Environment", "Variables")} {
		m, _ := vars.(map[string]any)
		for k, v := range m {
			declared[k] = v
		}
	}
	env := map[string]string{}
	for k, v := range declared {
		if fv, ok := file[id][k]; ok {
			env[k] = fv
			continue
		}
		if fv, ok := file["Parameters"][k]; ok {
			env[k] = fv
			continue
		}
		s := fmt.Sprint(v)
		if ref, ok := strings.CutPrefix(s, "Ref "); ok && get(doc, "Parameters", ref) != nil {
			if o, ok := overrides[ref]; ok {
				env[k] = o
			} else {
				env[k] = fmt.Sprint(get(doc, "Parameters", ref, "Default"))
			}
			continue
		}
		if strings.HasPrefix(s, "Ref ") || strings.HasPrefix(s, "Sub ") || strings.HasPrefix(s, "GetAtt ") {
			return nil, fmt.Errorf("%s: %s is %q, which sam local cannot resolve: give it in infra/env.local.json", id, k, s)
		}
		env[k] = s
	}
	for section, vars := range file {
		if section != "Parameters" && section != id {
			continue
		}
		for k := range vars {
			if _, ok := declared[k]; !ok && section == id {
				return nil, fmt.Errorf("infra/env.local.json sets %s for %s, which the template does not declare: sam local would ignore it", k, id)
			}
		}
	}
	return env, nil
}

var samInvokeRE = regexp.MustCompile(`^\s*sam local invoke (\w+) -e (\S+) --env-vars infra/env\.local\.json --docker-network host(?: --parameter-overrides LicensePublicKey=(\S.*?))?\s*$`)

// Every `sam local invoke` line of the docs works as printed, run the way
// sam runs it (the function under the Runtime Interface Emulator with the
// environment above; --docker-network host puts loopback in reach) against
// scripts/local-aws.sh. Docker is not here, so the container is not.
func TestSamLocalInvokeAsDocumented(t *testing.T) {
	doc, file := loadTemplate(t), envFile(t)
	for section := range file {
		if section != "Parameters" && get(doc, "Resources", section, "Type") != "AWS::Serverless::Function" {
			t.Errorf("infra/env.local.json names %s, not a function of the template", section)
		}
	}
	for id := range map[string]bool{"ActivateFunction": true, "GenerateFunction": true, "DistributeFunction": true, "StatsFunction": true, "RemindersFunction": true} {
		if _, err := functionEnv(t, doc, file, id, nil); err != nil {
			t.Error(err)
		}
	}
	var lines []string
	docs, _ := filepath.Glob(filepath.Join(repoRoot(t), "docs", "*.md"))
	for _, path := range append(docs, filepath.Join(repoRoot(t), "README.md")) {
		raw, _ := os.ReadFile(path)
		for _, l := range strings.Split(string(raw), "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "sam local invoke") {
				if !samInvokeRE.MatchString(l) {
					t.Errorf("%s: %q is not in the form this test runs (-e EVENT --env-vars infra/env.local.json --docker-network host)", filepath.Base(path), l)
					continue
				}
				lines = append(lines, l)
			}
		}
	}
	if len(lines) < 3 {
		t.Fatalf("the docs show %d sam local invoke lines", len(lines))
	}

	state := t.TempDir()
	cmd := exec.Command("./scripts/local-aws.sh") // as the docs print it
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CAIO_LOCAL_AWS_DIR="+state, "CAIO_TEST_TOOLS="+testtools.Dir())
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	ready := make(chan bool)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "Local AWS ready") {
				ready <- true
			}
		}
		close(ready)
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("scripts/local-aws.sh stopped before it was ready")
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("scripts/local-aws.sh was not ready in 2 minutes")
	}
	publicKey, err := os.ReadFile(filepath.Join(state, "public-key"))
	if err != nil {
		t.Fatal(err)
	}

	for _, l := range lines {
		m := samInvokeRE.FindStringSubmatch(l)
		id, event := m[1], m[2]
		t.Run(id+"/"+filepath.Base(event), func(t *testing.T) {
			overrides := map[string]string{}
			if m[3] != "" {
				overrides["LicensePublicKey"] = strings.TrimSpace(string(publicKey))
			}
			env, err := functionEnv(t, doc, file, id, overrides)
			if err != nil {
				t.Fatal(err)
			}
			// What sam passes from the shell the docs export, and the
			// container's own /tmp for the working copies.
			env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = "caio-local", "caio-local-secret"
			env["CAIO_LICENSE_CACHE_DIR"] = t.TempDir()
			fn := strings.ToLower(strings.TrimSuffix(id, "Function"))
			raw, err := os.ReadFile(filepath.Join(repoRoot(t), event))
			if err != nil {
				t.Fatal(err)
			}
			e := startEmulator(t, bootstrap(t, fn), env)
			status, body := e.invoke(t, raw)
			if status != 200 || strings.Contains(string(body), `"errorType"`) {
				t.Fatalf("%s: %d %s\nlogs:\n%s", l, status, body, e.logs.String())
			}
			var resp events.APIGatewayV2HTTPResponse
			if fn == "activate" && (json.Unmarshal(body, &resp) != nil || resp.StatusCode == 0 || resp.StatusCode >= 500) {
				t.Fatalf("%s: not an API answer: %s", l, body)
			}
		})
	}
}
