package main_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// The seat timeout: set on generate-license, distribute-license and
// update-license; shown by the commands that print a license, in text and
// JSON; refused outside a minute to the lease, with the flag named.
func TestSeatTimeoutFlags(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.env["CAIO_LICENSE_SECRET"] = testSecret
	c.ok("add-customer", "CUST-001", "Acme", "--email", "ops@example.test")

	r := c.ok("generate-license", "CUST-001", "standard", "--lease-hours", "2", "--seat-timeout-minutes", "30")
	if !strings.Contains(r.stdout, "seat timeout") || !strings.Contains(r.stdout, "30m0s") {
		t.Fatalf("generate-license does not show the seat timeout:\n%s", r.stdout)
	}
	key := r.lastLine()
	if r := c.ok("show-license", key); !strings.Contains(r.stdout, "seat timeout") || !strings.Contains(r.stdout, "30m0s") {
		t.Fatalf("show-license:\n%s", r.stdout)
	}
	var lic map[string]any
	json.Unmarshal([]byte(c.ok("--json", "show-license", key).stdout), &lic)
	if lic["seat_timeout_seconds"] != float64(1800) || lic["seat_timeout_is_default"] != false {
		t.Fatalf("show-license --json: %v", lic)
	}

	// Without the flag: the lease, and said so.
	plain := c.ok("generate-license", "CUST-001", "standard")
	if !strings.Contains(plain.stdout, "72h0m0s (the lease)") {
		t.Fatalf("default seat timeout:\n%s", plain.stdout)
	}
	var lics []map[string]any
	json.Unmarshal([]byte(c.ok("--json", "list-licenses").stdout), &lics)
	if len(lics) != 2 || lics[0]["seat_timeout_seconds"] != float64(1800) || lics[1]["seat_timeout_seconds"] != float64(259200) ||
		lics[1]["seat_timeout_is_default"] != true {
		t.Fatalf("list-licenses --json: %v", lics)
	}
	json.Unmarshal([]byte(c.ok("export-licenses", "--format", "json").stdout), &lics)
	if len(lics) != 2 || lics[0]["seat_timeout_seconds"] != float64(1800) || lics[0]["license_key"] == nil {
		t.Fatalf("export-licenses --format json: %v", lics)
	}

	// Longer than the lease: refused, the flag named, nothing issued.
	c.fails(2, "BAD_REQUEST", "seat-timeout-minutes", "generate-license", "CUST-001", "standard", "--lease-minutes", "10", "--seat-timeout-minutes", "11")
	c.fails(2, "BAD_REQUEST", "seat-timeout-minutes", "generate-license", "CUST-001", "standard", "--seat-timeout-minutes", "x")
	c.ok("distribute-license", "CUST-001", "it@acme.example", "standard", "--lease-minutes", "10", "--seat-timeout-minutes", "10")

	// update-license: a lease shorter than the timeout is refused, not
	// clamped; both together, or back to the lease with 0.
	c.fails(2, "BAD_REQUEST", "seat-timeout-minutes", "update-license", key, "--lease-hours", "1", "--seat-timeout-minutes", "61")
	c.fails(2, "BAD_REQUEST", "the lease's 120 minutes", "update-license", key, "--seat-timeout-minutes", "121")
	c.ok("update-license", key, "--seat-timeout-minutes", "90")
	c.fails(2, "BAD_REQUEST", "shorter than the license's seat timeout", "update-license", key, "--lease-hours", "1")
	json.Unmarshal([]byte(c.ok("--json", "update-license", key, "--seat-timeout-minutes", "10").stdout), &lic)
	if l, _ := lic["license"].(map[string]any); l["seat_timeout_seconds"] != float64(600) {
		t.Fatalf("update-license --seat-timeout-minutes 10: %v", lic)
	}
	r = c.ok("update-license", key, "--seat-timeout-minutes", "0")
	if !strings.Contains(r.stdout, "2h0m0s (the lease)") {
		t.Fatalf("update-license --seat-timeout-minutes 0:\n%s", r.stdout)
	}
	if r := c.ok("--json", "list-events", "--kind", "license.updated").stdout; !strings.Contains(r, "seat timeout 10m0s") {
		t.Fatalf("the change is not in the event log:\n%s", r)
	}
}
