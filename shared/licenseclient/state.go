package licenseclient

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/atomicfile"
	"github.com/caio-licensing/caio-licensing/shared/lease"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/servercert"
)

// state is what the client keeps between runs, one file per key and
// instance in StateDir (mode 0600). The lease is kept as its signed token
// with the certificate that vouches for it, and checked again on every
// load: a damaged or altered file is discarded, never trusted.
type state struct {
	LeaseToken  string `json:"lease,omitempty"`
	Certificate string `json:"certificate,omitempty"`
	// LatestSeen is the latest time seen: from the server, a lease, or
	// this clock. A clock that falls behind it was rolled back.
	LatestSeen time.Time `json:"latest_seen"`

	Lease    *lease.Lease `json:"-"`
	rollback *Result      // set when the local clock fell behind LatestSeen
}

func (st *state) seen(t time.Time) {
	if t.After(st.LatestSeen) {
		st.LatestSeen = t.UTC()
	}
}

func (c *Client) statePath(key, instance string) string {
	if c.cfg.StateDir == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(licensekey.Digest(key) + "\x00" + instance))
	return filepath.Join(c.cfg.StateDir, "caio-license-"+hex.EncodeToString(sum[:8])+".json")
}

// loadState reads and checks the state; anything that does not check is
// dropped (the time seen is kept only with a lease that verifies, or as
// the lease's own issue time). A lease must still verify as when it came:
// for this key and instance, within the key's life and its certificate's.
func (c *Client) loadState(s *session) *state {
	st := &state{}
	path := c.statePath(s.key, s.instance)
	if path == "" {
		return st
	}
	b, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(b, st) != nil {
		os.Remove(path)
		return &state{}
	}
	if st.LeaseToken == "" {
		return st
	}
	var cert *servercert.Certificate
	l, err := lease.Parse(st.LeaseToken)
	if err == nil && l.Kind == lease.Online {
		// The certificate's signature; its window bounds the lease below.
		var cc servercert.Certificate
		if cc, err = servercert.Verify(st.Certificate, c.cfg.PublicKeys, l.IssuedAt); err == nil {
			cert = &cc
		}
	}
	if err == nil {
		l, err = c.verifyLease(st.LeaseToken, cert, s)
	}
	if err != nil {
		os.Remove(path)
		return &state{}
	}
	st.Lease = &l
	st.seen(l.IssuedAt)
	return st
}

// saveState writes the state atomically, noting now as seen.
func (c *Client) saveState(key, instance string, st *state, now time.Time) {
	path := c.statePath(key, instance)
	if path == "" {
		return
	}
	st.seen(now)
	b, err := json.Marshal(st)
	if err != nil {
		return
	}
	if err := os.MkdirAll(c.cfg.StateDir, 0o700); err != nil {
		return
	}
	atomicfile.Write(path, b, 0o600)
}
