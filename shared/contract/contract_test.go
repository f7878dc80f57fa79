package contract

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The spellings are spelled out again here on purpose: CAIO instances in
// the field send and read them, and docs/api.md documents them, so a
// change to one must fail a test rather than pass unnoticed.
func TestSpellingsAreTheDeployedOnes(t *testing.T) {
	for got, want := range map[string]string{
		PathValidate:           "/api/v1/licensing/validate",
		PathActivate:           "/api/v1/licensing/activate",
		PathDeactivate:         "/api/v1/licensing/deactivate",
		PathHealth:             "/healthz",
		HeaderInstanceID:       "X-CAIO-Instance-ID",
		HeaderNonce:            "X-CAIO-Nonce",
		HeaderServerTime:       "X-CAIO-Server-Time",
		HeaderCertificate:      "X-CAIO-Certificate",
		HeaderSignature:        "X-CAIO-Signature",
		HeaderSignatureVersion: "X-CAIO-Signature-Version",
		SignatureVersion:       "2",
	} {
		if got != want {
			t.Errorf("%q, want %q", got, want)
		}
	}
	want := []string{"VALID", "GRACE", "OVERAGE", "DEACTIVATED", "BAD_REQUEST", "INSTANCE_ID_REQUIRED", "INVALID_KEY", "EXPIRED",
		"SUSPENDED", "REVOKED", "NOT_FOUND", "UNKNOWN_ROUTE", "METHOD_NOT_ALLOWED", "TOO_MANY_INSTANCES", "NO_SEAT",
		"TOO_MANY_ACTIVATIONS", "RATE_LIMITED", "BODY_TOO_LARGE", "BUSY", "UNKNOWN_OUTCOME", "INTERNAL"}
	if got := Codes(); !slices.Equal(got, want) {
		t.Errorf("Codes() = %v\nwant %v", got, want)
	}
}

// Codes lists every Code constant of the package, and no other string.
func TestCodesListsEveryCodeConstant(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "contract.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	ast.Inspect(f, func(n ast.Node) bool {
		spec, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range spec.Names {
			if !strings.HasPrefix(name.Name, "Code") || i >= len(spec.Values) {
				continue
			}
			if lit, ok := spec.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				v, _ := strconv.Unquote(lit.Value)
				declared = append(declared, v)
			}
		}
		return true
	})
	listed := Codes()
	slices.Sort(declared)
	slices.Sort(listed)
	if len(declared) == 0 || !slices.Equal(declared, listed) {
		t.Errorf("declared codes %v\nCodes() lists %v", declared, listed)
	}
}

// The bodies' JSON, byte for byte: field names, their order (a signature
// covers the body's bytes) and what is left out when empty.
func TestBodiesOnTheWire(t *testing.T) {
	b, _ := json.Marshal(RequestBody{LicenseKey: "CAIO-v1-x"})
	if string(b) != `{"license_key":"CAIO-v1-x"}` {
		t.Errorf("request body %s", b)
	}
	b, _ = json.Marshal(RequestBody{LicenseKey: "k", InstanceID: "i", Nonce: "n"})
	if string(b) != `{"license_key":"k","instance_id":"i","nonce":"n"}` {
		t.Errorf("request body %s", b)
	}

	b, _ = json.Marshal(ResponseBody[struct{}, struct{}]{Code: CodeInternal, Detail: "d"})
	if string(b) != `{"valid":false,"code":"INTERNAL","detail":"d"}` {
		t.Errorf("bare response body %s", b)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	full := ResponseBody[map[string]int, map[string]string]{Valid: true, Code: CodeValid, Detail: "d",
		Claims: &map[string]int{"c": 1}, Status: "active", Activation: &map[string]string{"a": "b"},
		Lease: "tok", LeaseInfo: &LeaseInfo{IssuedAt: at, RenewAfter: at, ExpiresAt: at}, RequestID: "r"}
	b, _ = json.Marshal(full)
	want := `{"valid":true,"code":"VALID","detail":"d","claims":{"c":1},"status":"active","activation":{"a":"b"},"lease":"tok",` +
		`"lease_info":{"issued_at":"2026-01-02T03:04:05Z","renew_after":"2026-01-02T03:04:05Z","expires_at":"2026-01-02T03:04:05Z"},"request_id":"r"}`
	if string(b) != want {
		t.Errorf("response body\n%s\nwant\n%s", b, want)
	}
}
