// Package servercert certifies the API's server key and signs its answers.
//
// The API signs every response with a server key (Ed25519) rather than with
// the license signing key, so that the internet-facing function can prove
// its answers without being able to mint licenses. The license signing key
// certifies the server key: a CAIO instance, which pins only the license
// public key, checks the certificate and then the response.
//
// Certificate, encoded as unpadded base64url (121 bytes):
//
//	1   version (1)
//	8   issuer: key id of the license signing key
//	32  server public key (Ed25519)
//	8   not before, Unix seconds (int64, big-endian)
//	8   not after, Unix seconds
//	64  Ed25519 signature by the issuer over "CAIO-server-cert-v1" 0x00 || the 57 bytes above
//
// Response signature, unpadded base64url of an Ed25519 signature by the
// server key, version 2 (sent when the request asks for it with
// X-CAIO-Signature-Version: 2, and said so in the same response header):
//
//	"CAIO-response-v2" 0x00
//	2   HTTP status (uint16)
//	1+n route: length, then the request path (e.g. /api/v1/licensing/activate)
//	1+n nonce: length, then the request's nonce as sent ("" when none)
//	8   server time, Unix seconds (int64)
//	32  SHA-256 of the canonical license key the server acted on (zeros when none)
//	1+n instance id the server acted on: length, then UTF-8 ("" when none)
//	32  SHA-256 of the response body
//
// Version 1 (for clients from before it, which do not ask) is the same
// without the key digest and instance id, under "CAIO-response-v1": it
// does not say what the answer is about, and current clients refuse it.
package servercert

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/contract"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
)

// MaxNonceLen bounds a nonce (bytes of printable ASCII).
const MaxNonceLen = 128

const (
	version       = 1
	certContext   = "CAIO-server-cert-v1\x00"
	respContextV1 = "CAIO-response-v1\x00"
	// respContext opens the message of contract.SignatureVersion, the
	// version the headers name.
	respContext = "CAIO-response-v2\x00"
	certBody    = 1 + 8 + ed25519.PublicKeySize + 8 + 8
	certSize    = certBody + ed25519.SignatureSize
)

var enc = base64.RawURLEncoding.Strict()

// Errors a verifier returns.
var (
	ErrMalformed     = errors.New("servercert: malformed certificate or signature")
	ErrUnknownIssuer = errors.New("servercert: certificate issued by a key that is not trusted")
	ErrBadSignature  = errors.New("servercert: signature does not verify")
	ErrNotValidNow   = errors.New("servercert: certificate is outside its validity window")
	ErrUnsigned      = errors.New("servercert: the answer is not signed")
)

// Certificate says that a server key speaks for a license signing key
// between NotBefore and NotAfter.
type Certificate struct {
	IssuerKeyID string
	PublicKey   ed25519.PublicKey
	NotBefore   time.Time
	NotAfter    time.Time
}

// KeyID names the server key: the first 8 bytes of its SHA-256, in hex.
func (c Certificate) KeyID() string { return licensekey.KeyID(c.PublicKey) }

// ValidAt reports whether t is inside the certificate's window.
func (c Certificate) ValidAt(t time.Time) bool {
	return !t.Before(c.NotBefore) && t.Before(c.NotAfter)
}

// Issue certifies pub from notBefore to notAfter with the license signing key.
func Issue(pub ed25519.PublicKey, notBefore, notAfter time.Time, issuer ed25519.PrivateKey) (string, error) {
	if len(pub) != ed25519.PublicKeySize || !notBefore.Before(notAfter) {
		return "", errors.New("servercert: a certificate needs an Ed25519 public key and a window that ends after it starts")
	}
	b := make([]byte, 0, certSize)
	b = append(b, version)
	kid, _ := hex.DecodeString(licensekey.KeyID(issuer.Public().(ed25519.PublicKey)))
	b = append(b, kid...)
	b = append(b, pub...)
	b = binary.BigEndian.AppendUint64(b, uint64(notBefore.Unix()))
	b = binary.BigEndian.AppendUint64(b, uint64(notAfter.Unix()))
	b = append(b, ed25519.Sign(issuer, append([]byte(certContext), b...))...)
	return enc.EncodeToString(b), nil
}

// Parse decodes a certificate without checking it.
func Parse(s string) (Certificate, error) {
	b, err := enc.DecodeString(s)
	if err != nil || len(b) != certSize || b[0] != version {
		return Certificate{}, ErrMalformed
	}
	return Certificate{
		IssuerKeyID: hex.EncodeToString(b[1:9]),
		PublicKey:   ed25519.PublicKey(bytes.Clone(b[9 : 9+ed25519.PublicKeySize])),
		NotBefore:   time.Unix(int64(binary.BigEndian.Uint64(b[41:49])), 0).UTC(),
		NotAfter:    time.Unix(int64(binary.BigEndian.Uint64(b[49:57])), 0).UTC(),
	}, nil
}

// Verify parses a certificate and checks that a trusted license key issued
// it and that at lies inside its window.
func Verify(s string, trusted licensekey.PublicKeys, at time.Time) (Certificate, error) {
	c, err := Parse(s)
	if err != nil {
		return c, err
	}
	issuer, ok := trusted[c.IssuerKeyID]
	if !ok {
		return c, ErrUnknownIssuer
	}
	b, _ := enc.DecodeString(s)
	if !ed25519.Verify(issuer, append([]byte(certContext), b[:certBody]...), b[certBody:]) {
		return c, ErrBadSignature
	}
	if !c.ValidAt(at) {
		return c, ErrNotValidNow
	}
	return c, nil
}

// Response is what a response signature covers.
type Response struct {
	Status int
	Route  string
	Nonce  string
	Time   time.Time
	// What the answer is about (version 2): the SHA-256 of the canonical
	// license key the server acted on (KeyDigest of it; zeros when the
	// request had none) and the instance id it acted on ("" when none).
	KeyDigest [32]byte
	Instance  string
	Body      []byte
	// V1 signs the version 1 message, for clients that do not ask for 2.
	V1 bool
}

// KeyDigest is the digest a signed answer names for a license key; an
// answer about no key names zeros.
func KeyDigest(key string) [32]byte {
	if licensekey.Canonical(key) == "" {
		return [32]byte{}
	}
	return licensekey.DigestSum(key)
}

func (r Response) message() []byte {
	route, nonce, instance := clip(r.Route), clip(r.Nonce), clip(r.Instance)
	digest := sha256.Sum256(r.Body)
	m := make([]byte, 0, len(respContext)+2+1+len(route)+1+len(nonce)+8+32+1+len(instance)+32)
	if r.V1 {
		m = append(m, respContextV1...)
	} else {
		m = append(m, respContext...)
	}
	m = binary.BigEndian.AppendUint16(m, uint16(r.Status))
	m = append(m, byte(len(route)))
	m = append(m, route...)
	m = append(m, byte(len(nonce)))
	m = append(m, nonce...)
	m = binary.BigEndian.AppendUint64(m, uint64(r.Time.Unix()))
	if !r.V1 {
		m = append(m, r.KeyDigest[:]...)
		m = append(m, byte(len(instance)))
		m = append(m, instance...)
	}
	return append(m, digest[:]...)
}

// clip keeps a field within its one-byte length (routes, nonces and
// instance ids are shorter; this only keeps the encoding total).
func clip(s string) string {
	if len(s) > 255 {
		return s[:255]
	}
	return s
}

// SignResponse signs r with the server key.
func SignResponse(priv ed25519.PrivateKey, r Response) string {
	return enc.EncodeToString(ed25519.Sign(priv, r.message()))
}

// VerifyResponse checks a response signature with the server public key.
func VerifyResponse(pub ed25519.PublicKey, sig string, r Response) error {
	b, err := enc.DecodeString(sig)
	if err != nil || len(b) != ed25519.SignatureSize {
		return ErrMalformed
	}
	if !ed25519.Verify(pub, r.message(), b) {
		return ErrBadSignature
	}
	return nil
}

// Asked is what a client asked, which a version 2 answer must name.
type Asked struct {
	Route    string
	Nonce    string
	Key      string // the license key as sent
	Instance string // the instance id as sent ("" when none)
}

// VerifyAnswer checks a response as a client does: a version 2 signature
// (an answer that does not say what it is about is taken as unsigned); the
// certificate in its headers against the trusted license keys at now, the
// client's own idea of the time (never the time the answer claims); and
// the signature over status, route, nonce, the answer's time, the key and
// instance asked about, and the body. An answer about another key or
// instance fails like a forged one. It returns the certificate and the
// time the answer claims.
func VerifyAnswer(header http.Header, status int, asked Asked, body []byte, trusted licensekey.PublicKeys, now time.Time) (Certificate, time.Time, error) {
	certText, sig := header.Get(contract.HeaderCertificate), header.Get(contract.HeaderSignature)
	secs, err := strconv.ParseInt(header.Get(contract.HeaderServerTime), 10, 64)
	if certText == "" || sig == "" || err != nil || header.Get(contract.HeaderSignatureVersion) != contract.SignatureVersion {
		return Certificate{}, time.Time{}, ErrUnsigned
	}
	at := time.Unix(secs, 0).UTC()
	cert, err := Verify(certText, trusted, now)
	if err != nil {
		return cert, at, err
	}
	return cert, at, VerifyResponse(cert.PublicKey, sig, Response{Status: status, Route: asked.Route, Nonce: asked.Nonce, Time: at,
		KeyDigest: KeyDigest(asked.Key), Instance: asked.Instance, Body: body})
}

// ValidNonce reports whether a nonce may be signed: 1-128 bytes of
// printable ASCII without spaces.
func ValidNonce(n string) bool {
	if n == "" || len(n) > MaxNonceLen {
		return false
	}
	for i := 0; i < len(n); i++ {
		if n[i] <= ' ' || n[i] > '~' {
			return false
		}
	}
	return true
}

// EncodePrivateKey renders a server private key for a file or Secrets
// Manager: its 32-byte seed in standard base64.
func EncodePrivateKey(priv ed25519.PrivateKey) string {
	return base64.StdEncoding.EncodeToString(priv.Seed())
}

// ParsePrivateKey reads what EncodePrivateKey wrote (surrounding
// whitespace ignored).
func ParsePrivateKey(s string) (ed25519.PrivateKey, error) {
	seed, err := base64.StdEncoding.Strict().DecodeString(string(bytes.TrimSpace([]byte(s))))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, errors.New("not a server key: want the base64 seed that 'manage-licenses certify-server-key' writes")
	}
	return ed25519.NewKeyFromSeed(seed), nil
}
