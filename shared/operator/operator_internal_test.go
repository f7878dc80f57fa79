package operator

import (
	"encoding/json"
	"testing"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// The functions take seat_timeout_minutes as they take lease_minutes; a
// value too large to be any lease is not multiplied into a valid one.
func TestGenerateInputSeatTimeout(t *testing.T) {
	for input, want := range map[string]int64{
		`{"customer_id":"C","tier":"t","lease_minutes":3,"seat_timeout_minutes":1}`: 60,
		`{"customer_id":"C","tier":"t"}`:                                            0,
		`{"customer_id":"C","tier":"t","seat_timeout_minutes":0}`:                   0,
		`{"customer_id":"C","tier":"t","seat_timeout_minutes":153722867280912931}`:  (licensing.MaxDays*24*60 + 1) * 60,
	} {
		var in GenerateInput
		if err := decode(json.RawMessage(input), &in); err != nil {
			t.Fatal(err)
		}
		if got := in.request().SeatTimeoutSeconds; got != want {
			t.Errorf("%s: seat timeout %d s, want %d", input, got, want)
		}
	}
}
