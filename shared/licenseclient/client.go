// Package licenseclient is what a CAIO instance embeds to use its license:
// offline verification of the key, activation and checks against the
// licensing API with signed answers, seat leases that carry it through a
// server outage, and offline lease files for air-gapped sites.
//
// The instance trusts exactly one thing: the license public key(s) it
// pins. Every answer it accepts chains to them: the server's certificate is
// signed by a pinned key, the answer by the certified server key, and the
// answer covers the request's fresh nonce, so an answer from a server of
// someone else's, a replayed answer or an altered one is rejected as if the
// server were unreachable.
//
// It depends on nothing of AWS and no database.
package licenseclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/lease"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/servercert"
)

// Outcome codes of the client's own, beside the API's (VALID,
// TOO_MANY_INSTANCES, REVOKED, ...).
const (
	CodeValid             = "VALID"
	CodeDeactivated       = "DEACTIVATED"
	CodeInvalidKey        = "INVALID_KEY"
	CodeLeaseExpired      = "LEASE_EXPIRED"
	CodeBadSignature      = "BAD_SIGNATURE"
	CodeClockRollback     = "CLOCK_ROLLBACK"
	CodeServerUnreachable = "SERVER_UNREACHABLE"
	CodeBadRequest        = "BAD_REQUEST"
)

// API routes.
const (
	pathValidate   = "/api/v1/licensing/validate"
	pathActivate   = "/api/v1/licensing/activate"
	pathDeactivate = "/api/v1/licensing/deactivate"
)

// Config configures a Client.
type Config struct {
	// ServerURL is the API's base URL; empty for offline use only.
	ServerURL string
	// PublicKeys are the pinned license public keys: the only trust anchor.
	PublicKeys licensekey.PublicKeys
	// StateDir holds the lease and the latest time seen (a 0600 file).
	StateDir string
	// HTTPClient, Timeout (per attempt, default 10 s) and Retries (default
	// 3, with backoff) shape the calls.
	HTTPClient *http.Client
	Timeout    time.Duration
	Retries    int
	// ClockTolerance is how far the local clock may fall behind the latest
	// time seen before CLOCK_ROLLBACK (default 10 minutes).
	ClockTolerance time.Duration
	// Now is the local clock; time.Now when nil.
	Now func() time.Time
}

// Result is the outcome of a call.
type Result struct {
	// OK: CAIO may run.
	OK     bool   `json:"ok"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
	// Claims are the key's signed claims, whenever the key verified.
	Claims *licensekey.Claims `json:"claims,omitempty"`
	// Lease is the lease CAIO runs on, when it has one.
	Lease *lease.Lease `json:"lease,omitempty"`
	// FromLease: the answer came from the cached lease, not the server.
	FromLease bool `json:"from_lease"`
}

// Client talks to the licensing API for one CAIO instance.
type Client struct {
	cfg Config
}

// New returns a Client; it needs at least one pinned public key.
func New(cfg Config) (*Client, error) {
	if len(cfg.PublicKeys) == 0 {
		return nil, errors.New("licenseclient: no pinned public key (CAIO_LICENSE_PUBLIC_KEY)")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Retries == 0 {
		cfg.Retries = 3
	}
	if cfg.ClockTolerance == 0 {
		cfg.ClockTolerance = 10 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.ServerURL = strings.TrimSuffix(cfg.ServerURL, "/")
	return &Client{cfg: cfg}, nil
}

func (c *Client) now() time.Time { return c.cfg.Now().UTC() }

// Verify checks a key's signature offline and returns its claims.
func (c *Client) Verify(key string) (licensekey.Claims, error) {
	return licensekey.Verify(licensekey.Canonical(key), c.cfg.PublicKeys)
}

func refused(code, format string, args ...any) Result {
	return Result{Code: code, Detail: fmt.Sprintf(format, args...)}
}

// begin verifies the key offline and checks the clock against the state.
func (c *Client) begin(key, instance string) (licensekey.Claims, *state, *Result) {
	claims, err := c.Verify(key)
	if err != nil {
		r := refused(CodeInvalidKey, "the license key does not verify with the pinned public key: %v", err)
		return claims, nil, &r
	}
	st := c.loadState(key, instance)
	if now := c.now(); now.Before(st.LatestSeen.Add(-c.cfg.ClockTolerance)) {
		r := refused(CodeClockRollback, "the local clock (%s) is behind a time already seen (%s): fix the clock, or reach the license server", now.Format(time.RFC3339), st.LatestSeen.Format(time.RFC3339))
		r.Claims = &claims
		st.rollback = &r
		if c.cfg.ServerURL == "" {
			return claims, st, &r
		}
		// The server's signed time settles it (call resets the time seen).
	}
	return claims, st, nil
}

// Activate takes (or refreshes) the instance's seat and keeps its lease.
func (c *Client) Activate(ctx context.Context, key, instance string) Result {
	claims, st, early := c.begin(key, instance)
	if early != nil {
		return *early
	}
	return c.call(ctx, pathActivate, key, instance, claims, st)
}

// Check says whether CAIO may run: on the cached lease while it is valid
// and not yet due for renewal; otherwise it renews with the server (taking
// a seat when it holds none), and, when the server cannot be reached or its
// answer does not check, runs on the lease until it expires.
func (c *Client) Check(ctx context.Context, key, instance string) Result {
	claims, st, early := c.begin(key, instance)
	if early != nil {
		return *early
	}
	now := c.now()
	if st.rollback == nil && st.Lease != nil && now.Before(st.Lease.RenewAfter) && now.Before(st.Lease.ExpiresAt) {
		c.saveState(key, instance, st, now)
		return Result{OK: true, Code: CodeValid, Detail: "running on the lease until " + st.Lease.ExpiresAt.Format(time.RFC3339),
			Claims: &claims, Lease: st.Lease, FromLease: true}
	}
	path := pathValidate
	if st.Lease == nil {
		path = pathActivate
	}
	return c.call(ctx, path, key, instance, claims, st)
}

// Deactivate frees the instance's seat and forgets its lease.
func (c *Client) Deactivate(ctx context.Context, key, instance string) Result {
	claims, st, early := c.begin(key, instance)
	if early != nil {
		return *early
	}
	return c.call(ctx, pathDeactivate, key, instance, claims, st)
}

// CheckOffline checks an offline lease file (issue-offline-lease) with the
// pinned public key alone.
func (c *Client) CheckOffline(key, instance string, file []byte) Result {
	claims, st, early := c.begin(key, instance)
	if early != nil {
		return *early
	}
	var f struct {
		Lease string `json:"lease"`
	}
	if err := json.Unmarshal(file, &f); err != nil || f.Lease == "" {
		return refused(CodeBadSignature, "the offline lease file is not a lease file")
	}
	l, err := c.verifyLease(f.Lease, nil, key, instance)
	if err != nil || l.Kind != lease.Offline {
		return refused(CodeBadSignature, "the offline lease does not verify with the pinned public key, or is not for this key and instance")
	}
	now := c.now()
	if now.Before(l.IssuedAt.Add(-c.cfg.ClockTolerance)) {
		return refused(CodeClockRollback, "the local clock (%s) is before the lease was issued (%s): fix the clock", now.Format(time.RFC3339), l.IssuedAt.Format(time.RFC3339))
	}
	if !now.Before(l.ExpiresAt) {
		return Result{Code: CodeLeaseExpired, Detail: "the offline lease expired on " + l.ExpiresAt.Format(time.RFC3339), Claims: &claims, Lease: &l}
	}
	st.seen(l.IssuedAt)
	c.saveState(key, instance, st, now)
	return Result{OK: true, Code: CodeValid, Detail: "offline lease valid until " + l.ExpiresAt.Format(time.RFC3339), Claims: &claims, Lease: &l, FromLease: true}
}

// verifyLease checks a lease token: online ones with the certified server
// key, offline ones with a pinned key; and that it names this key and
// instance.
func (c *Client) verifyLease(token string, cert *servercert.Certificate, key, instance string) (lease.Lease, error) {
	l, err := lease.Parse(token)
	if err != nil {
		return l, err
	}
	pub := c.cfg.PublicKeys[l.SignerKeyID]
	if l.Kind == lease.Online {
		if cert == nil || cert.KeyID() != l.SignerKeyID {
			return l, lease.ErrBadSignature
		}
		pub = cert.PublicKey
	}
	if pub == nil {
		return l, lease.ErrBadSignature
	}
	if l, err = lease.Verify(token, pub); err != nil {
		return l, err
	}
	if l.KeyDigest != lease.KeyDigest(key) || l.InstanceID != instance {
		return l, errors.New("the lease is for another key or instance")
	}
	return l, nil
}

// apiAnswer is the part of the API's JSON the client reads.
type apiAnswer struct {
	Valid  bool   `json:"valid"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
	Lease  string `json:"lease"`
}

// call makes one API call (with retries) and turns the verified answer, or
// its absence, into a Result.
func (c *Client) call(ctx context.Context, path, key, instance string, claims licensekey.Claims, st *state) Result {
	now := c.now()
	fallback := func(code, detail string) Result {
		if st.rollback != nil {
			return *st.rollback
		}
		if st.Lease != nil && path != pathDeactivate {
			if now.Before(st.Lease.ExpiresAt) {
				return Result{OK: true, Code: CodeValid, Detail: detail + "; running on the lease until " + st.Lease.ExpiresAt.Format(time.RFC3339),
					Claims: &claims, Lease: st.Lease, FromLease: true}
			}
			return Result{Code: CodeLeaseExpired, Detail: detail + "; the lease expired on " + st.Lease.ExpiresAt.Format(time.RFC3339), Claims: &claims, Lease: st.Lease}
		}
		return Result{Code: code, Detail: detail, Claims: &claims}
	}
	if c.cfg.ServerURL == "" {
		return fallback(CodeServerUnreachable, "no license server configured")
	}
	ans, cert, serverTime, err := c.post(ctx, path, key, instance)
	switch {
	case errors.Is(err, errBadSignature):
		return fallback(CodeBadSignature, "the server's answer does not check ("+err.Error()+"): it is not the license server, or it was altered")
	case err != nil:
		return fallback(CodeServerUnreachable, "the license server cannot be reached: "+err.Error())
	}
	if st.rollback != nil {
		st.LatestSeen, st.rollback = serverTime, nil // the server's word on the time
	}
	st.seen(serverTime)
	res := Result{Code: ans.Code, Detail: ans.Detail, Claims: &claims}
	switch {
	case ans.Code == CodeDeactivated:
		res.OK = true
		st.Lease, st.LeaseToken, st.Certificate = nil, "", ""
	case ans.Valid && ans.Lease != "":
		l, err := c.verifyLease(ans.Lease, &cert.Certificate, key, instance)
		if err != nil {
			return fallback(CodeBadSignature, "the lease in the server's answer does not check")
		}
		st.Lease, st.LeaseToken, st.Certificate = &l, ans.Lease, cert.encoded
		res.OK, res.Lease = true, &l
	case ans.Valid:
		res.OK = true // valid license, no seat asked for
	default:
		// A signed refusal is the server's word: no running on the lease.
		st.Lease, st.LeaseToken, st.Certificate = nil, "", ""
	}
	c.saveState(key, instance, st, now)
	return res
}

var errBadSignature = errors.New("bad signature")

type certificate struct {
	servercert.Certificate
	encoded string
}

// post sends one request, retrying transport failures and 5xx with
// backoff, and verifies the answer it gets.
func (c *Client) post(ctx context.Context, path, key, instance string) (apiAnswer, *certificate, time.Time, error) {
	body, _ := json.Marshal(map[string]string{"license_key": licensekey.Canonical(key)})
	var lastErr error
	for attempt := 0; attempt < c.cfg.Retries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return apiAnswer{}, nil, time.Time{}, ctx.Err()
			case <-time.After(time.Duration(100<<attempt) * time.Millisecond):
			}
		}
		ans, cert, at, retry, err := c.attempt(ctx, path, instance, body)
		if err == nil || !retry {
			return ans, cert, at, err
		}
		lastErr = err
	}
	return apiAnswer{}, nil, time.Time{}, lastErr
}

func (c *Client) attempt(ctx context.Context, path, instance string, body []byte) (ans apiAnswer, cert *certificate, at time.Time, retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	nonce := newNonce()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.ServerURL+path, bytes.NewReader(body))
	if err != nil {
		return ans, nil, at, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CAIO-Instance-ID", instance)
	req.Header.Set(servercert.HeaderNonce, nonce)
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return ans, nil, at, true, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return ans, nil, at, true, err
	}
	sc, at, err := servercert.VerifyAnswer(resp.Header, resp.StatusCode, path, nonce, raw, c.cfg.PublicKeys)
	if err != nil {
		return ans, nil, at, false, fmt.Errorf("%w: %v", errBadSignature, err)
	}
	cert = &certificate{Certificate: sc, encoded: resp.Header.Get(servercert.HeaderCertificate)}
	if resp.StatusCode >= 500 {
		return ans, nil, at, true, fmt.Errorf("the server answered %d", resp.StatusCode)
	}
	if err := json.Unmarshal(raw, &ans); err != nil || ans.Code == "" {
		return ans, nil, at, false, fmt.Errorf("%w: the signed answer is not the API's JSON", errBadSignature)
	}
	return ans, cert, at, false, nil
}

func newNonce() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
