package lambdaevent_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/caio-licensing/caio-licensing/shared/lambdaevent"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

func TestClassifyEverySample(t *testing.T) {
	want := map[string]lambdaevent.Kind{
		"activate/http-api-activate.json":                lambdaevent.HTTPv2,
		"activate/http-api-activate-no-instance-id.json": lambdaevent.HTTPv2,
		"activate/http-api-validate.json":                lambdaevent.HTTPv2,
		"activate/http-api-deactivate.json":              lambdaevent.HTTPv2,
		"activate/rest-api-activate.json":                lambdaevent.RESTv1,
		"generate/direct.json":                           lambdaevent.Direct,
		"distribute/direct.json":                         lambdaevent.Direct,
		"stats/direct.json":                              lambdaevent.Direct,
		"reminders/scheduler-input.json":                 lambdaevent.Direct,
		"reminders/scheduler-no-input.json":              lambdaevent.Scheduler,
		"reminders/eventbridge-rule.json":                lambdaevent.EventBridge,
	}
	files, _ := filepath.Glob("../../infra/events/*/*.json")
	if len(files) != len(want) {
		t.Fatalf("%d samples on disk, %d classified here: keep them in step", len(files), len(want))
	}
	for name, kind := range want {
		raw, err := os.ReadFile(filepath.Join("../../infra/events", name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := lambdaevent.Classify(raw)
		if err != nil || got != kind {
			t.Errorf("%s: %s %v, want %s", name, got, err, kind)
		}
	}
}

func TestClassifyRejectsNonObjects(t *testing.T) {
	for _, payload := range []string{"", "null", "[]", "42", `"text"`, "{", "{\"a\":}"} {
		if _, err := lambdaevent.Classify([]byte(payload)); licensing.ErrorCode(err) != licensing.CodeBadRequest {
			t.Errorf("Classify(%q): %v, want BAD_REQUEST", payload, err)
		}
	}
}
