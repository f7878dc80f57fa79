package delivery_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/config"
	"github.com/caio-licensing/caio-licensing/shared/delivery"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/mail"
	"github.com/caio-licensing/caio-licensing/shared/mail/mailtest"
	"github.com/caio-licensing/caio-licensing/shared/mail/smtpmail"
	"github.com/caio-licensing/caio-licensing/shared/secretbox/secretboxtest"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
	"github.com/caio-licensing/caio-licensing/shared/wiring/mailwiring"
)

const secret = "9Id4BcFl+y+7ZlB65HuC4HiIY69VukyDdmUSMwUOeFA=" // strong: a new signing key needs one

type env struct {
	t    *testing.T
	path string
	svc  *licensing.Service
}

func newEnv(t *testing.T) *env {
	t.Helper()
	path := filepath.Join(t.TempDir(), "licenses.db")
	store, err := sqlitestore.Open(context.Background(), path, sqlitestore.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	svc := licensing.New(licensing.Config{Store: store, Actor: "test", Secret: secret})
	if _, err := svc.AddCustomer(context.Background(), "CUST-001", "Acme Corp", "ops@acme.test"); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, path: path, svc: svc}
}

func (e *env) issue(days int, recipient string) licensing.Sendable {
	e.t.Helper()
	is, err := e.svc.Generate(context.Background(), licensing.GenerateRequest{CustomerID: "CUST-001", Tier: "standard", ExpiresDays: days,
		Features: []string{"analytics", "audit"}, MaxInstances: 5, MaxServices: 100, MaxRequestsPerDay: 10000, Recipient: recipient})
	if err != nil {
		e.t.Fatal(err)
	}
	c, _ := e.svc.Customer(context.Background(), "CUST-001")
	return licensing.Sendable{License: is.License, Customer: c, Key: is.Key}
}

// mailer builds the provider from exactly these variables, as a process would.
func mailer(t *testing.T, vars ...map[string]string) mail.Sender {
	t.Helper()
	for _, k := range []string{"CAIO_EMAIL_PROVIDER", "CAIO_SES_SENDER", "CAIO_SMTP_SERVER", "CAIO_SMTP_PORT", "CAIO_SMTP_USER",
		"CAIO_SMTP_PASSWORD", "CAIO_SMTP_SENDER", "CAIO_SMTP_TLS", "CAIO_SMTP_CA_FILE", "AWS_ENDPOINT_URL_SESV2"} {
		t.Setenv(k, "")
	}
	for _, m := range vars {
		for k, v := range m {
			t.Setenv(k, v)
		}
	}
	s, err := mailwiring.Mailer(context.Background(), config.OS())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func quiet() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

func TestLicenseBySMTPWithStartTLSAndAuth(t *testing.T) {
	e := newEnv(t)
	mp := mailtest.StartMailpit(t, true)
	s := e.issue(365, "buyer@customer.test")
	res, err := delivery.New(e.svc, mailer(t, mp.Env()), quiet()).License(context.Background(), s, "buyer@customer.test")
	if err != nil || res.Status != "sent" || res.Provider != "smtp" || res.MessageID == "" {
		t.Fatalf("%+v %v", res, err)
	}
	msgs := mp.Messages(t)
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	for _, part := range []string{m.Text, m.HTML} {
		for _, want := range []string{"Acme Corp", s.Key, "standard", s.License.ExpiresAt.Format("2006-01-02"), "analytics, audit", "100", "10000", "activate"} {
			if !strings.Contains(part, want) {
				t.Fatalf("message part lacks %q:\n%s", want, part)
			}
		}
	}
	if m.To[0] != "buyer@customer.test" || m.From != "licensing@vendor.test" {
		t.Fatalf("envelope %+v", m)
	}
	ds, _ := e.svc.Deliveries(context.Background(), s.License.ID)
	if len(ds) != 1 || ds[0].Outcome != "sent" || ds[0].Provider != "smtp" || ds[0].MessageID != res.MessageID || ds[0].Recipient != "buyer@customer.test" {
		t.Fatalf("record %+v", ds)
	}
}

func TestLicenseBySES(t *testing.T) {
	e := newEnv(t)
	ses := mailtest.StartSES(t)
	s := e.issue(365, "")
	res, err := delivery.New(e.svc, mailer(t, ses.Env()), quiet()).License(context.Background(), s, "buyer@customer.test")
	if err != nil || res.Provider != "ses" || res.MessageID == "" {
		t.Fatalf("%+v %v", res, err)
	}
	msgs := ses.Messages(t)
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, s.Key) || !strings.Contains(msgs[0].HTML, s.Key) || msgs[0].To[0] != "buyer@customer.test" {
		t.Fatalf("SES store %+v", msgs)
	}
}

func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestSESFailingFallsBackToSMTP(t *testing.T) {
	e := newEnv(t)
	mp := mailtest.StartMailpit(t, false)
	ses := map[string]string{"CAIO_SES_SENDER": "licensing@vendor.test", "AWS_ENDPOINT_URL_SESV2": "http://" + closedPort(t),
		"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_MAX_ATTEMPTS": "1"}
	for _, explicit := range []string{"", "ses"} {
		s := e.issue(365, "")
		res, err := delivery.New(e.svc, mailer(t, ses, mp.Env(), map[string]string{"CAIO_EMAIL_PROVIDER": explicit}), quiet()).License(context.Background(), s, "buyer@customer.test")
		if err != nil || res.Provider != "smtp" || res.Fallback != "ses" {
			t.Fatalf("provider %q: %+v %v", explicit, res, err)
		}
		ds, _ := e.svc.Deliveries(context.Background(), s.License.ID)
		if len(ds) != 1 || ds[0].Provider != "smtp" || !strings.Contains(ds[0].Error, "ses failed") {
			t.Fatalf("the record must say SES failed and SMTP sent: %+v", ds)
		}
	}
	if n := len(mp.Messages(t)); n != 2 {
		t.Fatalf("%d messages by SMTP, want 2", n)
	}
}

func TestNoProviderSkips(t *testing.T) {
	e := newEnv(t)
	s := e.issue(365, "")
	res, err := delivery.New(e.svc, mailer(t), quiet()).License(context.Background(), s, "buyer@customer.test")
	if err != nil || res.Status != "skipped" || !strings.Contains(res.Detail, "CAIO_SMTP_SERVER") || !strings.Contains(res.Detail, "CAIO_SES_SENDER") {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestFailuresAreErrorsAndLeaveNoHalfState(t *testing.T) {
	e := newEnv(t)
	host, port, _ := net.SplitHostPort(closedPort(t))
	refused := map[string]string{"CAIO_SMTP_SERVER": host, "CAIO_SMTP_PORT": port, "CAIO_SMTP_SENDER": "licensing@vendor.test",
		"CAIO_SMTP_TLS": "none", "CAIO_SMTP_USER": "u", "CAIO_SMTP_PASSWORD": "smtp-password-not-for-logs"}
	s := e.issue(365, "")
	res, err := delivery.New(e.svc, mailer(t, refused), quiet()).License(context.Background(), s, "buyer@customer.test")
	if licensing.ErrorCode(err) != delivery.CodeDeliveryFailed || res.Status != "failed" || !strings.Contains(err.Error(), "resend-license") {
		t.Fatalf("refused: %+v %v", res, err)
	}
	if strings.Contains(err.Error(), "smtp-password-not-for-logs") || strings.Contains(err.Error(), s.Key) {
		t.Fatal("the error holds the password or the key")
	}
	// The license stays and can be sent again once SMTP works.
	mp := mailtest.StartMailpit(t, false)
	again, err := e.svc.Sendable(context.Background(), s.License.ID)
	if err != nil || again.Key != s.Key {
		t.Fatalf("sendable: %v", err)
	}
	if _, err := delivery.New(e.svc, mailer(t, mp.Env()), quiet()).License(context.Background(), again, "buyer@customer.test"); err != nil {
		t.Fatal(err)
	}
	ds, _ := e.svc.Deliveries(context.Background(), s.License.ID)
	if len(ds) != 2 || ds[0].Outcome != "failed" || ds[1].Outcome != "sent" {
		t.Fatalf("records %+v", ds)
	}

	// A server that accepts and never answers: a timeout, not a hang.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	h, p, _ := net.SplitHostPort(l.Addr().String())
	var portNum int
	fmt.Sscan(p, &portNum)
	silent, err := smtpmail.New(smtpmail.Config{Server: h, Port: portNum, Sender: "licensing@vendor.test", TLS: "none", Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := silent.Send(context.Background(), mail.Message{To: "a@b.test", Subject: "x", Text: "x", HTML: "x"}); err == nil {
		t.Fatal("a silent server accepted the message")
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("the timeout did not bound the send")
	}
}

func TestBadAddressesAndConfiguration(t *testing.T) {
	e := newEnv(t)
	mp := mailtest.StartMailpit(t, false)
	d := delivery.New(e.svc, mailer(t, mp.Env()), quiet())
	s := e.issue(365, "")
	for _, to := range []string{"", "not-an-address", "a@b.test\r\nBcc: evil@x.test", "Name <a@b.test>", "a@b.test\n"} {
		if _, err := d.License(context.Background(), s, to); licensing.ErrorCode(err) != licensing.CodeBadRequest {
			t.Errorf("recipient %q: %v", to, err)
		}
	}
	if n := len(mp.Messages(t)); n != 0 {
		t.Fatalf("%d messages sent to bad addresses", n)
	}
	for name, vars := range map[string]map[string]string{
		"smtp without sender": {"CAIO_SMTP_SERVER": "127.0.0.1"},
		"bad port":            {"CAIO_SMTP_SERVER": "127.0.0.1", "CAIO_SMTP_PORT": "smtp", "CAIO_SMTP_SENDER": "a@b.test"},
		"sender with CRLF":    {"CAIO_SMTP_SERVER": "127.0.0.1", "CAIO_SMTP_SENDER": "a@b.test\r\n"},
		"ses without sender":  {"CAIO_EMAIL_PROVIDER": "ses"},
		"unknown provider":    {"CAIO_EMAIL_PROVIDER": "pigeon"},
		"bad SES sender":      {"CAIO_SES_SENDER": "not an address"},
	} {
		t.Run(name, func(t *testing.T) {
			mailer(t) // clears the variables
			for k, v := range vars {
				t.Setenv(k, v)
			}
			if _, err := mailwiring.Mailer(context.Background(), config.OS()); licensing.ErrorCode(err) != licensing.CodeConfig || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want one CONFIG line", err)
			}
		})
	}
}

// Reminders go out at most once per license and threshold, even when
// runs overlap and the schedule fires twice; only the nearest due
// threshold is sent.
func TestRemindersAtMostOnce(t *testing.T) {
	e := newEnv(t)
	mp := mailtest.StartMailpit(t, false)
	e.issue(5, "buyer@customer.test") // due at 7 only, not at 30 and 7 and 1
	e.issue(20, "")                   // due at 30, to the customer's address
	e.issue(100, "")                  // not due
	sender := mailer(t, mp.Env())
	thresholds := []int{30, 7, 1}

	var wg sync.WaitGroup
	counts := make([]delivery.Counts, 4)
	for i := range counts {
		// Separate stores: separate processes, in effect.
		store, err := sqlitestore.Open(context.Background(), e.path, sqlitestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		d := delivery.New(licensing.New(licensing.Config{Store: store, Actor: fmt.Sprintf("run-%d", i)}), sender, quiet())
		wg.Go(func() {
			c, _, err := d.Reminders(context.Background(), thresholds)
			if err != nil {
				t.Error(err)
			}
			counts[i] = c
		})
	}
	wg.Wait()
	// The schedule fires again later: nothing new is due.
	again, _, err := delivery.New(e.svc, sender, quiet()).Reminders(context.Background(), thresholds)
	if err != nil || again.Found != 0 || again.Sent != 0 {
		t.Fatalf("second run: %+v %v", again, err)
	}
	sent := 0
	for _, c := range counts {
		sent += c.Sent
	}
	msgs := mp.Messages(t)
	if sent != 2 || len(msgs) != 2 {
		t.Fatalf("%d reported sent, %d received; want 2 (runs: %+v)", sent, len(msgs), counts)
	}
	to := map[string]bool{}
	for _, m := range msgs {
		to[m.To[0]] = true
		if strings.Contains(m.Text, "CAIO-v1-") {
			t.Fatal("a reminder carries the license key")
		}
	}
	if !to["buyer@customer.test"] || !to["ops@acme.test"] {
		t.Fatalf("recipients %v", to)
	}
}

func TestFailedReminderIsRetriedByTheNextRun(t *testing.T) {
	e := newEnv(t)
	e.issue(5, "")
	host, port, _ := net.SplitHostPort(closedPort(t))
	down := map[string]string{"CAIO_SMTP_SERVER": host, "CAIO_SMTP_PORT": port, "CAIO_SMTP_SENDER": "licensing@vendor.test", "CAIO_SMTP_TLS": "none"}
	c, _, err := delivery.New(e.svc, mailer(t, down), quiet()).Reminders(context.Background(), []int{7})
	if err != nil || c.Failed != 1 {
		t.Fatalf("%+v %v", c, err)
	}
	mp := mailtest.StartMailpit(t, false)
	c, _, err = delivery.New(e.svc, mailer(t, mp.Env()), quiet()).Reminders(context.Background(), []int{7})
	if err != nil || c.Sent != 1 || len(mp.Messages(t)) != 1 {
		t.Fatalf("retry: %+v %v", c, err)
	}
}

// SES refusing a message is an error that says so (the emulator refuses a
// message without a subject, which our own messages always have).
func TestSESRefusal(t *testing.T) {
	ses := mailtest.StartSES(t)
	sender := mailer(t, ses.Env())
	_, err := sender.Send(context.Background(), mail.Message{To: "a@customer.test", Text: "no subject"})
	if err == nil || !strings.Contains(err.Error(), "SES refused") {
		t.Fatalf("got %v", err)
	}
	if len(ses.Messages(t)) != 0 {
		t.Fatal("the refused message was stored")
	}
}

func TestMain(m *testing.M) {
	secretboxtest.CheapKDF()
	os.Exit(m.Run())
}
