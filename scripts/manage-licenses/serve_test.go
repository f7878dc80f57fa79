package main_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
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
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/caio-licensing/caio-licensing/shared/contract"
)

// server is a running `manage-licenses serve`.
type server struct {
	cmd     *exec.Cmd
	url     string // the API
	metrics string // the metrics address, when asked for
	mu      sync.Mutex
	stdout  strings.Builder // access log
	stderr  strings.Builder
}

var servingRE = regexp.MustCompile(`Serving the licensing API on (\S+) `)
var metricsRE = regexp.MustCompile(`Metrics for Prometheus on (\S+)`)

// startServe runs serve on the CLI's database with args, and waits for it
// to say where it listens.
func startServe(t *testing.T, c *cli, args ...string) *server {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = []string{"HOME=" + c.home, "PATH=" + os.Getenv("PATH")}
	for k, v := range c.env {
		if k != "CAIO_LICENSE_SECRET" { // serve keeps no secret; the key was certified at setup
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	s := &server{cmd: cmd}
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.mu.Lock()
			s.stdout.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
		}
	}()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(30 * time.Second)
	for s.url == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("serve stopped: %s", s.stderr.String())
			}
			s.stderr.WriteString(l + "\n")
			if m := metricsRE.FindStringSubmatch(l); m != nil {
				s.metrics = m[1]
			}
			if m := servingRE.FindStringSubmatch(l); m != nil {
				s.url = m[1]
			}
		case <-deadline:
			t.Fatalf("serve did not start: %s", s.stderr.String())
		}
	}
	go func() {
		for l := range lines {
			s.mu.Lock()
			s.stderr.WriteString(l + "\n")
			s.mu.Unlock()
		}
	}()
	return s
}

// accessLog is serve's access log lines so far.
func (s *server) accessLog(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.stdout.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" {
			out = append(out, m)
		}
	}
	return out
}

func servedCLI(t *testing.T) (*cli, string) {
	c := newCLI(t)
	_, key := c.setup()
	// serve certifies its key on a start with the secret; certify here instead.
	c.ok("certify-server-key", "--output", filepath.Join(c.home, ".caio", "server_key"))
	c.env["CAIO_LICENSE_PUBLIC_KEY"] = c.ok("public-key").lastLine()
	return c, key
}

func post(t *testing.T, client *http.Client, url, key string, header map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", url+contract.PathValidate, strings.NewReader(`{"license_key":"`+key+`"}`))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// Behind a proxy: the caller's address comes from X-Forwarded-For only
// when the connection is from a trusted proxy, rightmost untrusted hop;
// the access log carries duration_ms.
func TestServeTrustedProxies(t *testing.T) {
	t.Parallel()
	c, key := servedCLI(t)
	forwarded := map[string]string{"X-Forwarded-For": "6.6.6.6, 198.51.100.7"}
	plain := startServe(t, c)
	post(t, http.DefaultClient, plain.url, key, forwarded)
	behind := startServe(t, c, "--trusted-proxies", "127.0.0.1/32")
	post(t, http.DefaultClient, behind.url, key, forwarded)
	post(t, http.DefaultClient, behind.url, key, map[string]string{"X-Forwarded-For": "198.51.100.8, 127.0.0.1"})
	time.Sleep(200 * time.Millisecond)
	if got := plain.accessLog(t); len(got) != 1 || got[0]["source_ip"] != "127.0.0.1" {
		t.Fatalf("without trusted proxies X-Forwarded-For was believed: %v", got)
	}
	got := behind.accessLog(t)
	if len(got) != 2 || got[0]["source_ip"] != "198.51.100.7" || got[1]["source_ip"] != "198.51.100.8" {
		t.Fatalf("behind a trusted proxy: %v", got)
	}
	if ms, ok := got[0]["duration_ms"].(float64); !ok || ms <= 0 || got[0]["duration"] != nil {
		t.Fatalf("access log duration: %v", got[0])
	}
	c.fails(2, "BAD_REQUEST", "--trusted-proxies", "serve", "--trusted-proxies", "10.0.0.0/8,not-a-cidr")
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T, dir, name string) (certFile, keyFile string, serial *big.Int) {
	t.Helper()
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ = rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(priv)
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(certFile+".new", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile+".new", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	os.Rename(certFile+".new", certFile)
	os.Rename(keyFile+".new", keyFile)
	return certFile, keyFile, serial
}

// HTTPS with --tls-cert/--tls-key; SIGHUP takes up a renewed certificate
// without a restart; a bad pair is refused at start.
func TestServeTLS(t *testing.T) {
	t.Parallel()
	c, key := servedCLI(t)
	dir := t.TempDir()
	certFile, keyFile, first := selfSigned(t, dir, "first")
	s := startServe(t, c, "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(s.url, "https://") {
		t.Fatalf("serve says %s", s.url)
	}
	// Each request on a new connection: it shows the certificate served now.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // the test checks the certificate itself
	serialNow := func() *big.Int {
		resp := post(t, client, s.url, key, nil)
		if resp.StatusCode != 200 || resp.TLS == nil {
			t.Fatalf("validate over TLS: %d", resp.StatusCode)
		}
		return resp.TLS.PeerCertificates[0].SerialNumber
	}
	if got := serialNow(); got.Cmp(first) != 0 {
		t.Fatal("not the configured certificate")
	}
	if resp, err := http.Get(strings.Replace(s.url, "https://", "http://", 1) + contract.PathHealth); err == nil && resp.StatusCode == 200 {
		t.Fatal("plain HTTP answered on the TLS port")
	}
	_, _, second := selfSigned(t, dir, "second")
	s.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for serialNow().Cmp(second) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP did not load the renewed certificate")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A broken renewal is refused; the certificate in use stays.
	os.WriteFile(certFile, []byte("not a certificate"), 0o600)
	s.cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(300 * time.Millisecond)
	if serialNow().Cmp(second) != 0 {
		t.Fatal("a broken certificate replaced the good one")
	}
	c.fails(2, "BAD_REQUEST", "go together", "serve", "--tls-cert", certFile)
	c.fails(1, "CONFIG", "TLS certificate", "serve", "--tls-cert", certFile, "--tls-key", keyFile)
}

// --metrics-addr serves the metrics on its own address; scraped and parsed
// with Prometheus's own text parser, they count the calls made.
func TestServeMetricsForPrometheus(t *testing.T) {
	t.Parallel()
	c, key := servedCLI(t)
	s := startServe(t, c, "--metrics-addr", "127.0.0.1:0")
	if s.metrics == "" {
		t.Fatalf("serve did not say where the metrics are: %s", s.stderr.String())
	}
	for range 3 {
		post(t, http.DefaultClient, s.url, key, nil)
	}
	post(t, http.DefaultClient, s.url, "CAIO-v1-forged", nil)
	resp, err := http.Get(s.metrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("not the Prometheus text format: %v", err)
	}
	count := func(family string, labels map[string]string) float64 {
		f := families[family]
		if f == nil {
			t.Fatalf("no %s in the metrics", family)
		}
		total := 0.0
		for _, m := range f.Metric {
			match := true
			for k, v := range labels {
				found := false
				for _, lp := range m.Label {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				match = match && found
			}
			if !match {
				continue
			}
			switch {
			case m.Counter != nil:
				total += m.Counter.GetValue()
			case m.Histogram != nil:
				total += float64(m.Histogram.GetSampleCount())
			}
		}
		return total
	}
	if n := count("caio_requests_total", map[string]string{"route": "validate", "code": "VALID"}); n != 3 {
		t.Errorf("valid validations: %v, want 3", n)
	}
	if n := count("caio_refusals_total", nil); n != 1 {
		t.Errorf("refusals: %v, want 1", n)
	}
	if n := count("caio_request_duration_seconds", map[string]string{"route": "validate"}); n != 4 {
		t.Errorf("latency samples: %v, want 4", n)
	}
	if resp, err := http.Get(s.url + "/metrics"); err == nil && resp.StatusCode == 200 {
		t.Fatal("the API address serves the metrics")
	}
}

// A second database served from the same home finds the first one's key
// in the default key file: it is refused, told how to give it a file of
// its own (serve has no --force), and serves with one.
func TestServeASecondDatabaseFromOneHome(t *testing.T) {
	t.Parallel()
	c, _ := servedCLI(t)
	delete(c.env, "CAIO_LICENSE_PUBLIC_KEY") // the first database's
	second := filepath.Join(c.home, "second.db")
	c.ok("init-db", "--db", second)
	c.ok("add-customer", "CUST-002", "Globex", "--db", second)
	c.ok("generate-license", "CUST-002", "standard", "--db", second)
	c.fails(1, "CONFIG", "give it a key file of its own with --server-key FILE", "serve", "--db", second, "--addr", "127.0.0.1:0")
	secondKey := filepath.Join(c.home, ".caio", "second_server_key")
	c.ok("certify-server-key", "--output", secondKey, "--db", second)
	s := startServe(t, c, "--db", second, "--server-key", secondKey)
	resp, err := http.Get(s.url + contract.PathHealth)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the second database's serve: %v %v", resp, err)
	}
	resp.Body.Close()
}
