// Package licensekey encodes license claims into signed, self-contained keys
// and verifies them with a public key alone.
//
// A key looks like CAIO-v1-<CUSTOMER_ID>-<BODY>. BODY is the binary claims
// followed by an Ed25519 signature, in unpadded base64 over the alphabet
// A-Z a-z 0-9 . _ — the URL-safe alphabet with '.' in place of '-', so BODY
// never contains '-' and the key splits unambiguously at its last '-' even
// when the customer id contains dashes. docs/formats.md specifies the layout byte
// by byte; testdata/ holds vectors.
package licensekey

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Prefix starts every version-1 key.
const Prefix = "CAIO-v1-"

// Caps that bound every key (and that the domain enforces on input).
const (
	MaxCustomerIDLen = 64
	MaxTierLen       = 32
	MaxFeatureLen    = 32
	MaxFeatures      = 16
	// MaxKeyLen is the longest possible key: every field at its cap.
	MaxKeyLen = len(Prefix) + MaxCustomerIDLen + 1 +
		((fixedSize+1+MaxTierLen+1+MaxFeatures*(1+MaxFeatureLen)+SignatureSize)*4+2)/3
)

const (
	keyIDSize     = 8
	licenseIDSize = 16
	// SignatureSize is the size of an Ed25519 signature.
	SignatureSize = ed25519.SignatureSize
	// kid + license id + issued + expires + three uint32 limits
	fixedSize = keyIDSize + licenseIDSize + 8 + 8 + 3*4
	// signedContext separates key signatures from any other use of the key.
	signedContext = "CAIO-v1\x00"
)

const bodyAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._"

var (
	bodyEncoding = base64.NewEncoding(bodyAlphabet).
		WithPadding(base64.NoPadding).Strict()
)

// Errors returned by Parse and Verify.
var (
	ErrMalformed         = errors.New("license key is malformed")
	ErrUnknownSigningKey = errors.New("license key was signed by an unknown signing key")
	ErrBadSignature      = errors.New("license key signature does not verify")
)

// Claims are the signed facts a key carries.
type Claims struct {
	LicenseID         string    `json:"license_id"`
	CustomerID        string    `json:"customer_id"`
	Tier              string    `json:"tier"`
	IssuedAt          time.Time `json:"issued_at"`
	ExpiresAt         time.Time `json:"expires_at"`
	Features          []string  `json:"features"`
	MaxInstances      uint32    `json:"max_instances"`
	MaxServices       uint32    `json:"max_services"`
	MaxRequestsPerDay uint32    `json:"max_requests_per_day"`
	KeyID             string    `json:"key_id"`
}

// isName reports whether s is A-Z a-z 0-9 . _ - starting with a letter or
// digit: the ids, tiers and features a key may carry. (A loop, not a
// regular expression: those compile at every process start, the activate
// function's cold start included.)
func isName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return s != ""
}

// ValidateCustomerID reports whether id may appear in a key.
func ValidateCustomerID(id string) error {
	if len(id) == 0 || len(id) > MaxCustomerIDLen || !isName(id) {
		return fmt.Errorf("customer id %q must be 1-%d characters of A-Z a-z 0-9 . _ - starting with a letter or digit", id, MaxCustomerIDLen)
	}
	return nil
}

// ValidateTier reports whether tier may appear in a key.
func ValidateTier(tier string) error {
	if len(tier) == 0 || len(tier) > MaxTierLen || !isName(tier) {
		return fmt.Errorf("tier %q must be 1-%d characters of A-Z a-z 0-9 . _ - starting with a letter or digit", tier, MaxTierLen)
	}
	return nil
}

// NormalizeFeatures validates features and returns them sorted and de-duplicated,
// the canonical order in which keys carry them.
func NormalizeFeatures(features []string) ([]string, error) {
	out := make([]string, 0, len(features))
	for _, f := range features {
		if len(f) == 0 || len(f) > MaxFeatureLen || !isName(f) {
			return nil, fmt.Errorf("feature %q must be 1-%d characters of A-Z a-z 0-9 . _ - starting with a letter or digit", f, MaxFeatureLen)
		}
		out = append(out, f)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > MaxFeatures {
		return nil, fmt.Errorf("at most %d features per license (got %d)", MaxFeatures, len(out))
	}
	return out, nil
}

// KeyID names a public key: the first 8 bytes of its SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:keyIDSize])
}

// Encode signs c with priv and returns the key. c.KeyID is set from priv.
func Encode(c Claims, priv ed25519.PrivateKey) (string, error) {
	c.KeyID = KeyID(priv.Public().(ed25519.PublicKey))
	payload, err := marshal(c)
	if err != nil {
		return "", err
	}
	sig := ed25519.Sign(priv, signedMessage(c.CustomerID, payload))
	return Prefix + c.CustomerID + "-" + bodyEncoding.EncodeToString(append(payload, sig...)), nil
}

// Parsed is a syntactically valid key whose signature has not been checked.
type Parsed struct {
	Claims    Claims
	message   []byte
	signature []byte
}

// Parse decodes a key strictly without checking its signature.
func Parse(key string) (*Parsed, error) {
	if len(key) > MaxKeyLen || !strings.HasPrefix(key, Prefix) {
		return nil, ErrMalformed
	}
	rest := key[len(Prefix):]
	cut := strings.LastIndexByte(rest, '-')
	if cut < 0 {
		return nil, ErrMalformed
	}
	customer, body := rest[:cut], rest[cut+1:]
	if ValidateCustomerID(customer) != nil {
		return nil, ErrMalformed
	}
	// A key has one canonical form. The strict decoder refuses every
	// character outside the alphabet except CR and LF, which encoding/base64
	// skips anywhere: refuse those here.
	if strings.ContainsAny(body, "\r\n") {
		return nil, ErrMalformed
	}
	raw, err := bodyEncoding.DecodeString(body)
	if err != nil || len(raw) < fixedSize+2+SignatureSize {
		return nil, ErrMalformed
	}
	payload, sig := raw[:len(raw)-SignatureSize], raw[len(raw)-SignatureSize:]
	c, err := unmarshal(payload)
	if err != nil {
		return nil, ErrMalformed
	}
	c.CustomerID = customer
	return &Parsed{Claims: c, message: signedMessage(customer, payload), signature: sig}, nil
}

// PublicKeys are the verification keys by key id.
type PublicKeys map[string]ed25519.PublicKey

// Add adds pub under its key id.
func (p PublicKeys) Add(pub ed25519.PublicKey) { p[KeyID(pub)] = pub }

// Verify parses key and checks its signature against keys. It does not
// look at expiry: whether an expired key is acceptable is the caller's call.
func Verify(key string, keys PublicKeys) (Claims, error) {
	p, err := Parse(key)
	if err != nil {
		return Claims{}, err
	}
	pub, ok := keys[p.Claims.KeyID]
	if !ok {
		// The key id alone, so that the refusal can name it.
		return Claims{KeyID: p.Claims.KeyID}, ErrUnknownSigningKey
	}
	if !ed25519.Verify(pub, p.message, p.signature) {
		return Claims{}, ErrBadSignature
	}
	return p.Claims, nil
}

// Canonical trims the whitespace around a key (a copy from an email or a
// terminal); whitespace inside a key is never removed, so it fails Parse.
func Canonical(key string) string { return strings.TrimSpace(key) }

// FormatPublicKey renders a public key the way CAIO instances embed it.
func FormatPublicKey(pub ed25519.PublicKey) string {
	return base64.StdEncoding.EncodeToString(pub)
}

// ParsePublicKeys parses one or more public keys separated by commas or
// white space, as printed by FormatPublicKey.
func ParsePublicKeys(s string) (PublicKeys, error) {
	keys := PublicKeys{}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
		raw, err := base64.StdEncoding.Strict().DecodeString(f)
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("public key %.12q… is not a base64 Ed25519 public key as printed by 'manage-licenses public-key'", f)
		}
		keys.Add(ed25519.PublicKey(raw))
	}
	if len(keys) == 0 {
		return nil, errors.New("no public key given")
	}
	return keys, nil
}

func signedMessage(customer string, payload []byte) []byte {
	msg := make([]byte, 0, len(signedContext)+1+len(customer)+len(payload))
	msg = append(msg, signedContext...)
	msg = append(msg, byte(len(customer)))
	msg = append(msg, customer...)
	return append(msg, payload...)
}

func marshal(c Claims) ([]byte, error) {
	if err := ValidateCustomerID(c.CustomerID); err != nil {
		return nil, err
	}
	if err := ValidateTier(c.Tier); err != nil {
		return nil, err
	}
	features, err := NormalizeFeatures(c.Features)
	if err != nil {
		return nil, err
	}
	kid, err := hex.DecodeString(c.KeyID)
	if err != nil || len(kid) != keyIDSize {
		return nil, fmt.Errorf("key id %q must be %d hex bytes", c.KeyID, keyIDSize)
	}
	lid, err := hex.DecodeString(c.LicenseID)
	if err != nil || len(lid) != licenseIDSize {
		return nil, fmt.Errorf("license id %q must be %d hex bytes", c.LicenseID, licenseIDSize)
	}
	b := make([]byte, 0, fixedSize+2+len(c.Tier)+len(features)*(MaxFeatureLen+1))
	b = append(b, kid...)
	b = append(b, lid...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.IssuedAt.Unix()))
	b = binary.BigEndian.AppendUint64(b, uint64(c.ExpiresAt.Unix()))
	b = append(b, byte(len(c.Tier)))
	b = append(b, c.Tier...)
	b = append(b, byte(len(features)))
	for _, f := range features {
		b = append(b, byte(len(f)))
		b = append(b, f...)
	}
	b = binary.BigEndian.AppendUint32(b, c.MaxInstances)
	b = binary.BigEndian.AppendUint32(b, c.MaxServices)
	b = binary.BigEndian.AppendUint32(b, c.MaxRequestsPerDay)
	return b, nil
}

// reader consumes a payload; any short read sets err.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil || n > len(r.b) {
		r.err = ErrMalformed
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8() int {
	b := r.take(1)
	if b == nil {
		return 0
	}
	return int(b[0])
}

func (r *reader) u32() uint32 {
	b := r.take(4)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

func (r *reader) time() time.Time {
	b := r.take(8)
	if b == nil {
		return time.Time{}
	}
	return time.Unix(int64(binary.BigEndian.Uint64(b)), 0).UTC()
}

func unmarshal(payload []byte) (Claims, error) {
	r := &reader{b: payload}
	var c Claims
	c.KeyID = hex.EncodeToString(r.take(keyIDSize))
	c.LicenseID = hex.EncodeToString(r.take(licenseIDSize))
	c.IssuedAt = r.time()
	c.ExpiresAt = r.time()
	c.Tier = string(r.take(r.u8()))
	n := r.u8()
	c.Features = make([]string, 0, n)
	for range n {
		c.Features = append(c.Features, string(r.take(r.u8())))
	}
	c.MaxInstances = r.u32()
	c.MaxServices = r.u32()
	c.MaxRequestsPerDay = r.u32()
	if r.err != nil || len(r.b) != 0 {
		return Claims{}, ErrMalformed
	}
	// Only canonical payloads are accepted: one key string per set of claims.
	if ValidateTier(c.Tier) != nil {
		return Claims{}, ErrMalformed
	}
	if norm, err := NormalizeFeatures(c.Features); err != nil || !slices.Equal(norm, c.Features) {
		return Claims{}, ErrMalformed
	}
	return c, nil
}

// DigestSum is SHA-256 of a key's canonical form: what the database looks
// a key up by, what a lease and a signed answer name it by.
func DigestSum(key string) [32]byte { return sha256.Sum256([]byte(Canonical(key))) }

// Digest is DigestSum in hex.
func Digest(key string) string {
	sum := DigestSum(key)
	return hex.EncodeToString(sum[:])
}
