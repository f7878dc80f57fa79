package functions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/caio-licensing/caio-licensing/shared/contract"
	"github.com/caio-licensing/caio-licensing/shared/httpapi"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/metrics"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
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
		if strings.HasPrefix(a, "ses:") || strings.HasPrefix(a, "secretsmanager:") {
			t.Errorf("the activate function may %s: it must not send email nor read the signing secret", a)
		}
	}
	// Its one secret is the server key, which signs answers and cannot mint licenses.
	for _, p := range get(activate, "Properties", "Policies").([]any) {
		if arn := get(p, "AWSSecretsManagerGetSecretValuePolicy", "SecretArn"); arn != nil && arn != "Ref ServerKeySecret" {
			t.Errorf("the activate function reads secret %v: only the server key is allowed", arn)
		}
	}
	if env := get(activate, "Properties", "Environment", "Variables"); get(env, "CAIO_LICENSE_SECRET_ARN") != nil || get(env, "CAIO_LICENSE_PUBLIC_KEY") == nil || get(env, "CAIO_SERVER_KEY_ARN") != "Ref ServerKeySecret" {
		t.Errorf("activate environment %v: public key only", env)
	}
	// Stats reads the database; it writes nothing but reports/.
	for _, p := range get(resources["StatsFunction"], "Properties", "Policies").([]any) {
		for _, st := range get(p, "Statement").([]any) {
			acts := fmt.Sprint(get(st, "Action"))
			for _, a := range strings.Fields(strings.Trim(acts, "[]")) {
				if a != "s3:GetObject" && a != "s3:ListBucket" && a != "s3:PutObject" {
					t.Errorf("the stats function may %s: it must only read (and write reports)", a)
				}
			}
			if strings.Contains(acts, "s3:PutObject") && fmt.Sprint(get(st, "Resource")) != "Sub ${DatabaseBucket.Arn}/reports/*" {
				t.Errorf("the stats function may write %v: only reports/ is allowed", get(st, "Resource"))
			}
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
	// The server key is renewed daily by what holds the secret (generate),
	// in its own secret only; the internet-facing function cannot write it.
	renewal := get(resources["GenerateFunction"], "Properties", "Events", "DailyServerKeyRenewal")
	if get(renewal, "Type") != "ScheduleV2" || get(renewal, "Properties", "Input") != `{"renew_server_key": true}` {
		t.Errorf("generate has no daily server key renewal: %v", renewal)
	}
	writers := 0
	for _, id := range fns {
		for _, p := range get(resources[id], "Properties", "Policies").([]any) {
			for _, st := range asList(get(p, "Statement")) {
				if !strings.Contains(fmt.Sprint(get(st, "Action")), "PutSecretValue") {
					continue
				}
				writers++
				if id != "GenerateFunction" || fmt.Sprint(get(st, "Resource")) != "Ref ServerKeySecret" {
					t.Errorf("%s may write the secret %v", id, get(st, "Resource"))
				}
			}
		}
	}
	if writers != 1 {
		t.Errorf("%d statements may write a secret, want generate's one on ServerKeySecret", writers)
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// The template's share of the security hardening: what unlocks the retained
// database is retained too, logs expire, the API's access log carries no
// body, alarms can reach a person, SES is scoped to the sender, and the
// activate function can only verify with the pinned key.
func TestTemplateHardening(t *testing.T) {
	doc := loadTemplate(t)
	resources := doc["Resources"].(map[string]any)
	params := doc["Parameters"].(map[string]any)

	secret := resources["LicenseSecret"]
	if get(secret, "DeletionPolicy") != "Retain" || get(secret, "UpdateReplacePolicy") != "Retain" {
		t.Errorf("LicenseSecret must be retained like the bucket: %v", secret)
	}
	// Empty until deploy.sh pins it: the activate function then refuses to
	// start (TestActivateRefusesToStartWithoutPublicKey), never verifies
	// with the database's word.
	pattern, _ := get(params, "LicensePublicKey", "AllowedPattern").(string)
	if re, err := regexp.Compile(pattern); err != nil || !re.MatchString("") || !re.MatchString(strings.Repeat("A", 43)+"=") || re.MatchString("not-a-key") {
		t.Errorf("LicensePublicKey pattern %q: want empty or one Ed25519 key", pattern)
	}
	if get(params, "LogRetentionDays", "Default") != 90 {
		t.Errorf("LogRetentionDays default: %v, want 90", get(params, "LogRetentionDays", "Default"))
	}
	for _, id := range functionIDs {
		group := get(resources[id], "Properties", "LoggingConfig", "LogGroup")
		logs := strings.TrimSuffix(id, "Function") + "Logs"
		if group != "Ref "+logs || get(resources[logs], "Type") != "AWS::Logs::LogGroup" || get(resources[logs], "Properties", "RetentionInDays") != "Ref LogRetentionDays" {
			t.Errorf("%s: log group %v with retention %v, want %s kept LogRetentionDays", id, group, get(resources[logs], "Properties", "RetentionInDays"), logs)
		}
	}
	format, _ := get(resources["LicensingApi"], "Properties", "AccessLogSettings", "Format").(string)
	var fields map[string]string
	if err := json.Unmarshal([]byte(format), &fields); err != nil || fields["status"] == "" || fields["requestId"] == "" {
		t.Errorf("API access log format is not JSON with request id and status: %q", format)
	}
	if strings.Contains(format, "body") || strings.Contains(strings.ToLower(format), "requestbody") {
		t.Errorf("API access log format logs the body: %q", format)
	}
	if get(resources["AlarmEmailSubscription"], "Condition") != "HasAlarmEmail" || get(resources["AlarmEmailSubscription"], "Properties", "Protocol") != "email" {
		t.Error("no optional email subscription on the alarm topic")
	}
	for _, id := range []string{"DistributeFunction", "RemindersFunction"} {
		b, _ := json.Marshal(get(resources[id], "Properties", "Policies"))
		if strings.Contains(string(b), `"Resource":"*"`) {
			t.Errorf("%s: a policy grants on Resource *: %s", id, b)
		}
		if !strings.Contains(string(b), ":identity/") {
			t.Errorf("%s: SES permission is not scoped to the sender identity", id)
		}
	}
	if dir := get(doc, "Globals", "Function", "Environment", "Variables", "CAIO_LICENSE_CACHE_DIR"); dir == "/tmp" {
		t.Error("the cache directory is /tmp itself, which the cache refuses (writable by others)")
	}
}

// Every alarm on the functions' own metrics names a metric of the catalog,
// with dimensions the EMF lines carry: an alarm on a name or dimension no
// line has would never fire.
func TestAlarmsWatchMetricsThatExist(t *testing.T) {
	doc := loadTemplate(t)
	found := 0
	for name, r := range doc["Resources"].(map[string]any) {
		if get(r, "Type") != "AWS::CloudWatch::Alarm" || get(r, "Properties", "Namespace") != metrics.Namespace {
			continue
		}
		found++
		spec, ok := metrics.Lookup(get(r, "Properties", "MetricName").(string))
		if !ok {
			t.Errorf("%s watches %v, which no function emits", name, get(r, "Properties", "MetricName"))
			continue
		}
		allowed := map[string]bool{"Function": true}
		for _, l := range spec.Labels {
			allowed[strings.ToUpper(l[:1])+l[1:]] = true
		}
		dims := get(r, "Properties", "Dimensions").([]any)
		names := []string{}
		for _, d := range dims {
			n := get(d, "Name").(string)
			if !allowed[n] {
				t.Errorf("%s: dimension %s is not on %s lines", name, n, spec.Name)
			}
			names = append(names, n)
		}
		// EMF publishes all the dimensions, or Function alone: nothing between.
		if len(names) != 1 && len(names) != len(allowed) {
			t.Errorf("%s: dimensions %v match no dimension set of %s", name, names, spec.Name)
		}
		fn := get(dims[0], "Value").(string)
		if get(doc, "Resources", strings.ToUpper(fn[:1])+fn[1:]+"Function") == nil {
			t.Errorf("%s: no function %s", name, fn)
		}
	}
	if found < 5 {
		t.Fatalf("%d alarms on the functions' metrics, want 5", found)
	}
}

// The overage alarm watches the very line the activate function writes when
// it answers OVERAGE: the Requests metric with the dimensions (Function,
// Route, Code) and values of that line, one of its dimension sets, at
// least one such answer in an hour, to the alarm topic. The line comes
// from the API itself, on a real seat above max instances.
func TestOverageAlarmWatchesTheOverageAnswers(t *testing.T) {
	doc := loadTemplate(t)
	alarm := get(doc, "Resources", "OverageSeatsAlarm")
	if get(alarm, "Type") != "AWS::CloudWatch::Alarm" {
		t.Fatal("no OverageSeatsAlarm in the template")
	}
	p := func(k string) any { return get(alarm, "Properties", k) }
	if p("Threshold") != 1 || p("ComparisonOperator") != "GreaterThanOrEqualToThreshold" || p("EvaluationPeriods") != 1 ||
		p("TreatMissingData") != "notBreaching" || fmt.Sprint(p("AlarmActions")) != "[Ref AlarmTopic]" {
		t.Fatalf("OverageSeatsAlarm: %v", get(alarm, "Properties"))
	}
	// The metrics it sums: their dimensions, each as a set.
	watched := map[string]bool{}
	var sum string
	var ids []string
	for _, m := range p("Metrics").([]any) {
		if e, ok := get(m, "Expression").(string); ok {
			sum = e
			continue
		}
		ids = append(ids, get(m, "Id").(string))
		stat := get(m, "MetricStat")
		if get(stat, "Metric", "Namespace") != metrics.Namespace || get(stat, "Metric", "MetricName") != metrics.Requests ||
			get(stat, "Stat") != "Sum" || get(stat, "Period") != 3600 {
			t.Fatalf("OverageSeatsAlarm metric %v", m)
		}
		dims := map[string]string{}
		for _, d := range get(stat, "Metric", "Dimensions").([]any) {
			dims[get(d, "Name").(string)] = get(d, "Value").(string)
		}
		watched[fmt.Sprint(dims)] = false
	}
	if sum != "SUM(["+strings.Join(ids, ", ")+"])" || len(watched) != 2 {
		t.Fatalf("OverageSeatsAlarm sums %q over %v", sum, watched)
	}

	// A seat above max instances, asked of the API as the function runs it.
	ctx := context.Background()
	db, _ := newDB(t)
	key := issueKey(t, db, licensing.GenerateRequest{Tier: "standard", ExpiresDays: 30,
		MaxInstances: 1, MaxServices: 10, MaxRequestsPerDay: 1000, OveragePercent: 100})
	store, err := sqlitestore.Open(ctx, db, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc := licensing.New(licensing.Config{Store: store, Actor: "test", Secret: secret})
	var lines bytes.Buffer
	api := httpapi.New(svc, slog.New(slog.DiscardHandler), nil)
	api.SetMetrics(metrics.NewEMF(&lines, "Function", "activate"))
	// node-2 takes the overage seat (activate) and renews it (validate).
	answer := func(path, instance string) string {
		h := http.Header{}
		h.Set(contract.HeaderInstanceID, instance)
		resp := api.Serve(ctx, httpapi.Request{Method: "POST", Path: path, SourceIP: "203.0.113.10",
			Header: h, Body: []byte(`{"license_key":"` + key + `"}`)})
		var body struct{ Code string }
		json.Unmarshal(resp.Body, &body)
		return body.Code
	}
	answer(contract.PathActivate, "node-1")
	if code := answer(contract.PathActivate, "node-2"); code != contract.CodeOverage {
		t.Fatalf("the seat above max instances was answered %s, want OVERAGE", code)
	}
	if code := answer(contract.PathValidate, "node-2"); code != contract.CodeOverage {
		t.Fatalf("the overage seat's validate was answered %s, want OVERAGE", code)
	}
	for _, raw := range strings.Split(strings.TrimSpace(lines.String()), "\n") {
		var line map[string]any
		if err := json.Unmarshal([]byte(raw), &line); err != nil {
			t.Fatal(err)
		}
		if line[metrics.Requests] == nil || line["Code"] != contract.CodeOverage {
			continue
		}
		for _, set := range get(line, "_aws", "CloudWatchMetrics").([]any)[0].(map[string]any)["Dimensions"].([]any) {
			dims := map[string]string{}
			for _, name := range set.([]any) {
				dims[name.(string)] = line[name.(string)].(string)
			}
			if _, ok := watched[fmt.Sprint(dims)]; ok {
				watched[fmt.Sprint(dims)] = true
			}
		}
	}
	for dims, seen := range watched {
		if !seen {
			t.Fatalf("OverageSeatsAlarm watches %v, which no OVERAGE line carries:\n%s", dims, lines.String())
		}
	}
}

// The internet-facing function links neither what mints keys nor what it
// does not use at a cost to its cold start: the secret's strength estimate
// (zxcvbn dictionaries), the report's templates, the Prometheus client, the
// mail providers (the SES client's schemas, go-mail and the templates it
// brings), any text or HTML template. Listed with the build tags its
// bootstrap is built with (Makefile).
func TestActivateLinksOnlyWhatItNeeds(t *testing.T) {
	out, err := exec.Command("go", "list", "-tags", "lambda.norpc", "-deps", "./activate").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, banned := range []string{"shared/secretstrength", "shared/report", "shared/reportstore", "prometheus", "chromedp", "zxcvbn",
		"shared/mail/sesmail", "shared/mail/smtpmail", "shared/wiring/mailwiring", "service/sesv2", "wneessen/go-mail", "text/template"} {
		if strings.Contains(string(out), banned) {
			t.Errorf("the activate function links %s", banned)
		}
	}
}

// No function links the AWS SDK's configuration chain (profiles, SSO,
// STS, instance metadata): each reads its region and credentials from the
// environment Lambda gives it (package awsconf), and the chain's service
// clients cost every cold start their initialisation.
func TestFunctionsLinkNoAWSProfileChain(t *testing.T) {
	for fn := range functionIDs {
		out, err := exec.Command("go", "list", "-tags", "lambda.norpc", "-deps", "./"+fn).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", fn, err, out)
		}
		for _, banned := range []string{"aws-sdk-go-v2/config", "service/sts", "service/sso", "service/ssooidc", "service/signin", "feature/ec2/imds", "shared/awsconf/sdkchain"} {
			if strings.Contains(string(out), banned) {
				t.Errorf("the %s function links %s", fn, banned)
			}
		}
	}
}

// statement is one IAM statement of a function's policies or the bucket
// policy, as the template states it.
type statement struct {
	Effect    string
	Actions   []string
	Resources []string
	Condition map[string]any
	Principal any
}

func strs(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, s := range x {
			out = append(out, fmt.Sprint(s))
		}
		return out
	}
	return nil
}

// statements lists every statement under v (a function's Policies, with
// its !If branches, or a policy document).
func statements(v any) []statement {
	var out []statement
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if sts, ok := x["Statement"].([]any); ok {
				for _, st := range sts {
					cond, _ := get(st, "Condition").(map[string]any)
					out = append(out, statement{Effect: fmt.Sprint(get(st, "Effect")), Actions: strs(get(st, "Action")),
						Resources: strs(get(st, "Resource")), Condition: cond, Principal: get(st, "Principal")})
				}
				return
			}
			for _, vv := range x {
				walk(vv)
			}
		case []any:
			for _, vv := range x {
				walk(vv)
			}
		}
	}
	walk(v)
	return out
}

// short names a database object of the template's ARN: "" is the newest
// snapshot itself, ".log/*" the deltas, and so on.
func short(resource string) string {
	const db = "Sub ${DatabaseBucket.Arn}/caio_licenses.db"
	if r, ok := strings.CutPrefix(resource, db); ok {
		return "db" + r
	}
	return strings.TrimPrefix(resource, "Sub ${DatabaseBucket.Arn}/")
}

// condition renders a statement's condition as "Operator key=value ...".
func condition(c map[string]any) string {
	var parts []string
	for op, kv := range c {
		for k, v := range kv.(map[string]any) {
			parts = append(parts, fmt.Sprintf("%s %s=%s", op, k, strings.Join(strs(v), ",")))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// Least privilege on the database, statement by statement: the function
// on the internet only creates deltas (If-None-Match, which the bucket
// policy requires of everyone), one scheduled function publishes the
// snapshot, no function may delete the database's history (lifecycle
// rules expire it, after as many days as the functions keep it), and
// listing is confined to the database's own keys.
func TestTemplateLeastPrivilege(t *testing.T) {
	doc := loadTemplate(t)
	resources := doc["Resources"].(map[string]any)
	const createOnly = " if Null s3:if-none-match=false"
	// A delta's name and nothing else: 20 characters (digits, as the log
	// writes them; IAM has no digit class). A key of another shape is no
	// delta's, and readers refuse it.
	const delta = "????????????????????"
	// A merged delta's name: the first and last delta it merges.
	const merged = "db.log.merged/" + delta + "-" + delta
	// Every S3 write each function may make: action, object, condition.
	// Whoever writes deltas also merges them (s3log/merged.go).
	writes := map[string][]string{
		"ActivateFunction":   {"s3:PutObject db.log/" + delta + createOnly, "s3:PutObject " + merged + createOnly},
		"GenerateFunction":   {"s3:PutObject db.log/" + delta + createOnly, "s3:PutObject " + merged + createOnly},
		"DistributeFunction": {"s3:PutObject db.log/" + delta + createOnly, "s3:PutObject " + merged + createOnly},
		"StatsFunction":      {"s3:PutObject reports/*"},
		"RemindersFunction": {"s3:PutObject db.log/" + delta + createOnly, "s3:PutObject " + merged + createOnly, "s3:PutObject db.archive/*" + createOnly,
			"s3:PutObject db if Null s3:if-match=false", "s3:PutObject db.snapshots/*"},
	}
	reads := map[string][]string{
		"ActivateFunction":   {"db", "db.log.merged/*", "db.log/*"},
		"GenerateFunction":   {"db", "db.log.merged/*", "db.log/*"},
		"DistributeFunction": {"db", "db.log.merged/*", "db.log/*"},
		"StatsFunction":      {"db", "db.archive/*", "db.log.merged/*", "db.log/*", "reports/*"},
		"RemindersFunction":  {"db", "db.archive/*", "db.log.merged/*", "db.log/*", "db.snapshots/*"},
	}
	for _, id := range functionIDs {
		var w, r, listed []string
		for _, st := range statements(get(resources[id], "Properties", "Policies")) {
			if st.Effect != "Allow" {
				t.Errorf("%s: a %s statement in its own policies", id, st.Effect)
			}
			for _, a := range st.Actions {
				if !strings.HasPrefix(a, "s3:") {
					continue
				}
				switch {
				case a == "s3:GetObject":
					for _, res := range st.Resources {
						r = append(r, short(res))
					}
				case a == "s3:ListBucket":
					if fmt.Sprint(st.Resources) != "[GetAtt DatabaseBucket.Arn]" {
						t.Errorf("%s lists %v", id, st.Resources)
					}
					listed = strs(get(st.Condition, "StringLike", "s3:prefix"))
				default: // every other S3 action writes or deletes
					for _, res := range st.Resources {
						line := a + " " + short(res)
						if len(st.Condition) > 0 {
							line += " if " + condition(st.Condition)
						}
						w = append(w, line)
					}
				}
			}
		}
		slices.Sort(w)
		slices.Sort(r)
		want := slices.Sorted(slices.Values(writes[id]))
		if !slices.Equal(w, want) {
			t.Errorf("%s may write %q\nwant exactly %q", id, w, want)
		}
		if !slices.Equal(r, reads[id]) {
			t.Errorf("%s may read %q, want %q", id, r, reads[id])
		}
		// Listing only the database's keys: its log, and the 404 for the
		// next delta, which S3 answers from ListBucket with the key as
		// prefix.
		for _, p := range listed {
			if p != "caio_licenses.db" && !strings.HasPrefix(p, "caio_licenses.db.") {
				t.Errorf("%s may list %s", id, p)
			}
		}
		if !slices.Contains(listed, "caio_licenses.db") || !slices.Contains(listed, "caio_licenses.db.log/*") || !slices.Contains(listed, "caio_licenses.db.log.merged/*") {
			t.Errorf("%s may list %v: it needs the database, its log and its merged deltas (a 404 for the next delta, not a 403)", id, listed)
		}
	}

	policy := statements(get(resources["DatabaseBucketPolicy"], "Properties", "PolicyDocument"))
	denies := func(action, object string) []statement {
		var out []statement
		for _, st := range policy {
			if st.Effect == "Deny" && st.Principal == "*" && slices.Contains(st.Actions, action) && slices.ContainsFunc(st.Resources, func(r string) bool { return short(r) == object }) {
				out = append(out, st)
			}
		}
		return out
	}
	// The bucket refuses a PUT of a delta (or an archive file) without
	// If-None-Match, from anyone: the activate function's role included.
	for _, object := range []string{"db.log/*", "db.log.merged/*", "db.archive/*"} {
		if d := denies("s3:PutObject", object); len(d) != 1 || condition(d[0].Condition) != "Null s3:if-none-match=true" {
			t.Errorf("the bucket policy does not refuse a PUT on %s without If-None-Match: %+v", object, d)
		}
	}
	// No function may delete the database, its deltas, snapshots or
	// archives, whatever its own policies say.
	for _, object := range []string{"db", "db.log/*", "db.log.merged/*", "db.snapshots/*", "db.archive/*"} {
		for _, action := range []string{"s3:DeleteObject", "s3:DeleteObjectVersion"} {
			d := denies(action, object)
			if len(d) != 1 {
				t.Errorf("the bucket policy does not deny %s on %s to the functions", action, object)
				continue
			}
			roles := strs(get(d[0].Condition, "ArnEquals", "aws:PrincipalArn"))
			if len(d[0].Condition) != 1 || len(roles) != len(functionIDs) {
				t.Errorf("%s on %s is denied under %v: want exactly every function's role", action, object, d[0].Condition)
			}
			for _, id := range functionIDs {
				if !slices.Contains(roles, "GetAtt "+id+"Role.Arn") {
					t.Errorf("%s may %s on %s: its role is not in the bucket policy's deny", id, action, object)
				}
			}
		}
	}

	// Lifecycle expires what no one may delete, after as many days as the
	// functions keep history for (CAIO_S3_HISTORY_DAYS): one parameter.
	if get(doc, "Globals", "Function", "Environment", "Variables", "CAIO_S3_HISTORY_DAYS") != "Ref S3HistoryDays" {
		t.Error("the functions' CAIO_S3_HISTORY_DAYS is not the S3HistoryDays parameter")
	}
	expires := map[string]any{}
	for _, rule := range asList(get(resources["DatabaseBucket"], "Properties", "LifecycleConfiguration", "Rules")) {
		if get(rule, "Status") == "Enabled" && get(rule, "ExpirationInDays") != nil {
			expires[fmt.Sprint(get(rule, "Prefix"))] = get(rule, "ExpirationInDays")
		}
	}
	if len(expires) != 3 || expires["caio_licenses.db.log/"] != "Ref S3HistoryDays" || expires["caio_licenses.db.log.merged/"] != "Ref S3HistoryDays" ||
		expires["caio_licenses.db.snapshots/"] != "Ref S3HistoryDays" {
		t.Errorf("lifecycle expirations %v: want the deltas, the merged deltas and the snapshots, after S3HistoryDays, and nothing else", expires)
	}

	// The snapshot's one publisher runs on a schedule of its own.
	snapshot := get(resources["RemindersFunction"], "Properties", "Events", "Snapshot")
	if get(snapshot, "Type") != "ScheduleV2" || get(snapshot, "Properties", "Input") != `{"snapshot": true}` || get(snapshot, "Properties", "ScheduleExpression") != "Ref SnapshotSchedule" {
		t.Errorf("reminders has no snapshot schedule: %v", snapshot)
	}
	if exp, _ := get(doc, "Parameters", "SnapshotSchedule", "Default").(string); !regexp.MustCompile(`^rate\(([1-9]|1[0-5]) minutes?\)$`).MatchString(exp) {
		t.Errorf("SnapshotSchedule default %q: a cold start replays a period's deltas, keep it at 15 minutes or less", exp)
	}
	// ... and is the only function wired to publish (its Needs); the
	// others only create deltas (TestActivateNeverPublishesASnapshot).
	for fn := range functionIDs {
		src, err := os.ReadFile(filepath.Join(fn, "main.go"))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := strings.Contains(string(src), "Snapshots: true"), fn == "reminders"; got != want {
			t.Errorf("functions/%s/main.go: Needs.Snapshots is %v, want %v", fn, got, want)
		}
	}
}

// The stack keeps the hot database as lean as the CLI does: its default
// retention is the product's.
func TestTemplateRetentionIsTheDefault(t *testing.T) {
	doc := loadTemplate(t)
	got := get(doc["Parameters"], "EventRetentionDays", "Default")
	if fmt.Sprint(got) != fmt.Sprint(licensing.DefaultRetentionDays) {
		t.Fatalf("EventRetentionDays defaults to %v, want licensing.DefaultRetentionDays (%d)", got, licensing.DefaultRetentionDays)
	}
}
