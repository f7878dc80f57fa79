package operator_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/caio-licensing/caio-licensing/shared/delivery"
	"github.com/caio-licensing/caio-licensing/shared/httpapi/apitest"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/mail/nomail"
	"github.com/caio-licensing/caio-licensing/shared/operator"
	"github.com/caio-licensing/caio-licensing/shared/secretbox/secretboxtest"
)

// The generate and distribute functions take grace_days and
// overage_percent as the CLI takes --grace-days and --overage-percent:
// absent, none; out of bounds, BAD_REQUEST naming the term, and nothing
// minted.
func TestGenerateAndDistributeTakeGraceAndOverage(t *testing.T) {
	secretboxtest.CheapKDF()
	ctx := context.Background()
	svc, _ := apitest.Service(t, t.TempDir(), nil)
	log := slog.New(slog.DiscardHandler)
	h := operator.New(svc, []int{30}, delivery.New(svc, nomail.Sender{}, log))
	terms := func(out any) (int64, int64) {
		t.Helper()
		raw, _ := json.Marshal(out)
		var is struct{ License licensing.License }
		if err := json.Unmarshal(raw, &is); err != nil || is.License.ID == "" {
			t.Fatalf("not a license: %s", raw)
		}
		return is.License.GraceDays, is.License.OveragePercent
	}
	for _, fn := range []struct {
		name string
		call func(context.Context, json.RawMessage) (any, error)
		base string
	}{
		{"generate", h.Generate, `"customer_id":"CUST-001","tier":"standard"`},
		{"distribute", h.Distribute, `"customer_id":"CUST-001","tier":"standard","email":"it@acme.example"`},
	} {
		out, err := fn.call(ctx, json.RawMessage(`{`+fn.base+`,"grace_days":14,"overage_percent":20}`))
		if err != nil {
			t.Fatalf("%s: %v", fn.name, err)
		}
		if g, o := terms(out); g != 14 || o != 20 {
			t.Fatalf("%s: grace %d, overage %d; want 14, 20", fn.name, g, o)
		}
		out, err = fn.call(ctx, json.RawMessage(`{`+fn.base+`}`))
		if g, o := terms(out); err != nil || g != 0 || o != 0 {
			t.Fatalf("%s without the terms: grace %d, overage %d, %v", fn.name, g, o, err)
		}
		for input, term := range map[string]string{
			`"grace_days":91`: "grace-days", `"grace_days":-1`: "grace-days",
			`"overage_percent":101`: "overage-percent", `"overage_percent":-5`: "overage-percent",
			`"grace_days":"7"`: "grace_days",
		} {
			_, err := fn.call(ctx, json.RawMessage(`{`+fn.base+`,`+input+`}`))
			if licensing.ErrorCode(err) != licensing.CodeBadRequest || !strings.Contains(err.Error(), term) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s %s: %v, want one BAD_REQUEST line naming %s", fn.name, input, err, term)
			}
		}
	}
	lics, err := svc.Licenses(ctx, "", "")
	if err != nil || len(lics) != 4 {
		t.Fatalf("%d licenses minted, want 4 (none by a refused input): %v", len(lics), err)
	}
}
