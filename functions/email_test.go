package functions_test

import (
	"strings"
	"testing"

	"github.com/caio-licensing/caio-licensing/shared/mail/mailtest"
)

// The distribute function emails by SMTP and the reminders function by SES,
// under the emulator; a duplicate scheduled event sends nothing twice.
func TestEmailDeliveryUnderTheEmulator(t *testing.T) {
	db, _ := newDB(t)
	mp := mailtest.StartMailpit(t, true)
	ses := mailtest.StartSES(t)
	distEnv := map[string]string{"CAIO_LICENSE_DB_PATH": db, "CAIO_LICENSE_SECRET": secret}
	for k, v := range mp.Env() {
		distEnv[k] = v
	}
	remEnv := map[string]string{"CAIO_LICENSE_DB_PATH": db}
	for k, v := range ses.Env() {
		remEnv[k] = v
	}
	distribute := startEmulator(t, bootstrap(t, "distribute"), distEnv)
	reminders := startEmulator(t, bootstrap(t, "reminders"), remEnv)

	var dist struct {
		Key      string                                       `json:"license_key"`
		Delivery struct{ Status, Provider, MessageID string } `json:"delivery"`
	}
	distribute.invokeJSON(t, sample(t, "distribute", "direct", ""), &dist)
	if dist.Delivery.Status != "sent" || dist.Delivery.Provider != "smtp" {
		t.Fatalf("distribute: %+v", dist)
	}
	msgs := mp.Messages(t)
	if len(msgs) != 1 || msgs[0].To[0] != "customer@example.com" || !strings.Contains(msgs[0].Text, dist.Key) || !strings.Contains(msgs[0].HTML, dist.Key) {
		t.Fatalf("mailpit: %+v", msgs)
	}
	// Due in 5 days: one reminder (threshold 7), to the recipient.
	distribute.invokeJSON(t, []byte(`{"customer_id":"CUST-001","tier":"standard","expires_days":5,"email":"soon@customer.test"}`), &dist)

	sent := 0
	for _, name := range []string{"scheduler-input", "scheduler-input", "eventbridge-rule", "scheduler-no-input"} {
		var res struct {
			Found, Sent, Skipped, Failed int
		}
		reminders.invokeJSON(t, sample(t, "reminders", name, ""), &res)
		sent += res.Sent
	}
	got := ses.Messages(t)
	if sent != 1 || len(got) != 1 || got[0].To[0] != "soon@customer.test" || !strings.Contains(got[0].Subject, "expires") {
		t.Fatalf("%d sent; SES store %+v", sent, got)
	}
	logs := distribute.logs.String() + reminders.logs.String()
	if strings.Contains(logs, "smtp-password-not-for-logs") || strings.Contains(logs, dist.Key) {
		t.Fatal("a password or key is in the function logs")
	}
	if !reminders.waitLogs(`"msg":"reminders"`, `"sent":1`) {
		t.Fatalf("reminders logs lack the counts:\n%s", reminders.logs.String())
	}
}
