// Package s3test runs real S3-compatible servers for tests — gofakes3
// in-process and versitygw as a process — and a proxy that injects faults
// between a client and such a server.
package s3test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/caio-licensing/caio-licensing/shared/testtools"
)

// Bucket is the bucket every server here starts with.
const Bucket = "licenses"

// Server is a running S3-compatible server.
type Server struct {
	URL       string
	AccessKey string
	SecretKey string
	// Root is where a versitygw server keeps its objects, one file each
	// (bucket/key): tests damage them there as failing storage would.
	Root string
}

// Env returns the environment a client (the CLI, a function) needs to use
// the server for key in S3 mode. Metadata-service lookups are disabled so
// that a test never reaches beyond loopback.
func (s *Server) Env(key string) map[string]string {
	return map[string]string{
		"CAIO_LICENSE_DB_PATH":      "s3://" + Bucket + "/" + key,
		"AWS_ENDPOINT_URL_S3":       s.URL,
		"AWS_ACCESS_KEY_ID":         s.AccessKey,
		"AWS_SECRET_ACCESS_KEY":     s.SecretKey,
		"AWS_REGION":                "us-east-1",
		"AWS_EC2_METADATA_DISABLED": "true",
	}
}

// SetEnv applies Env to the test process.
func (s *Server) SetEnv(t testing.TB, key string) {
	for k, v := range s.Env(key) {
		t.Setenv(k, v)
	}
}

// StartGofakes3 serves github.com/johannesboyne/gofakes3 in memory on loopback.
func StartGofakes3(t testing.TB) *Server {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(Bucket); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	return &Server{URL: srv.URL, AccessKey: "test", SecretKey: "test"}
}

// StartVersity runs versitygw (which answers conditional writes exactly as
// AWS does) on a posix directory.
func StartVersity(t testing.TB) *Server {
	t.Helper()
	bin := testtools.Path(t, "versitygw")
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, Bucket), 0o755); err != nil {
		t.Fatal(err)
	}
	addr := testtools.FreeAddr(t)
	s := &Server{URL: "http://" + addr, AccessKey: "caio-test-access", SecretKey: "caio-test-secret-key", Root: root}
	testtools.Start(t, exec.Command(bin, "--access", s.AccessKey, "--secret", s.SecretKey, "--port", addr, "--quiet", "posix", root), addr)
	return s
}

// Fault is what the proxy does to one request.
type Fault int

// Faults.
const (
	Pass        Fault = iota
	Error503          // answer 503 without forwarding
	Drop              // close the connection without forwarding
	Slow              // forward after a delay
	LoseAnswer        // forward, then close the connection instead of answering
	HoldForever       // forward nothing and hold the request until the client goes
)

// Proxy stands between clients and a real server, counting traffic and
// injecting faults chosen by Decide.
type Proxy struct {
	*Server
	// Decide picks the fault for a request; nil passes everything.
	Decide func(r *http.Request) Fault
	// OnPut, when set, is called as a PUT starts (before it is forwarded).
	OnPut func()
	// Latency, when set, delays every request before it is forwarded: a
	// stand-in for the round trip to a distant S3.
	Latency time.Duration

	Requests  atomic.Int64
	Gets      atomic.Int64
	Puts      atomic.Int64
	NotMods   atomic.Int64
	NotFounds atomic.Int64
	BytesUp   atomic.Int64
	BytesDown atomic.Int64
	mu        sync.Mutex
	trips     tripCounter
}

// NewProxy starts a proxy in front of target.
func NewProxy(t testing.TB, target *Server) *Proxy {
	t.Helper()
	u, err := url.Parse(target.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.Requests.Add(1)
		depth := p.trips.start()
		if os.Getenv("S3TEST_TRACE") != "" {
			fmt.Fprintf(os.Stderr, "trace depth=%d %s %s?%s\n", depth, r.Method, r.URL.Path, r.URL.RawQuery)
		}
		defer p.trips.done(depth)
		if p.Latency > 0 {
			time.Sleep(p.Latency)
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		p.BytesUp.Add(int64(len(body)))
		switch r.Method {
		case http.MethodGet:
			p.Gets.Add(1)
		case http.MethodPut:
			p.Puts.Add(1)
			if p.OnPut != nil {
				p.OnPut()
			}
		}
		fault := Pass
		if p.Decide != nil {
			p.mu.Lock()
			fault = p.Decide(r)
			p.mu.Unlock()
		}
		switch fault {
		case Error503:
			http.Error(w, `<?xml version="1.0"?><Error><Code>ServiceUnavailable</Code><Message>injected</Message></Error>`, http.StatusServiceUnavailable)
			return
		case Drop:
			hijackClose(w)
			return
		case HoldForever:
			<-r.Context().Done()
			return
		case Slow:
			time.Sleep(300 * time.Millisecond)
		}
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r)
		switch rec.Code {
		case http.StatusNotModified:
			p.NotMods.Add(1)
		case http.StatusNotFound:
			p.NotFounds.Add(1)
		}
		if fault == LoseAnswer {
			hijackClose(w)
			return
		}
		p.BytesDown.Add(int64(rec.Body.Len()))
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(srv.Close)
	p.Server = &Server{URL: srv.URL, AccessKey: target.AccessKey, SecretKey: target.SecretKey}
	return p
}

func hijackClose(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// Reset zeroes the counters.
func (p *Proxy) Reset() {
	for _, c := range []*atomic.Int64{&p.Requests, &p.Gets, &p.Puts, &p.NotMods, &p.NotFounds, &p.BytesUp, &p.BytesDown} {
		c.Store(0)
	}
	p.trips.reset()
}

// RoundTrips is the number of sequential round trips since Reset: the
// longest chain of requests each sent after the one before it was
// answered. Requests sent together (in flight at once) are one round trip,
// whatever their number.
func (p *Proxy) RoundTrips() int { return p.trips.max() }

// tripCounter gives each request a depth: one more than the deepest
// request answered before it arrived. A request can only depend on what
// was answered before it was sent, so the deepest is the number of
// sequential round trips (an upper bound on the dependent ones).
type tripCounter struct {
	mu       sync.Mutex
	answered int // the deepest request answered so far
	deepest  int // the deepest request seen
}

func (c *tripCounter) start() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.answered + 1
	c.deepest = max(c.deepest, d)
	return d
}

func (c *tripCounter) done(depth int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answered = max(c.answered, depth)
}

func (c *tripCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answered, c.deepest = 0, 0
}

func (c *tripCounter) max() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deepest
}

// Counts summarises the traffic.
func (p *Proxy) Counts() string {
	return fmt.Sprintf("requests=%d gets=%d (304: %d, 404: %d) puts=%d up=%dB down=%dB",
		p.Requests.Load(), p.Gets.Load(), p.NotMods.Load(), p.NotFounds.Load(), p.Puts.Load(), p.BytesUp.Load(), p.BytesDown.Load())
}

// Object fetches the object as it is in the server, bypassing any proxy.
func (s *Server) Object(t testing.TB, key string) []byte {
	t.Helper()
	// gofakes3 answers unsigned GETs; versitygw needs signing, so go through the SDK.
	return getObject(t, s, key)
}
