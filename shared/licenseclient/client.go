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

	"github.com/caio-licensing/caio-licensing/shared/contract"
	"github.com/caio-licensing/caio-licensing/shared/instanceid"
	"github.com/caio-licensing/caio-licensing/shared/lease"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/servercert"
)

// Outcome codes of the client's own, which the server never answers with.
// A Result's code is one of these or one of the API's (contract.Codes:
// VALID, TOO_MANY_INSTANCES, REVOKED, NO_SEAT, ...); the client gives some
// of those itself too, by its own checks (contract.CodeValid from its
// lease, contract.CodeInvalidKey, contract.CodeExpired and
// contract.CodeBadRequest before asking).
const (
	CodeLeaseExpired      = "LEASE_EXPIRED"
	CodeNoLease           = "NO_LEASE"
	CodeBadSignature      = "BAD_SIGNATURE"
	CodeClockRollback     = "CLOCK_ROLLBACK"
	CodeServerUnreachable = "SERVER_UNREACHABLE"
)

// The API's codes the client also gives by its own checks, under the names
// embedders have used since before the contract package: the same values.
const (
	CodeValid       = contract.CodeValid
	CodeDeactivated = contract.CodeDeactivated
	CodeInvalidKey  = contract.CodeInvalidKey
	CodeExpired     = contract.CodeExpired
	CodeBadRequest  = contract.CodeBadRequest
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
	// verdict: the outcome is the server's signed answer about this key
	// and instance, not the client's own (no answer, or none that checks).
	verdict bool
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

// session is one call's view: the key's claims, the state kept for this
// key and instance, and the client's clock.
type session struct {
	key, instance string
	claims        licensekey.Claims
	st            *state
	now           time.Time // the local clock
}

// clock is the client's idea of the time: the later of the local clock and
// the latest time seen, so that setting the clock back gains nothing.
func (s *session) clock() time.Time {
	if s.st.LatestSeen.After(s.now) {
		return s.st.LatestSeen
	}
	return s.now
}

// begin checks the instance id and the key offline, loads the state and
// checks the clock against it. The instance id is used in its normalised
// form, the one the server answers about.
func (c *Client) begin(key, instance string) (*session, *Result) {
	instance = instanceid.Normalize(instance)
	if err := instanceid.Check(instance); err != nil {
		r := refused(contract.CodeBadRequest, "%v", err)
		return nil, &r
	}
	claims, err := c.Verify(key)
	if err != nil {
		r := refused(contract.CodeInvalidKey, "the license key does not verify with the pinned public key: %v", err)
		return nil, &r
	}
	s := &session{key: key, instance: instance, claims: claims, now: c.now()}
	s.st = c.loadState(s)
	if s.now.Before(s.st.LatestSeen.Add(-c.cfg.ClockTolerance)) {
		r := refused(CodeClockRollback, "the local clock (%s) is behind a time already seen (%s): fix the clock", s.now.Format(time.RFC3339), s.st.LatestSeen.Format(time.RFC3339))
		r.Claims = &claims
		s.st.rollback = &r
	}
	return s, nil
}

// finish records the time seen (whatever the outcome) and returns r.
func (c *Client) finish(s *session, r Result) Result {
	c.saveState(s.key, s.instance, s.st, s.now)
	return r
}

// expired is the refusal of a key past its own expiry, by the client's
// clock, or nil. An expired key runs only on a lease that states a grace
// the clock is within (signed, so the server's word, and at most
// lease.MaxGrace); online, the server may give such a lease.
func (c *Client) expired(s *session) *Result {
	if !s.clock().Before(s.claims.ExpiresAt) {
		r := Result{Code: contract.CodeExpired, Detail: "the license key expired on " + s.claims.ExpiresAt.Format(time.RFC3339) + ": install the renewed key", Claims: &s.claims}
		return &r
	}
	return nil
}

// ask makes the call, unless the key expired and no server could give a
// grace. An expired key that gets no lease is EXPIRED, unless the server
// refused it for a reason of its own (TOO_MANY_INSTANCES, REVOKED, ...),
// which is the truer answer.
func (c *Client) ask(ctx context.Context, path string, s *session) Result {
	expired := c.expired(s)
	if expired != nil && c.cfg.ServerURL == "" {
		return *expired
	}
	r := c.call(ctx, path, s)
	if expired != nil && !r.OK && !r.verdict {
		return *expired
	}
	return r
}

// onLease is the outcome of running on l at clock: GRACE within the grace
// it states, OVERAGE on a seat above max instances, else VALID; with the
// warning line of the first two.
func onLease(l *lease.Lease, clock time.Time) (code, warning string) {
	switch {
	case l.InGrace(clock):
		return contract.CodeGrace, "the license expired on " + l.LicenseEndsAt.Format(time.RFC3339) + "; it works in its grace until " +
			l.GraceEndsAt.Format(time.RFC3339) + ": renew it"
	case l.Overage:
		return contract.CodeOverage, "this instance's seat is above the license's max instances, within its overage allowance: ask for more instances"
	}
	return contract.CodeValid, ""
}

// running is the Result of running on l, with detail after the outcome's
// warning, if any.
func running(s *session, l *lease.Lease, clock time.Time, detail string, fromLease bool) Result {
	code, warning := onLease(l, clock)
	if warning != "" {
		detail = warning + " (" + detail + ")"
	}
	return Result{OK: true, Code: code, Detail: detail, Claims: &s.claims, Lease: l, FromLease: fromLease}
}

// Activate takes (or refreshes) the instance's seat and keeps its lease.
func (c *Client) Activate(ctx context.Context, key, instance string) Result {
	s, early := c.begin(key, instance)
	if early != nil {
		return *early
	}
	return c.finish(s, c.ask(ctx, contract.PathActivate, s))
}

// Check says whether CAIO may run: on the cached lease while it is valid
// and not yet due for renewal; otherwise it renews with the server, or
// takes a seat (activates) when it holds no lease; and, when the server
// cannot be reached or its answer does not check, runs on the lease until
// it expires. It never says VALID without a verified lease for this key
// and instance.
func (c *Client) Check(ctx context.Context, key, instance string) Result {
	s, early := c.begin(key, instance)
	if early != nil {
		return *early
	}
	l, clock := s.st.Lease, s.clock()
	if s.st.rollback == nil && l != nil && clock.Before(l.RenewAfter) && clock.Before(l.ExpiresAt) &&
		(c.expired(s) == nil || l.InGrace(clock)) {
		return c.finish(s, running(s, l, clock, "running on the lease until "+l.ExpiresAt.Format(time.RFC3339), true))
	}
	if l != nil {
		return c.finish(s, c.ask(ctx, contract.PathValidate, s))
	}
	r := c.ask(ctx, contract.PathActivate, s)
	if r.OK && !r.FromLease {
		r.Detail = "no lease held, so activated: " + r.Detail
	}
	return c.finish(s, r)
}

// Deactivate frees the instance's seat and forgets its lease. It works
// with an expired key too: a seat can always be given back.
func (c *Client) Deactivate(ctx context.Context, key, instance string) Result {
	s, early := c.begin(key, instance)
	if early != nil {
		return *early
	}
	return c.finish(s, c.call(ctx, contract.PathDeactivate, s))
}

// CheckOffline checks an offline lease file (issue-offline-lease) with the
// pinned public key alone.
func (c *Client) CheckOffline(key, instance string, file []byte) Result {
	s, early := c.begin(key, instance)
	if early != nil {
		return *early
	}
	if s.st.rollback != nil {
		return c.finish(s, *s.st.rollback)
	}
	var f struct {
		Lease string `json:"lease"`
	}
	if err := json.Unmarshal(file, &f); err != nil || f.Lease == "" {
		return c.finish(s, refused(CodeBadSignature, "the offline lease file is not a lease file"))
	}
	l, err := c.verifyLease(f.Lease, nil, s)
	if err != nil || l.Kind != lease.Offline {
		return c.finish(s, refused(CodeBadSignature, "the offline lease does not verify with the pinned public key, or is not for this key and instance"))
	}
	clock := s.clock()
	if clock.Before(l.IssuedAt.Add(-c.cfg.ClockTolerance)) {
		return c.finish(s, refused(CodeClockRollback, "the local clock (%s) is before the lease was issued (%s): fix the clock", clock.Format(time.RFC3339), l.IssuedAt.Format(time.RFC3339)))
	}
	if r := c.expired(s); r != nil && !l.InGrace(clock) {
		return c.finish(s, *r)
	}
	if !clock.Before(l.ExpiresAt) {
		return c.finish(s, Result{Code: CodeLeaseExpired, Detail: "the offline lease expired on " + l.ExpiresAt.Format(time.RFC3339), Claims: &s.claims, Lease: &l})
	}
	s.st.seen(l.IssuedAt)
	return c.finish(s, running(s, &l, clock, "offline lease valid until "+l.ExpiresAt.Format(time.RFC3339), true))
}

// errLeaseBounds: a lease that a genuine server never signs.
var errLeaseBounds = errors.New("the lease lies outside the license key's life or the certificate that vouches for it")

// verifyLease checks a lease token: online ones with the certified server
// key, offline ones with a pinned key; that it names this key and
// instance; and that it ends neither after the key expires nor after the
// certificate that vouches for it (the server caps its leases so: one that
// does not is forged, with a stolen server key at best).
func (c *Client) verifyLease(token string, cert *servercert.Certificate, s *session) (lease.Lease, error) {
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
	if l.KeyDigest != licensekey.Digest(s.key) || l.InstanceID != s.instance || l.LicenseID != s.claims.LicenseID {
		return l, errors.New("the lease is for another key, license or instance")
	}
	// A lease runs at most to the key's expiry or, stating a grace, to
	// the grace's end (Parse holds it to lease.MaxGrace), and says the
	// license ends no later than the key does.
	limit := s.claims.ExpiresAt
	if l.Version() == 2 {
		limit = l.GraceEndsAt
		if l.LicenseEndsAt.After(s.claims.ExpiresAt) {
			return l, errLeaseBounds
		}
	}
	if l.ExpiresAt.After(limit) || l.RenewAfter.After(l.ExpiresAt) ||
		(cert != nil && (l.ExpiresAt.After(cert.NotAfter) || l.IssuedAt.Before(cert.NotBefore))) {
		return l, errLeaseBounds
	}
	return l, nil
}

// apiAnswer is the API's JSON as the client reads it: it takes the
// claims from the key it verified itself, and has no use for the seat.
type apiAnswer = contract.ResponseBody[json.RawMessage, json.RawMessage]

// call makes one API call (with retries) and turns the verified answer, or
// its absence, into a Result. Only a verified lease for this key and
// instance, in a signed answer about them to this very request, lets CAIO
// run; without one, the lease already held carries it until it ends.
func (c *Client) call(ctx context.Context, path string, s *session) Result {
	st, clock := s.st, s.clock()
	fallback := func(code, detail string) Result {
		if st.rollback != nil {
			return *st.rollback
		}
		if st.Lease != nil && path != contract.PathDeactivate {
			if clock.Before(st.Lease.ExpiresAt) {
				return running(s, st.Lease, clock, detail+"; running on the lease until "+st.Lease.ExpiresAt.Format(time.RFC3339), true)
			}
			return Result{Code: CodeLeaseExpired, Detail: detail + "; the lease expired on " + st.Lease.ExpiresAt.Format(time.RFC3339), Claims: &s.claims, Lease: st.Lease}
		}
		return Result{Code: code, Detail: detail, Claims: &s.claims}
	}
	if c.cfg.ServerURL == "" {
		return fallback(CodeServerUnreachable, "no license server configured")
	}
	ans, cert, serverTime, err := c.post(ctx, path, s)
	switch {
	case errors.Is(err, errBadSignature):
		return fallback(CodeBadSignature, "the server's answer does not check ("+err.Error()+"): it is not the license server, it is not about this key and instance, or it was altered")
	case err != nil:
		return fallback(CodeServerUnreachable, "the license server cannot be reached: "+err.Error())
	}
	// The answer's time moves the client's clock only when it agrees with
	// the local clock: a time far off is a clock to fix, or a forgery.
	if d := serverTime.Sub(s.now); d <= c.cfg.ClockTolerance && d >= -c.cfg.ClockTolerance {
		st.seen(serverTime)
	}
	res := Result{Code: ans.Code, Detail: ans.Detail, Claims: &s.claims}
	switch {
	case ans.Code == contract.CodeDeactivated && path == contract.PathDeactivate:
		res.OK = true
		st.Lease, st.LeaseToken, st.Certificate = nil, "", ""
	case ans.Valid && ans.Lease != "" && path != contract.PathDeactivate:
		l, err := c.verifyLease(ans.Lease, &cert.Certificate, s)
		if err != nil {
			return fallback(CodeBadSignature, "the lease in the server's answer does not check: "+err.Error())
		}
		if !clock.Before(l.ExpiresAt) {
			return fallback(CodeLeaseExpired, "the server's lease ended on "+l.ExpiresAt.Format(time.RFC3339))
		}
		st.Lease, st.LeaseToken, st.Certificate = &l, ans.Lease, cert.encoded
		// The outcome is what the signed lease says, as it will say it
		// offline (the server's code says the same, and its detail has
		// the warning already).
		res.OK, res.Lease = true, &l
		res.Code, _ = onLease(&l, clock)
	case ans.Valid:
		// A genuine server answers an instance with a lease or a refusal.
		return fallback(CodeNoLease, "the server's answer carries no lease for this instance, and CAIO runs only on its own lease")
	case transient[ans.Code]:
		// Load or trouble on the server's side says nothing of the license.
		return fallback(ans.Code, "the license server could not answer now ("+ans.Detail+")")
	default:
		// A signed refusal about this key and instance is the server's
		// word: no running on the lease.
		st.Lease, st.LeaseToken, st.Certificate = nil, "", ""
		res.verdict = true
	}
	if st.rollback != nil && res.OK {
		res.Detail += " (the local clock is behind a time already seen: fix it, or this instance stops when the server is out of reach)"
	}
	return res
}

var errBadSignature = errors.New("bad signature")

// transient are the API's codes that are no verdict on the license: the
// instance carries on on its lease, as through an outage.
var transient = map[string]bool{contract.CodeRateLimited: true, contract.CodeBusy: true, contract.CodeUnknownOutcome: true, contract.CodeInternal: true}

type certificate struct {
	servercert.Certificate
	encoded string
}

// post sends one request, retrying transport failures and 5xx with
// backoff, and verifies the answer it gets.
func (c *Client) post(ctx context.Context, path string, s *session) (apiAnswer, *certificate, time.Time, error) {
	body, _ := json.Marshal(contract.RequestBody{LicenseKey: licensekey.Canonical(s.key)})
	var lastErr error
	for attempt := 0; attempt < c.cfg.Retries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return apiAnswer{}, nil, time.Time{}, ctx.Err()
			case <-time.After(time.Duration(100<<attempt) * time.Millisecond):
			}
		}
		ans, cert, at, retry, err := c.attempt(ctx, path, s, body)
		if err == nil || !retry {
			return ans, cert, at, err
		}
		lastErr = err
	}
	return apiAnswer{}, nil, time.Time{}, lastErr
}

func (c *Client) attempt(ctx context.Context, path string, s *session, body []byte) (ans apiAnswer, cert *certificate, at time.Time, retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	nonce := newNonce()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.ServerURL+path, bytes.NewReader(body))
	if err != nil {
		return ans, nil, at, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(contract.HeaderInstanceID, s.instance)
	req.Header.Set(contract.HeaderNonce, nonce)
	req.Header.Set(contract.HeaderSignatureVersion, contract.SignatureVersion)
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return ans, nil, at, true, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return ans, nil, at, true, err
	}
	asked := servercert.Asked{Route: path, Nonce: nonce, Key: s.key, Instance: s.instance}
	sc, at, err := servercert.VerifyAnswer(resp.Header, resp.StatusCode, asked, raw, c.cfg.PublicKeys, s.clock())
	if err != nil && (resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests) {
		// An unsigned error page (a proxy or a gateway in the way) is an
		// outage, retried like one, not a forgery.
		return ans, nil, at, true, fmt.Errorf("the server answered %d", resp.StatusCode)
	}
	if err != nil {
		return ans, nil, at, false, fmt.Errorf("%w: %v", errBadSignature, err)
	}
	cert = &certificate{Certificate: sc, encoded: resp.Header.Get(contract.HeaderCertificate)}
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
