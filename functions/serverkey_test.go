package functions_test

import (
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"

	"github.com/caio-licensing/caio-licensing/shared/awssecret/smtest"
	"github.com/caio-licensing/caio-licensing/shared/httpapi/apitest"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/servercert"
)

// The generate function's daily {"renew_server_key": true}, under the
// emulator with Secrets Manager (kumo): a server key whose certificate is
// past its renewal point is replaced in the secret and retired; a current
// one is kept; the value is never in the output or the logs.
func TestGenerateRenewsTheServerKey(t *testing.T) {
	f := apitest.NewFixture(t, t.TempDir())
	sm := smtest.Start(t)
	arn := sm.Create(t, "caio/server-key", f.ExpiredServerKey)
	env := map[string]string{"CAIO_LICENSE_DB_PATH": f.Path, "CAIO_LICENSE_SECRET": apitest.Secret, "CAIO_SERVER_KEY_ARN": arn}
	for k, v := range sm.Env() {
		env[k] = v
	}
	e := startEmulator(t, bootstrap(t, "generate"), env)
	type renewal struct {
		Certificate struct {
			KeyID string `json:"key_id"`
		} `json:"certificate"`
		Renewed bool   `json:"renewed"`
		Retired string `json:"retired"`
	}
	old, _ := servercert.ParsePrivateKey(f.ExpiredServerKey)
	var first renewal
	e.invokeJSON(t, []byte(`{"renew_server_key": true}`), &first)
	stored := sm.Value(t, arn)
	key, err := servercert.ParsePrivateKey(stored)
	if err != nil || !first.Renewed || first.Retired != licensekey.KeyID(old.Public().(ed25519.PublicKey)) {
		t.Fatalf("renewal: %+v (stored key parses: %v)", first, err)
	}
	if got := licensekey.KeyID(key.Public().(ed25519.PublicKey)); got != first.Certificate.KeyID {
		t.Fatalf("the secret holds key %s, the certificate is for %s", got, first.Certificate.KeyID)
	}
	var second renewal
	e.invokeJSON(t, []byte(`{"renew_server_key": true}`), &second)
	if second.Renewed || second.Certificate.KeyID != first.Certificate.KeyID || sm.Value(t, arn) != stored {
		t.Fatalf("a current key was replaced: %+v", second)
	}
	out, _ := json.Marshal([]renewal{first, second})
	for _, secret := range []string{stored, f.ExpiredServerKey, apitest.Secret} {
		if strings.Contains(e.logs.String()+string(out), secret) {
			t.Fatal("a key or secret reached the output or the logs")
		}
	}
}
