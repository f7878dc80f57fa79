// Package mailtest runs real mail servers for tests: Mailpit (SMTP, with
// STARTTLS and authentication) and aws-ses-v2-local (the SES v2 API), and
// reads back what they received.
package mailtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/testtools"
)

// Mailpit is a running Mailpit.
type Mailpit struct {
	Host   string
	Port   int
	API    string
	CAFile string // set when STARTTLS is required
}

// StartMailpit runs Mailpit on loopback. With starttls, the server requires
// STARTTLS with a certificate for "localhost" signed by CAFile.
func StartMailpit(t testing.TB, starttls bool) *Mailpit {
	t.Helper()
	bin := testtools.Path(t, "mailpit")
	// A port found free can be taken again before Mailpit binds it (many
	// servers start at once under make test): check that Mailpit itself
	// answers, and try other ports if not.
	for attempt := 1; ; attempt++ {
		smtpAddr, apiAddr := testtools.FreeAddr(t), testtools.FreeAddr(t)
		_, port, _ := net.SplitHostPort(smtpAddr)
		p, _ := strconv.Atoi(port)
		m := &Mailpit{Host: "127.0.0.1", Port: p, API: "http://" + apiAddr}
		args := []string{"--smtp", smtpAddr, "--listen", apiAddr, "--disable-version-check",
			"--smtp-auth-accept-any", "--smtp-disable-rdns", "--database", filepath.Join(t.TempDir(), "mailpit.db")}
		if starttls {
			m.Host = "localhost"
			cert, key := selfSigned(t)
			m.CAFile = cert
			args = append(args, "--smtp-tls-cert", cert, "--smtp-tls-key", key, "--smtp-require-starttls")
		} else {
			args = append(args, "--smtp-auth-allow-insecure")
		}
		cmd := exec.Command(bin, args...)
		testtools.Start(t, cmd, smtpAddr)
		testtools.WaitListening(t, apiAddr, &bytes.Buffer{})
		if smtpGreets(smtpAddr) {
			return m
		}
		cmd.Process.Kill()
		if attempt == 3 {
			t.Fatalf("Mailpit did not answer SMTP on three ports")
		}
	}
}

// smtpGreets reports whether an SMTP server answers its greeting on addr.
func smtpGreets(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	line := make([]byte, 4)
	_, err = io.ReadFull(c, line)
	return err == nil && string(line[:3]) == "220"
}

// Env is the CAIO_SMTP_* environment for this server.
func (m *Mailpit) Env() map[string]string {
	env := map[string]string{
		"CAIO_SMTP_SERVER": m.Host, "CAIO_SMTP_PORT": strconv.Itoa(m.Port), "CAIO_SMTP_SENDER": "licensing@vendor.test",
	}
	if m.CAFile != "" {
		// Credentials only over TLS: the client refuses to send them in clear.
		env["CAIO_SMTP_CA_FILE"] = m.CAFile
		env["CAIO_SMTP_USER"] = "licensing@vendor.test"
		env["CAIO_SMTP_PASSWORD"] = "smtp-password-not-for-logs"
	} else {
		env["CAIO_SMTP_TLS"] = "none"
	}
	return env
}

// Mail is a received message.
type Mail struct {
	ID      string
	From    string
	To      []string
	Subject string
	Text    string
	HTML    string
}

// Messages returns every message Mailpit holds, oldest first.
func (m *Mailpit) Messages(t testing.TB) []Mail {
	t.Helper()
	var list struct {
		Messages []struct {
			ID string
		}
	}
	getJSON(t, m.API+"/api/v1/messages?limit=1000", &list)
	var out []Mail
	for i := len(list.Messages) - 1; i >= 0; i-- {
		var msg struct {
			ID      string
			From    struct{ Address string }
			To      []struct{ Address string }
			Subject string
			Text    string
			HTML    string
		}
		getJSON(t, m.API+"/api/v1/message/"+list.Messages[i].ID, &msg)
		mail := Mail{ID: msg.ID, From: msg.From.Address, Subject: msg.Subject, Text: msg.Text, HTML: msg.HTML}
		for _, to := range msg.To {
			mail.To = append(mail.To, to.Address)
		}
		out = append(out, mail)
	}
	return out
}

func getJSON(t testing.TB, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
}

// selfSigned writes a certificate and key for localhost.
func selfSigned(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	return certFile, keyFile
}

// SES is a running aws-ses-v2-local.
type SES struct {
	URL string
}

// StartSES runs the SES v2 emulator (npm aws-ses-v2-local, installed by
// `make test-tools` under .cache/npm).
func StartSES(t testing.TB) *SES {
	t.Helper()
	cli := filepath.Join(testtools.Dir(), "..", "npm", "node_modules", "aws-ses-v2-local", "dist", "cli.js")
	if _, err := os.Stat(cli); err != nil {
		if os.Getenv("CAIO_REQUIRE_TEST_TOOLS") != "" {
			t.Fatalf("aws-ses-v2-local not installed at %s: run 'make test-tools'", cli)
		}
		t.Skip("aws-ses-v2-local not installed")
	}
	addr := testtools.FreeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	testtools.Start(t, exec.Command("node", cli, "--host", host, "--port", port), addr)
	return &SES{URL: "http://" + addr}
}

// Env is the environment that sends through this SES emulator.
func (s *SES) Env() map[string]string {
	return map[string]string{
		"CAIO_SES_SENDER": "licensing@vendor.test", "AWS_ENDPOINT_URL_SESV2": s.URL,
		"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
		"AWS_EC2_METADATA_DISABLED": "true",
	}
}

// Messages returns what the emulator stored.
func (s *SES) Messages(t testing.TB) []Mail {
	t.Helper()
	var store struct {
		Emails []struct {
			From        string
			Destination struct{ To []string }
			Subject     string
			Body        struct{ Text, HTML string }
		}
	}
	getJSON(t, s.URL+"/store", &store)
	var out []Mail
	for _, e := range store.Emails {
		out = append(out, Mail{From: e.From, To: e.Destination.To, Subject: e.Subject, Text: e.Body.Text, HTML: e.Body.HTML})
	}
	return out
}
