package functions_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The SAM template, read as YAML (CloudFormation tags such as !Ref are
// kept as tagged scalars): what each function may do is checked here.
func loadTemplate(t *testing.T) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var node yaml.Node
	if err := yaml.Unmarshal(raw, &node); err != nil {
		t.Fatal(err)
	}
	stripTags(&node)
	var doc map[string]any
	if err := node.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// stripTags turns !Ref X into "Ref X" (and !If lists into plain lists), so
// that the template decodes into plain maps.
func stripTags(n *yaml.Node) {
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		if n.Kind == yaml.ScalarNode {
			n.Value = strings.TrimPrefix(n.Tag, "!") + " " + n.Value
		}
		n.Tag = ""
	}
	for _, c := range n.Content {
		stripTags(c)
	}
}

func get(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// actions lists every IAM action and SAM policy template a function holds.
func actions(fn any) []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, vv := range x {
				if k == "Action" {
					switch a := vv.(type) {
					case string:
						out = append(out, a)
					case []any:
						for _, s := range a {
							out = append(out, s.(string))
						}
					}
				} else if strings.HasSuffix(k, "Policy") {
					out = append(out, k)
				}
				walk(vv)
			}
		case []any:
			for _, vv := range x {
				walk(vv)
			}
		}
	}
	walk(get(fn, "Properties", "Policies"))
	return out
}

func TestTemplateFunctions(t *testing.T) {
	doc := loadTemplate(t)
	resources := doc["Resources"].(map[string]any)
	var fns []string
	for id, r := range resources {
		if get(r, "Type") == "AWS::Serverless::Function" {
			fns = append(fns, id)
			if get(r, "Metadata", "BuildMethod") != "makefile" {
				t.Errorf("%s is not built with BuildMethod: makefile", id)
			}
		}
	}
	var ids []string
	for _, id := range functionIDs {
		ids = append(ids, id)
	}
	slices.Sort(fns)
	slices.Sort(ids)
	if !slices.Equal(fns, ids) {
		t.Fatalf("template functions %v, build targets tested for %v", fns, ids)
	}
	g := get(doc, "Globals", "Function")
	if get(g, "Runtime") != "provided.al2023" || get(g, "Architectures").([]any)[0] != "arm64" || get(g, "CodeUri") != "." {
		t.Fatalf("globals: %v", g)
	}

	activate := resources["ActivateFunction"]
	if !slices.Contains(actions(activate), "s3:PutObject") {
		t.Fatalf("activate's policies were not read: %v", actions(activate))
	}
	for _, a := range actions(activate) {
		if strings.HasPrefix(a, "ses:") || strings.Contains(a, "SecretsManager") || strings.HasPrefix(a, "secretsmanager:") {
			t.Errorf("the activate function may %s: it must not send email nor read the signing secret", a)
		}
	}
	if env := get(activate, "Properties", "Environment", "Variables"); get(env, "CAIO_LICENSE_SECRET_ARN") != nil || get(env, "CAIO_LICENSE_PUBLIC_KEY") == nil {
		t.Errorf("activate environment %v: public key only", env)
	}
	for _, a := range actions(resources["StatsFunction"]) {
		if a != "s3:GetObject" && a != "s3:ListBucket" {
			t.Errorf("the stats function may %s: it must only read", a)
		}
	}
	for _, id := range fns {
		env := get(resources[id], "Properties", "Environment", "Variables")
		if get(env, "CAIO_LICENSE_SECRET") != nil || get(env, "CAIO_SMTP_PASSWORD") != nil {
			t.Errorf("%s has a secret in its environment", id)
		}
	}
	events := get(resources["RemindersFunction"], "Properties", "Events").(map[string]any)
	for _, ev := range events {
		if get(ev, "Type") != "ScheduleV2" || get(ev, "Properties", "Input") == nil {
			t.Errorf("reminders event %v: want ScheduleV2 with an Input", ev)
		}
	}
	if get(resources["RemindersFunction"], "Properties", "EventInvokeConfig", "DestinationConfig", "OnFailure", "Type") != "SQS" {
		t.Error("reminders has no SQS on-failure destination")
	}
	bucket := get(resources["DatabaseBucket"], "Properties")
	if get(bucket, "VersioningConfiguration", "Status") != "Enabled" || get(bucket, "BucketEncryption") == nil || get(bucket, "PublicAccessBlockConfiguration", "RestrictPublicBuckets") != true {
		t.Errorf("database bucket: %v", bucket)
	}
	if !strings.Contains(strings.Join(actions(resources["GenerateFunction"]), " "), "AWSSecretsManagerGetSecretValuePolicy") {
		t.Error("generate cannot read the signing secret")
	}
}
