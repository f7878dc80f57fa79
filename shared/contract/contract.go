// Package contract is the licensing API's wire contract: its paths, header
// names, outcome codes and JSON bodies, written once so that the server
// (httpapi, servercert) and the client CAIO embeds (licenseclient) cannot
// drift apart. It imports only the standard library, so any package may
// import it.
//
// Every spelling here is deployed: CAIO instances in the field send and
// read these exact strings, so a change to one is a change of the API.
package contract

import "time"

// Paths of the API's routes. Validate, activate and deactivate take a POST
// with a RequestBody and answer a ResponseBody; health takes a GET.
const (
	PathValidate   = "/api/v1/licensing/validate"
	PathActivate   = "/api/v1/licensing/activate"
	PathDeactivate = "/api/v1/licensing/deactivate"
	PathHealth     = "/healthz"
)

// Header names. The request names its instance and its nonce; the response
// carries the proof that the server answered this very request (the
// message that the signature covers is servercert's).
const (
	// HeaderInstanceID carries the instance id; it wins over the body's
	// instance_id, so a client can name its instance without a body.
	HeaderInstanceID = "X-CAIO-Instance-ID"
	// HeaderNonce is the request's fresh nonce (or the body's "nonce"),
	// which the response echoes and its signature covers.
	HeaderNonce       = "X-CAIO-Nonce"
	HeaderServerTime  = "X-CAIO-Server-Time"
	HeaderCertificate = "X-CAIO-Certificate"
	HeaderSignature   = "X-CAIO-Signature"
	// HeaderSignatureVersion: in a request, the version the client
	// verifies; in the response, the version of HeaderSignature. A
	// request without it gets version 1, for clients from before it.
	HeaderSignatureVersion = "X-CAIO-Signature-Version"
)

// SignatureVersion is the response-signature version current clients ask
// for and accept.
const SignatureVersion = "2"

// Outcome codes the API answers with, in ResponseBody.Code. They are
// untyped so that the domain's own code type and a client's plain strings
// both take them without conversion.
const (
	// CodeValid: the license is usable (validate, activate).
	CodeValid = "VALID"
	// CodeGrace: usable, though the license expired: it is within its
	// grace days (valid is true; the lease says when the grace ends).
	CodeGrace = "GRACE"
	// CodeOverage: usable, on a seat above max instances that the
	// license's overage allowance permits (valid is true).
	CodeOverage = "OVERAGE"
	// CodeDeactivated: the instance's seat is given back (deactivate).
	CodeDeactivated        = "DEACTIVATED"
	CodeBadRequest         = "BAD_REQUEST"
	CodeInstanceIDRequired = "INSTANCE_ID_REQUIRED"
	CodeInvalidKey         = "INVALID_KEY"
	CodeExpired            = "EXPIRED"
	CodeSuspended          = "SUSPENDED"
	CodeRevoked            = "REVOKED"
	CodeNotFound           = "NOT_FOUND"
	CodeUnknownRoute       = "UNKNOWN_ROUTE"
	CodeMethodNotAllowed   = "METHOD_NOT_ALLOWED"
	CodeTooManyInstances   = "TOO_MANY_INSTANCES"
	// CodeNoSeat: validate of an instance that holds no seat; it must
	// activate to run.
	CodeNoSeat             = "NO_SEAT"
	CodeTooManyActivations = "TOO_MANY_ACTIVATIONS"
	CodeRateLimited        = "RATE_LIMITED"
	CodeBodyTooLarge       = "BODY_TOO_LARGE"
	CodeBusy               = "BUSY"
	// CodeUnknownOutcome: a write may or may not have been applied.
	CodeUnknownOutcome = "UNKNOWN_OUTCOME"
	// CodeInternal: anything else; the answer carries a request id to quote.
	CodeInternal = "INTERNAL"
)

// Codes returns every outcome code the API answers with, so that the
// server's tests can prove it answers with no other.
func Codes() []string {
	return []string{
		CodeValid, CodeGrace, CodeOverage, CodeDeactivated, CodeBadRequest, CodeInstanceIDRequired,
		CodeInvalidKey, CodeExpired, CodeSuspended, CodeRevoked,
		CodeNotFound, CodeUnknownRoute, CodeMethodNotAllowed,
		CodeTooManyInstances, CodeNoSeat, CodeTooManyActivations, CodeRateLimited,
		CodeBodyTooLarge, CodeBusy, CodeUnknownOutcome, CodeInternal,
	}
}

// RequestBody is the JSON object a licensing route takes. The server
// ignores fields it does not know, so that newer clients can send more;
// the empty ones are left out, as older clients send them.
type RequestBody struct {
	LicenseKey string `json:"license_key"`
	InstanceID string `json:"instance_id,omitempty"`
	// Nonce stands in for HeaderNonce when the header is not sent.
	Nonce string `json:"nonce,omitempty"`
}

// ResponseBody is the JSON object every licensing route answers with.
// C and A are the types of the key's claims and of the seat (activation),
// whose shapes the key codec and the domain define: this floor cannot
// import them, so the server fills them with its own types and a reader
// picks what it reads (json.RawMessage to read neither).
type ResponseBody[C, A any] struct {
	Valid  bool   `json:"valid"`
	Code   string `json:"code"`
	Detail string `json:"detail"` // one human line
	// Claims are present whenever the key's signature verified.
	Claims *C `json:"claims,omitempty"`
	// Status is the license's status in the server's database.
	Status     string `json:"status,omitempty"`
	Activation *A     `json:"activation,omitempty"`
	// Lease is the signed lease token of the instance's seat (activate,
	// and validate of an instance holding one); LeaseInfo says what it says.
	Lease     string     `json:"lease,omitempty"`
	LeaseInfo *LeaseInfo `json:"lease_info,omitempty"`
	// RequestID, on a 5xx, is the id to quote when reporting it.
	RequestID string `json:"request_id,omitempty"`
}

// LeaseInfo is what a lease says, in the clear.
type LeaseInfo struct {
	IssuedAt   time.Time `json:"issued_at"`
	RenewAfter time.Time `json:"renew_after"`
	ExpiresAt  time.Time `json:"expires_at"`
	// LicenseEndsAt and GraceEndsAt, with a grace: when the license
	// expires and when its grace ends. Overage: the seat is above max
	// instances. Left out when the lease has neither (a version 1 lease).
	LicenseEndsAt time.Time `json:"license_ends_at,omitzero"`
	GraceEndsAt   time.Time `json:"grace_ends_at,omitzero"`
	Overage       bool      `json:"overage,omitempty"`
}
