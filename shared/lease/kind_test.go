package lease

import (
	"encoding/json"
	"testing"
)

func TestKindJSONIsAWord(t *testing.T) {
	b, _ := json.Marshal(struct{ K Kind }{Offline})
	if string(b) != `{"K":"offline"}` {
		t.Fatalf("marshal: %s", b)
	}
	for in, want := range map[string]Kind{`"online"`: Online, `"offline"`: Offline, `0`: Online, `1`: Offline} {
		var k Kind
		if err := json.Unmarshal([]byte(in), &k); err != nil || k != want {
			t.Errorf("unmarshal %s: %v %v", in, k, err)
		}
	}
	for _, bad := range []string{`"sideways"`, `7`, `"1"`} {
		var k Kind
		if err := json.Unmarshal([]byte(bad), &k); err == nil {
			t.Errorf("unmarshal %s: no error", bad)
		}
	}
}
