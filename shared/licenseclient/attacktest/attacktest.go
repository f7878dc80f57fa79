// Package attacktest is a customer's attack on enforcement, run with the
// real license-check binary against a running licensing API (serve, or
// the activate function behind a gateway): a proxy of the customer's own
// in front of the server, a forging server holding a stolen server key
// and its real certificate, and the operator's deactivation, revocation
// and expiry. Every attack must end with license-check exiting 1: CAIO
// does not run.
package attacktest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/contract"
	"github.com/caio-licensing/caio-licensing/shared/httpapi/apitest"
	"github.com/caio-licensing/caio-licensing/shared/lease"
	"github.com/caio-licensing/caio-licensing/shared/licenseclient"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/servercert"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

// Env is what the attacks run against.
type Env struct {
	// URL is the licensing API, serving Fixture's database.
	URL     string
	Fixture *apitest.Fixture
	// Check is the license-check binary.
	Check string
}

// Run runs every attack; the ones that wait for a one-minute lease run in
// parallel.
func Run(t *testing.T, e Env) {
	k := e.Fixture.Keys
	t.Run("proxy drops the instance id", func(t *testing.T) {
		url := proxy(t, e.URL, func(r *http.Request, _ *contract.RequestBody) { r.Header.Del(contract.HeaderInstanceID) }, nil)
		e.want(t, url, k["roomy"], "dropped-1", "check", 1, "BAD_SIGNATURE")
	})
	t.Run("proxy asks as another instance, one that holds a seat", func(t *testing.T) {
		e.want(t, e.URL, k["roomy"], "seat-holder", "activate", 0, "VALID")
		url := proxy(t, e.URL, func(r *http.Request, _ *contract.RequestBody) { r.Header.Set(contract.HeaderInstanceID, "seat-holder") }, nil)
		e.want(t, url, k["roomy"], "freeloader", "check", 1, "BAD_SIGNATURE")
	})
	t.Run("proxy asks about another valid key for a revoked one", func(t *testing.T) {
		url := proxy(t, e.URL, func(_ *http.Request, b *contract.RequestBody) { b.LicenseKey = k["roomy"] }, nil)
		e.want(t, url, k["revoked"], "revoked-1", "check", 1, "BAD_SIGNATURE")
		e.want(t, e.URL, k["revoked"], "revoked-1", "check", 1, "REVOKED")
	})
	t.Run("proxy relays a refusal as VALID", func(t *testing.T) {
		url := proxy(t, e.URL, nil, func(resp *http.Response) {
			resp.StatusCode = http.StatusOK
			setBody(resp, []byte(`{"valid":true,"code":"VALID","detail":"license is valid"}`))
		})
		e.want(t, url, k["revoked"], "relayed-1", "check", 1, "BAD_SIGNATURE")
	})
	t.Run("an expired key never runs, even when a proxy answers for another key", func(t *testing.T) {
		url := proxy(t, e.URL, func(_ *http.Request, b *contract.RequestBody) { b.LicenseKey = k["roomy"] }, nil)
		e.want(t, url, k["expired-key"], "expired-1", "check", 1, "EXPIRED")
		e.want(t, e.URL, k["expired-key"], "expired-1", "activate", 1, "EXPIRED")
	})

	stolen, cert := e.serverKey(t, e.Fixture.ServerKey)
	oldKey, oldCert := e.serverKey(t, e.Fixture.ExpiredServerKey)
	t.Run("forging server: a lease within the stolen certificate runs (the attacks below are refused for what they claim)", func(t *testing.T) {
		url := forger(t, stolen, cert, nil)
		e.want(t, url, k["roomy"], "forged-ok", "check", 0, "VALID")
	})
	t.Run("forging server: a century lease", func(t *testing.T) {
		url := forger(t, stolen, cert, func(f *forgery) {
			f.lease.ExpiresAt = time.Date(2126, 1, 1, 0, 0, 0, 0, time.UTC)
			f.lease.RenewAfter = f.lease.ExpiresAt
		})
		e.want(t, url, k["roomy"], "forged-century", "check", 1, "BAD_SIGNATURE")
	})
	t.Run("forging server: an expired certificate and a time inside its window", func(t *testing.T) {
		url := forger(t, oldKey, oldCert, func(f *forgery) {
			c, _ := servercert.Parse(oldCert)
			f.at = c.NotBefore.Add(time.Hour)
			f.lease.IssuedAt, f.lease.RenewAfter, f.lease.ExpiresAt = f.at, f.at.Add(time.Hour), c.NotAfter
		})
		e.want(t, url, k["roomy"], "forged-old-cert", "check", 1, "BAD_SIGNATURE")
	})
	t.Run("forging server: a lease for another license", func(t *testing.T) {
		url := forger(t, stolen, cert, func(f *forgery) { f.lease.LicenseID = "00112233445566778899aabbccddeeff" })
		e.want(t, url, k["roomy"], "forged-license", "check", 1, "BAD_SIGNATURE")
	})
	t.Run("forging server: a grace for an expired key, saying the license ends after the key does", func(t *testing.T) {
		url := forger(t, stolen, cert, func(f *forgery) {
			claims, _ := licensekey.Parse(k["expired-key"])
			f.lease.LicenseEndsAt = claims.Claims.ExpiresAt.Add(24 * time.Hour)
			f.lease.GraceEndsAt = f.lease.LicenseEndsAt.Add(30 * 24 * time.Hour)
		})
		e.want(t, url, k["expired-key"], "forged-grace", "check", 1, "EXPIRED")
	})
	t.Run("forging server: a grace for an expired key that ended", func(t *testing.T) {
		url := forger(t, stolen, cert, func(f *forgery) {
			claims, _ := licensekey.Parse(k["expired-key"])
			f.lease.LicenseEndsAt = claims.Claims.ExpiresAt
			f.lease.GraceEndsAt = f.lease.LicenseEndsAt.Add(24 * time.Hour) // long past
		})
		e.want(t, url, k["expired-key"], "forged-old-grace", "check", 1, "EXPIRED")
	})
	t.Run("forging server: a lease for another instance", func(t *testing.T) {
		url := forger(t, stolen, cert, func(f *forgery) { f.lease.InstanceID = "someone-else" })
		e.want(t, url, k["roomy"], "forged-other", "check", 1, "BAD_SIGNATURE")
	})

	t.Run("instance ids", func(t *testing.T) {
		for _, id := range []string{"\u3164", "\uffa0", "\u2800", "\u0301", "node\u200b1", "node\u115f"} {
			e.want(t, e.URL, k["roomy"], id, "check", 1, "BAD_REQUEST")
		}
		// NFC and NFD spellings are one instance, holding one seat.
		e.want(t, e.URL, k["two-seats"], "cafe\u0301", "activate", 0, "VALID")
		e.want(t, e.URL, k["two-seats"], "caf\u00e9", "activate", 0, "VALID")
		e.want(t, e.URL, k["two-seats"], "second", "activate", 0, "VALID")
		e.want(t, e.URL, k["two-seats"], "third", "activate", 1, "TOO_MANY_INSTANCES")
	})

	t.Run("a deactivated seat, taken by another, stops its old holder", func(t *testing.T) {
		t.Parallel()
		key := k["one-seat"]
		n1 := e.instance(t, "n1")
		first := n1.want(t, e.URL, key, "activate", 0, "VALID")
		e.operator(t, func(ctx context.Context, svc *licensing.Service) error {
			_, err := svc.Deactivate(ctx, licensing.SeatRequest{Key: key, InstanceID: "n1", Immediate: true})
			return err
		})
		e.want(t, e.URL, key, "n2", "activate", 0, "VALID")
		time.Sleep(time.Until(first.Lease.RenewAfter.Add(time.Second)))
		n1.want(t, e.URL, key, "check", 1, "NO_SEAT")
		n1.want(t, e.URL, key, "check", 1, "TOO_MANY_INSTANCES")
	})
	t.Run("deactivating with a copy of the lease kept frees no seat for another", func(t *testing.T) {
		key := k["solo"]
		n1 := e.instance(t, "n1")
		n1.want(t, e.URL, key, "activate", 0, "VALID")
		saved := t.TempDir()
		if err := os.CopyFS(saved, os.DirFS(n1.state)); err != nil {
			t.Fatal(err)
		}
		n1.want(t, e.URL, key, "deactivate", 0, "DEACTIVATED")
		os.RemoveAll(n1.state)
		if err := os.CopyFS(n1.state, os.DirFS(saved)); err != nil {
			t.Fatal(err)
		}
		// The restored copy runs on its lease, as a host cut off from the
		// server would; the seat is still its, so nobody runs beside it.
		n1.want(t, e.URL, key, "check", 0, "VALID")
		e.want(t, e.URL, key, "n2", "activate", 1, "TOO_MANY_INSTANCES")
		e.want(t, e.URL, key, "n3", "check", 1, "TOO_MANY_INSTANCES")
	})
	t.Run("a revoked key stops at its next renewal", func(t *testing.T) {
		t.Parallel()
		key := k["revoke-me"]
		n1 := e.instance(t, "n1")
		first := n1.want(t, e.URL, key, "activate", 0, "VALID")
		e.operator(t, func(ctx context.Context, svc *licensing.Service) error {
			_, err := svc.SetStatus(ctx, key, licensing.StatusRevoked, "")
			return err
		})
		n1.want(t, e.URL, key, "check", 0, "VALID") // on its lease until renew-after
		time.Sleep(time.Until(first.Lease.RenewAfter.Add(time.Second)))
		n1.want(t, e.URL, key, "check", 1, "REVOKED")
		n1.want(t, e.URL, key, "check", 1, "REVOKED")
	})
}

// instance is one CAIO instance: an id and its own state directory.
type instance struct {
	e     Env
	id    string
	state string
}

func (e Env) instance(t *testing.T, id string) *instance {
	return &instance{e: e, id: id, state: t.TempDir()}
}

// want runs license-check for a fresh instance.
func (e Env) want(t *testing.T, url, key, id, action string, exit int, code string) licenseclient.Result {
	t.Helper()
	return e.instance(t, id).want(t, url, key, action, exit, code)
}

// want runs license-check with the key in the environment, never in its
// arguments, and checks its exit status and outcome, and that it does not
// print the key.
func (i *instance) want(t *testing.T, url, key, action string, exit int, code string) licenseclient.Result {
	t.Helper()
	cmd := exec.Command(i.e.Check, action, "--server", url, "--instance-id", i.id, "--state-dir", i.state, "--json", "--timeout", "30s")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "CAIO_LICENSE_PUBLIC_KEY=" + i.e.Fixture.PublicKey, "CAIO_LICENSE_KEY=" + key}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	got := 0
	if ee, ok := err.(*exec.ExitError); ok {
		got = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var o licenseclient.Result
	if err := json.Unmarshal(stdout.Bytes(), &o); err != nil {
		t.Fatalf("%s %s %q: %q %q", action, i.id, key[:12], stdout.String(), stderr.String())
	}
	if got != exit || o.Code != code || o.OK != (exit == 0) {
		t.Fatalf("%s %q: exit %d %s (%s), want exit %d %s", action, i.id, got, o.Code, o.Detail, exit, code)
	}
	if strings.Contains(stdout.String()+stderr.String(), licensekey.Canonical(key)) {
		t.Fatalf("%s %q printed the license key", action, i.id)
	}
	return o
}

// operator acts on the fixture's database as manage-licenses does.
func (e Env) operator(t *testing.T, act func(context.Context, *licensing.Service) error) {
	t.Helper()
	ctx := context.Background()
	store, err := sqlitestore.Open(ctx, e.Fixture.Path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := act(ctx, licensing.New(licensing.Config{Store: store, Actor: "attacktest", Secret: apitest.Secret})); err != nil {
		t.Fatal(err)
	}
}

// serverKey is a server key as a thief holds it, with its real
// certificate (which every answer of the server carries).
func (e Env) serverKey(t *testing.T, encoded string) (ed25519.PrivateKey, string) {
	t.Helper()
	key, err := servercert.ParsePrivateKey(encoded)
	if err != nil {
		t.Fatal(err)
	}
	var cert string
	e.operator(t, func(ctx context.Context, svc *licensing.Service) error {
		certs, err := svc.ServerCertificates(ctx)
		for _, c := range certs {
			if ed25519.PublicKey(c.PublicKey).Equal(key.Public()) {
				cert = c.Certificate
			}
		}
		return err
	})
	if cert == "" {
		t.Fatal("no certificate for the server key")
	}
	return key, cert
}

// proxy is the customer's own proxy in front of upstream.
// req may rewrite the request, its body included.
func proxy(t *testing.T, upstream string, req func(*http.Request, *contract.RequestBody), resp func(*http.Response)) string {
	t.Helper()
	u, _ := url.Parse(upstream)
	p := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			if req == nil {
				return
			}
			raw, _ := io.ReadAll(r.Out.Body)
			var b contract.RequestBody
			json.Unmarshal(raw, &b)
			req(r.Out, &b)
			raw, _ = json.Marshal(b)
			r.Out.Body, r.Out.ContentLength = io.NopCloser(bytes.NewReader(raw)), int64(len(raw))
			r.Out.Header.Del("Content-Length")
		},
		ModifyResponse: func(r *http.Response) error {
			if resp != nil {
				resp(r)
			}
			return nil
		},
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv.URL
}

func setBody(resp *http.Response, b []byte) {
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Del("Content-Length")
}

// forgery is what a forging server answers: a VALID with a lease, signed
// with a stolen server key, about exactly the key and instance asked.
type forgery struct {
	lease lease.Lease
	at    time.Time // the time the answer claims
}

func forger(t *testing.T, key ed25519.PrivateKey, cert string, change func(*forgery)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var b contract.RequestBody
		json.Unmarshal(raw, &b)
		instance := r.Header.Get(contract.HeaderInstanceID)
		claims, _ := licensekey.Parse(b.LicenseKey)
		now := time.Now().UTC().Truncate(time.Second)
		f := forgery{at: now, lease: lease.Lease{Kind: lease.Online, LicenseID: claims.Claims.LicenseID, KeyDigest: licensekey.Digest(b.LicenseKey),
			InstanceID: instance, IssuedAt: now, RenewAfter: now.Add(time.Hour), ExpiresAt: now.Add(2 * time.Hour)}}
		if change != nil {
			change(&f)
		}
		token, err := lease.Sign(f.lease, key)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		answer, _ := json.Marshal(contract.ResponseBody[struct{}, struct{}]{Valid: true, Code: contract.CodeValid, Detail: "forged", Lease: token})
		sig := servercert.SignResponse(key, servercert.Response{Status: 200, Route: r.URL.Path, Nonce: r.Header.Get(contract.HeaderNonce),
			Time: f.at, KeyDigest: servercert.KeyDigest(b.LicenseKey), Instance: instance, Body: answer})
		w.Header().Set(contract.HeaderCertificate, cert)
		w.Header().Set(contract.HeaderSignature, sig)
		w.Header().Set(contract.HeaderSignatureVersion, contract.SignatureVersion)
		w.Header().Set(contract.HeaderServerTime, strconv.FormatInt(f.at.Unix(), 10))
		w.Write(answer)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
