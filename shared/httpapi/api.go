// Package httpapi is the activation API that CAIO instances call: routing,
// request parsing and the HTTP status of each outcome code, on the wire
// contract of shared/contract. It is transport-neutral
// (Request in, Response out) so that API Gateway events and the local
// net/http server run the same code.
package httpapi

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/caio-licensing/caio-licensing/shared/contract"
	"github.com/caio-licensing/caio-licensing/shared/instanceid"
	"github.com/caio-licensing/caio-licensing/shared/lease"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/metrics"
	"github.com/caio-licensing/caio-licensing/shared/ratelimit"
	"github.com/caio-licensing/caio-licensing/shared/servercert"
)

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 64 << 10

// Request is an HTTP request as any transport delivers it.
type Request struct {
	Method    string
	Path      string
	Header    http.Header
	Body      []byte
	SourceIP  string
	RequestID string
}

// Response is what to send back.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	// Code is the outcome, for access logs.
	Code licensing.Code
	// What the answer is about, for its signature: the license key and
	// instance id the server acted on ("" when none).
	key, instance string
}

// responseBody is the JSON body of every licensing response, with the key's
// claims and the seat in the codec's and the domain's own types.
type responseBody = contract.ResponseBody[licensekey.Claims, licensing.Activation]

// API serves the licensing routes.
type API struct {
	svc     *licensing.Service
	log     *slog.Logger
	signer  *Signer
	limits  Limits
	proxies []netip.Prefix
	metrics metrics.Sink
}

// SetMetrics sends request counts, refusals by code and latencies to m.
func (a *API) SetMetrics(m metrics.Sink) { a.metrics = m }

// Limits are request rates that serve enforces (API Gateway throttles in
// AWS): per source address, and per license key (by digest). A nil
// limiter does not limit.
type Limits struct {
	PerAddress *ratelimit.Limiter
	PerKey     *ratelimit.Limiter
}

// SetLimits turns on rate limits.
func (a *API) SetLimits(l Limits) { a.limits = l }

func rateLimited(what string, wait time.Duration) error {
	e := licensing.Errorf(contract.CodeRateLimited, "too many requests from this %s: retry after the time in Retry-After", what)
	e.RetryAfter = wait
	return e
}

// Signer is the server key that signs responses and leases, with its
// certificate. A lease it signs ends by NotAfter, the certificate's end:
// a server key is worth nothing past its certificate.
type Signer struct {
	Key         ed25519.PrivateKey
	Certificate string
	NotAfter    time.Time
}

// New returns an API on svc that logs to log. With a signer every response
// is signed and activations get signed leases; without, responses are
// unsigned (CAIO clients reject them) and carry lease times only.
func New(svc *licensing.Service, log *slog.Logger, signer *Signer) *API {
	return &API{svc: svc, log: log, signer: signer}
}

// Serve handles one request.
func (a *API) Serve(ctx context.Context, r Request) Response {
	start := time.Now()
	nonce := r.Header.Get(contract.HeaderNonce)
	var resp Response
	if nonce != "" && !servercert.ValidNonce(nonce) {
		resp, nonce = a.refuse(r, errBadNonce()), ""
	} else {
		resp = a.route(ctx, r, &nonce)
	}
	return a.logged(ctx, r, start, a.sign(r, nonce, resp))
}

// Reject answers a request that the transport could not decode.
func (a *API) Reject(ctx context.Context, r Request, err error) Response {
	return a.logged(ctx, r, time.Now(), a.sign(r, "", a.refuse(r, err)))
}

func errBadNonce() error {
	return licensing.Errorf(contract.CodeBadRequest, "the nonce (%s or \"nonce\") must be 1-%d printable ASCII characters without spaces", contract.HeaderNonce, servercert.MaxNonceLen)
}

// sign adds the server's time, certificate and signature to a response:
// the client checks them against the license key it pins.
func (a *API) sign(r Request, nonce string, resp Response) Response {
	if a.signer == nil {
		return resp
	}
	now := time.Now().UTC()
	// Clients from before version 2 do not ask for it, and cannot read it.
	v1 := r.Header.Get(contract.HeaderSignatureVersion) != contract.SignatureVersion
	sig := servercert.SignResponse(a.signer.Key, servercert.Response{Status: resp.Status, Route: r.Path, Nonce: nonce, Time: now,
		KeyDigest: servercert.KeyDigest(resp.key), Instance: resp.instance, Body: resp.Body, V1: v1})
	resp.Header.Set(contract.HeaderServerTime, strconv.FormatInt(now.Unix(), 10))
	resp.Header.Set(contract.HeaderCertificate, a.signer.Certificate)
	resp.Header.Set(contract.HeaderSignature, sig)
	if !v1 {
		resp.Header.Set(contract.HeaderSignatureVersion, contract.SignatureVersion)
	}
	if nonce != "" {
		resp.Header.Set(contract.HeaderNonce, nonce)
	}
	return resp
}

// withLease adds the instance's lease to a result.
func (a *API) withLease(res *responseBody, key string, check licensing.Check) {
	l, ok := check.Lease(lease.Online, key)
	if !ok || !check.Activation.Holds(check.At) {
		return
	}
	if a.signer != nil && !a.signer.NotAfter.IsZero() && l.ExpiresAt.After(a.signer.NotAfter) {
		// The seat stays held as recorded; the token ends with the
		// certificate that vouches for it, and is renewed before then.
		l.ExpiresAt = a.signer.NotAfter
		if half := l.IssuedAt.Add(l.ExpiresAt.Sub(l.IssuedAt) / 2); l.RenewAfter.After(half) {
			l.RenewAfter = half
		}
	}
	res.LeaseInfo = &contract.LeaseInfo{IssuedAt: l.IssuedAt, RenewAfter: l.RenewAfter, ExpiresAt: l.ExpiresAt}
	if l.Version() == 2 {
		res.LeaseInfo.LicenseEndsAt, res.LeaseInfo.GraceEndsAt, res.LeaseInfo.Overage = l.LicenseEndsAt, l.GraceEndsAt, l.Overage
	}
	if a.signer != nil {
		res.Lease, _ = lease.Sign(l, a.signer.Key)
	}
}

// logged writes the access log line of a request.
func (a *API) logged(ctx context.Context, r Request, start time.Time, resp Response) Response {
	elapsed := ms(time.Since(start))
	a.log.LogAttrs(ctx, levelFor(resp.Status), "request",
		slog.String("request_id", r.RequestID), slog.String("method", r.Method), slog.String("path", r.Path),
		slog.Int("status", resp.Status), slog.String("code", string(resp.Code)),
		slog.String("source_ip", r.SourceIP), slog.Float64("duration_ms", elapsed))
	if a.metrics != nil {
		route := routeName(r.Path)
		a.metrics.Count(metrics.Requests, 1, "route", route, "code", string(resp.Code))
		if resp.Status >= 400 {
			a.metrics.Count(metrics.Refusals, 1, "code", string(resp.Code))
		}
		a.metrics.Observe(metrics.RequestLatency, elapsed, "route", route)
	}
	return resp
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// routeName is a bounded label for a path: the route's last element, or
// "other" (a scanner's paths must not grow the metrics without bound).
func routeName(path string) string {
	switch path {
	case contract.PathValidate, contract.PathActivate, contract.PathDeactivate:
		return path[strings.LastIndex(path, "/")+1:]
	case contract.PathHealth:
		return "healthz"
	}
	return "other"
}

func levelFor(status int) slog.Level {
	if status >= 500 {
		return slog.LevelError
	}
	return slog.LevelInfo
}

// route answers r; nonce is the client's nonce, which the body may supply
// when the header did not.
func (a *API) route(ctx context.Context, r Request, nonce *string) Response {
	if r.Path == contract.PathHealth {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return methodNotAllowed(r, "GET, HEAD")
		}
		return jsonResponse(http.StatusOK, "OK", map[string]string{"status": "ok"})
	}
	path := strings.TrimSuffix(r.Path, "/")
	var op func(context.Context, licensing.SeatRequest) (licensing.Check, error)
	switch path {
	case contract.PathValidate:
		op = a.svc.Validate
	case contract.PathActivate:
		op = a.svc.Activate
	case contract.PathDeactivate:
		op = a.svc.Deactivate
	default:
		return a.refuse(r, licensing.Errorf(contract.CodeUnknownRoute, "no route %s %s: use POST %s, %s or %s", r.Method, r.Path,
			contract.PathValidate, contract.PathActivate, contract.PathDeactivate))
	}
	if r.Method != http.MethodPost {
		return methodNotAllowed(r, "POST")
	}
	if ok, wait := a.limits.PerAddress.Allow(r.SourceIP, time.Now()); !ok {
		return a.refuse(r, rateLimited("address", wait))
	}
	if len(r.Body) > MaxBodyBytes {
		return a.refuse(r, licensing.Errorf(contract.CodeBodyTooLarge, "request body is over %d bytes: send only license_key and instance_id", MaxBodyBytes))
	}
	var b contract.RequestBody
	if err := decodeBody(r.Body, &b); err != nil {
		return a.refuse(r, err)
	}
	if *nonce == "" && b.Nonce != "" {
		if !servercert.ValidNonce(b.Nonce) {
			return a.refuse(r, errBadNonce())
		}
		*nonce = b.Nonce
	}
	seat := licensing.SeatRequest{Key: b.LicenseKey, InstanceID: b.InstanceID, IPAddress: r.SourceIP}
	// The header wins over the body, but an empty header says nothing.
	if h := r.Header.Values(contract.HeaderInstanceID); len(h) > 0 && h[0] != "" {
		seat.InstanceID = h[0]
	}
	seat.InstanceID = instanceid.Normalize(seat.InstanceID)
	if seat.Key == "" {
		return a.refuse(r, licensing.Errorf(contract.CodeBadRequest, "license_key is required: send {\"license_key\": \"CAIO-v1-...\"}"))
	}
	if seat.IPAddress != "" {
		if _, err := netip.ParseAddr(seat.IPAddress); err != nil {
			seat.IPAddress = "" // a transport quirk must not fail the caller's request
		}
	}
	// Older CAIO clients send no instance id: their activation is recorded
	// under one derived from the caller's address.
	if seat.InstanceID == "" && path == contract.PathActivate && seat.IPAddress != "" {
		seat.InstanceID = "ip:" + seat.IPAddress
	}
	resp := a.answer(ctx, r, path, op, seat)
	// The signature names what the answer is about: a client asking about
	// one key and instance cannot be shown an answer about others.
	resp.key, resp.instance = seat.Key, seat.InstanceID
	return resp
}

// answer runs a seat operation and shapes its answer.
func (a *API) answer(ctx context.Context, r Request, path string, op func(context.Context, licensing.SeatRequest) (licensing.Check, error), seat licensing.SeatRequest) Response {
	if a.limits.PerKey != nil {
		if ok, wait := a.limits.PerKey.Allow(licensekey.Digest(seat.Key), time.Now()); !ok {
			return a.refuse(r, rateLimited("license key", wait))
		}
	}
	check, err := op(ctx, seat)
	if err != nil {
		return a.refuseWithClaims(r, err, check)
	}
	res := responseBody{Valid: true, Code: contract.CodeValid, Detail: "license is valid", Claims: &check.Claims,
		Status: string(check.License.EffectiveStatus(check.At)), Activation: check.Activation}
	switch path {
	case contract.PathDeactivate:
		res.Code, res.Detail = contract.CodeDeactivated, "instance "+seat.InstanceID+" deactivated; its seat is free"
		if a := check.Activation; a != nil && a.DeactivatedAt != nil && a.DeactivatedAt.After(check.At) {
			res.Detail = "instance " + seat.InstanceID + " deactivated; its seat is free once the lease it was given ends, " + a.DeactivatedAt.UTC().Format(time.RFC3339)
		}
		if !check.Changed {
			res.Detail = "instance " + seat.InstanceID + " was already deactivated"
		}
		return jsonResponse(http.StatusOK, licensing.Code(res.Code), res)
	case contract.PathActivate:
		res.Detail = fmt.Sprintf("instance %s activated (%d of %d seats in use)", seat.InstanceID, check.License.ActiveInstances, check.License.MaxInstances)
		if check.Renewed {
			res.Detail = fmt.Sprintf("instance %s holds its seat; lease renewed", seat.InstanceID)
		}
	}
	a.withLease(&res, seat.Key, check)
	// A usable answer with a warning: the license in its grace, or the
	// seat above max instances. The lease says the same to the client.
	if code := check.Outcome(check.At); code != licensing.CodeValid {
		res.Code, res.Detail = string(code), check.Warning(check.At)+" ("+res.Detail+")"
	}
	return jsonResponse(http.StatusOK, licensing.Code(res.Code), res)
}

// decodeBody accepts exactly one JSON object; unknown fields are ignored
// so that newer clients can send more.
func decodeBody(raw []byte, b *contract.RequestBody) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return licensing.Errorf(contract.CodeBadRequest, "request body is empty: send {\"license_key\": \"CAIO-v1-...\", \"instance_id\": \"...\"}")
	}
	// encoding/json would replace invalid UTF-8 with U+FFFD silently.
	if !utf8.Valid(raw) {
		return licensing.Errorf(contract.CodeBadRequest, "request body is not valid UTF-8: send JSON text")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(b); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return licensing.Errorf(contract.CodeBadRequest, "field %s must be a %s", typeErr.Field, typeErr.Type)
		}
		return licensing.Errorf(contract.CodeBadRequest, "request body is not a JSON object: send {\"license_key\": \"CAIO-v1-...\", \"instance_id\": \"...\"}")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return licensing.Errorf(contract.CodeBadRequest, "request body has data after the JSON object")
	}
	return nil
}

// StatusFor maps an outcome code to its HTTP status. A code that is not
// the contract's (a domain code the API does not answer with) is a 500,
// which the caller sees as INTERNAL.
func StatusFor(code licensing.Code) int {
	switch code {
	case contract.CodeValid, contract.CodeGrace, contract.CodeOverage, contract.CodeDeactivated:
		return http.StatusOK
	case contract.CodeBadRequest, contract.CodeInstanceIDRequired:
		return http.StatusBadRequest
	case contract.CodeInvalidKey, contract.CodeExpired, contract.CodeSuspended, contract.CodeRevoked:
		return http.StatusForbidden
	case contract.CodeNotFound, contract.CodeUnknownRoute:
		return http.StatusNotFound
	case contract.CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case contract.CodeTooManyInstances, contract.CodeNoSeat:
		return http.StatusConflict
	case contract.CodeTooManyActivations, contract.CodeRateLimited:
		return http.StatusTooManyRequests
	case contract.CodeBodyTooLarge:
		return http.StatusRequestEntityTooLarge
	case contract.CodeBusy, contract.CodeUnknownOutcome:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func (a *API) refuse(r Request, err error) Response {
	return a.refuseWithClaims(r, err, licensing.Check{})
}

func (a *API) refuseWithClaims(r Request, err error, check licensing.Check) Response {
	code := licensing.ErrorCode(err)
	status := StatusFor(code)
	res := responseBody{Code: string(code), Detail: licensing.ErrorMessage(err)}
	if status >= 500 {
		// Internals stay in the log; the caller gets the request id to quote.
		a.log.Error("request failed", slog.String("request_id", r.RequestID), slog.String("code", string(code)), slog.String("error", err.Error()))
		if status != http.StatusServiceUnavailable {
			res.Code, res.Detail = contract.CodeInternal, "internal error: retry later, or report request id "+r.RequestID
		}
		res.RequestID = r.RequestID
	}
	if check.Claims.LicenseID != "" {
		res.Claims = &check.Claims
	}
	resp := jsonResponse(status, licensing.Code(res.Code), res)
	switch {
	case status == http.StatusServiceUnavailable:
		resp.Header.Set("Retry-After", "1")
	case status == http.StatusTooManyRequests:
		wait := int64(math.Ceil(licensing.RetryAfter(err).Seconds()))
		resp.Header.Set("Retry-After", strconv.FormatInt(max(wait, 1), 10))
	}
	return resp
}

func methodNotAllowed(r Request, allow string) Response {
	resp := jsonResponse(http.StatusMethodNotAllowed, contract.CodeMethodNotAllowed, responseBody{Code: contract.CodeMethodNotAllowed,
		Detail: fmt.Sprintf("method %s is not allowed on %s: use %s", r.Method, r.Path, allow)})
	resp.Header.Set("Allow", allow)
	return resp
}

func jsonResponse(status int, code licensing.Code, v any) Response {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"valid":false,"code":"` + contract.CodeInternal + `","detail":"internal error"}`)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	return Response{Status: status, Header: h, Body: b, Code: code}
}
