package main_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caio-licensing/caio-licensing/shared/mail/mailtest"
)

func TestDistributeWithoutProviderSkipsAndSucceeds(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.setup()
	r := c.ok("distribute-license", "CUST-001", "buyer@customer.test", "standard", "--send-email")
	if !strings.Contains(r.stderr, "email delivery skipped") || !strings.Contains(r.stderr, "CAIO_SMTP_SERVER") || !keyPattern.MatchString(r.lastLine()) {
		t.Fatalf("%s%s", r.stdout, r.stderr)
	}
	// Said once (the warning), and the audit log agrees with the delivery record.
	if strings.Contains(r.stdout, "CAIO_SMTP_SERVER") || !strings.Contains(r.stdout, "Email: not sent (skipped") {
		t.Fatalf("the skip is reported twice or not at all:\n%s", r.stdout)
	}
	if ev := c.ok("list-events").stdout; !strings.Contains(ev, "delivery.skipped") || strings.Contains(ev, "delivery.failed") {
		t.Fatalf("the audit log says:\n%s", ev)
	}
}

func TestEmailCommands(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.setup()
	mp := mailtest.StartMailpit(t, true)
	for k, v := range mp.Env() {
		c.env[k] = v
	}
	r := c.ok("--json", "distribute-license", "CUST-001", "buyer@customer.test", "standard", "--send-email", "--expires-days", "5")
	var out struct {
		Key      string                                       `json:"license_key"`
		Delivery struct{ Status, Provider, MessageID string } `json:"delivery"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Delivery.Status != "sent" || out.Delivery.Provider != "smtp" {
		t.Fatalf("%v %s", err, r.stdout)
	}
	c.ok("resend-license", out.Key, "--to", "cto@customer.test")
	if msgs := mp.Messages(t); len(msgs) != 2 || msgs[1].To[0] != "cto@customer.test" || !strings.Contains(msgs[1].Text, out.Key) {
		t.Fatalf("messages %+v", msgs)
	}
	// Reminders: the 5-day license is due at 7; a second run sends nothing.
	r = c.ok("renewal-reminders", "--send")
	if !strings.Contains(r.stdout, "1 found, 1 sent") {
		t.Fatalf("first run:\n%s", r.stdout)
	}
	r = c.ok("renewal-reminders", "--send")
	if !strings.Contains(r.stdout, "0 found, 0 sent") {
		t.Fatalf("second run:\n%s", r.stdout)
	}
	if n := len(mp.Messages(t)); n != 3 {
		t.Fatalf("%d messages, want 3", n)
	}
	deliveries := c.ok("list-deliveries").stdout
	for _, want := range []string{"buyer@customer.test", "cto@customer.test", "reminder (7d)", "smtp", "sent"} {
		if !strings.Contains(deliveries, want) {
			t.Fatalf("list-deliveries lacks %q:\n%s", want, deliveries)
		}
	}
	if strings.Contains(deliveries, "smtp-password-not-for-logs") {
		t.Fatal("the SMTP password is in the records")
	}

	// A configured provider that fails: non-zero, the key still printed, the license kept.
	c.env["CAIO_SMTP_PORT"] = "1"
	r = c.run(nil, "distribute-license", "CUST-001", "late@customer.test", "standard", "--send-email")
	if r.code != 1 || !strings.Contains(r.stderr, "DELIVERY_FAILED") || !strings.Contains(r.stderr, "resend-license") || !keyPattern.MatchString(r.lastLine()) {
		t.Fatalf("failing provider: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stderr, "smtp-password-not-for-logs") {
		t.Fatal("the SMTP password is in the output")
	}
	if !strings.Contains(c.ok("list-licenses").stdout, "late@customer.test") {
		t.Fatal("the license was not kept")
	}
	// Bad configuration stops before anything is generated.
	before := c.ok("--json", "list-licenses").stdout
	c.env["CAIO_SMTP_SENDER"] = ""
	c.fails(1, "CONFIG", "CAIO_SMTP_SENDER", "distribute-license", "CUST-001", "x@customer.test", "standard", "--send-email")
	c.fails(2, "BAD_REQUEST", "not a valid address", "distribute-license", "CUST-001", "x@customer.test\r\nBcc: y@z.test", "standard", "--send-email")
	if after := c.ok("--json", "list-licenses").stdout; after != before {
		t.Fatal("a refused distribute-license generated a license")
	}
}
