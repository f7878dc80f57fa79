package main

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/caio-licensing/caio-licensing/shared/atomicfile"
	"github.com/caio-licensing/caio-licensing/shared/config"
	"github.com/caio-licensing/caio-licensing/shared/licensekey"
	"github.com/caio-licensing/caio-licensing/shared/wiring"
)

// TrustedKeys remembers, per database, the public keys that the signing
// secret has proven on this machine (~/.caio/trusted_keys.json, 0600), the
// way ssh remembers host keys. A later command without the secret verifies
// license keys with them rather than with whatever the database file says:
// a key planted in the database is not in this file.
type TrustedKeys struct {
	path string
}

type trustedKeysFile struct {
	Databases map[string][]string `json:"databases"` // location → base64 public keys
}

// openTrustedKeys returns the current user's trusted-keys file; nil when
// the user has no home directory.
func openTrustedKeys(env config.Env) *TrustedKeys {
	home, err := env.Home()
	if err != nil {
		return nil
	}
	return &TrustedKeys{path: filepath.Join(home, ".caio", "trusted_keys.json")}
}

func (t *TrustedKeys) read() trustedKeysFile {
	f := trustedKeysFile{Databases: map[string][]string{}}
	info, err := os.Lstat(t.path)
	// Only a private regular file of this user's is believed.
	if err != nil || !info.Mode().IsRegular() || info.Mode().Perm()&0o077 != 0 || !ownedByMe(info) {
		return f
	}
	b, err := os.ReadFile(t.path)
	if err == nil {
		json.Unmarshal(b, &f)
	}
	if f.Databases == nil {
		f.Databases = map[string][]string{}
	}
	return f
}

// Keys returns the keys proven for the database at location; nil if none.
func (t *TrustedKeys) Keys(location string) licensekey.PublicKeys {
	if t == nil {
		return nil
	}
	var keys licensekey.PublicKeys
	for _, s := range t.read().Databases[location] {
		if k, err := licensekey.ParsePublicKeys(s); err == nil {
			if keys == nil {
				keys = licensekey.PublicKeys{}
			}
			for _, pub := range k {
				keys.Add(pub)
			}
		}
	}
	return keys
}

// Remember records keys as proven for location. Failing to write is not an
// error: the file is a convenience, never the only proof.
func (t *TrustedKeys) Remember(location string, keys []ed25519.PublicKey) {
	if t == nil || len(keys) == 0 {
		return
	}
	f := t.read()
	known := f.Databases[location]
	changed := false
	for _, k := range keys {
		s := licensekey.FormatPublicKey(k)
		if !slices.Contains(known, s) {
			known = append(known, s)
			changed = true
		}
	}
	if !changed {
		return
	}
	f.Databases[location] = known
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(t.path), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return
	}
	atomicfile.Write(t.path, b, 0o600)
}

func ownedByMe(info fs.FileInfo) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	return !ok || int(st.Uid) == os.Getuid()
}

// recordOnly remembers what the secret proves but recalls nothing: for a
// service that must prove with the secret itself (serve's start).
type recordOnly struct{ *TrustedKeys }

func (recordOnly) Keys(string) licensekey.PublicKeys { return nil }

// keyMemory is the trusted-keys file as a service's memory of proven keys
// (write-only: it records but recalls nothing); none without a home.
func (a *app) keyMemory(writeOnly bool) wiring.KeyMemory {
	t := openTrustedKeys(a.env)
	switch {
	case t == nil:
		return nil
	case writeOnly:
		return recordOnly{t}
	}
	return t
}
