package wiring

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/caio-licensing/caio-licensing/shared/atomicfile"
	"github.com/caio-licensing/caio-licensing/shared/awssecret"
	"github.com/caio-licensing/caio-licensing/shared/config"
	"github.com/caio-licensing/caio-licensing/shared/httpapi"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/servercert"
)

// ServerKeyFromEnv reads CAIO_SERVER_KEY, else the secret named by
// CAIO_SERVER_KEY_ARN; nil when neither is set.
func ServerKeyFromEnv(ctx context.Context, env config.Env) (ed25519.PrivateKey, error) {
	v, arn := env.ServerKey()
	if v == "" {
		if arn == "" {
			return nil, nil
		}
		s, err := awssecret.Fetch(ctx, arn)
		if err != nil {
			return nil, licensing.Wrap(licensing.CodeConfig, err, "cannot read the server key from Secrets Manager: %v", err)
		}
		v = s
	}
	key, err := servercert.ParsePrivateKey(v)
	if err != nil {
		return nil, licensing.Errorf(licensing.CodeConfig, "the server key (%s or %s) is not usable: %v", config.EnvServerKey, config.EnvServerKeyARN, err)
	}
	return key, nil
}

// ServerKeyFromFile reads a server key file (0600, written by
// certify-server-key --output). Like ssh with its keys, it refuses a file
// that group or others can read: another local user could have copied it,
// and would sign answers as this server until its certificate ends.
func ServerKeyFromFile(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, licensing.Wrap(licensing.CodeConfig, err, "cannot read the server key file %s: %v", path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, licensing.Wrap(licensing.CodeConfig, err, "cannot read the server key file %s: %v", path, err)
	}
	if !info.Mode().IsRegular() {
		return nil, licensing.Errorf(licensing.CodeConfig, "the server key file %s is not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, licensing.Errorf(licensing.CodeConfig, "the server key file %s can be read by group or others (mode %04o): run 'chmod 600 %s', and rotate the key (manage-licenses rotate-server-key) if others could have copied it", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, licensing.Wrap(licensing.CodeConfig, err, "cannot read the server key file %s: %v", path, err)
	}
	key, err := servercert.ParsePrivateKey(string(b))
	if err != nil {
		return nil, licensing.Errorf(licensing.CodeConfig, "server key file %s: %v", path, err)
	}
	return key, nil
}

// Signer pairs a server key with its certificate from the database.
func Signer(ctx context.Context, svc *licensing.Service, key ed25519.PrivateKey) (*httpapi.Signer, error) {
	return signerAsKeyArrives(ctx, svc, func() (ed25519.PrivateKey, error) { return key, nil })
}

// signerAsKeyArrives is Signer for a key still on its way: the database is
// read (a database in S3 loaded) first, and key waited for within that
// read (licensing.Service.ServerCertificateOf), so that a cold start waits
// for the longer of the two, not for both. key may be called more than
// once and must give the same answer.
func signerAsKeyArrives(ctx context.Context, svc *licensing.Service, key func() (ed25519.PrivateKey, error)) (*httpapi.Signer, error) {
	var k ed25519.PrivateKey
	cert, err := svc.ServerCertificateOf(ctx, func() (ed25519.PublicKey, error) {
		var err error
		if k, err = key(); err != nil {
			return nil, err
		}
		return k.Public().(ed25519.PublicKey), nil
	})
	if err != nil {
		return nil, err
	}
	return &httpapi.Signer{Key: k, Certificate: cert.Certificate, NotAfter: cert.NotAfter}, nil
}

// ServerKeyFile keeps the server key in a file of mode 0600 (serve).
type ServerKeyFile string

// Load implements licensing.ServerKeyStore.
func (f ServerKeyFile) Load(context.Context) (string, error) {
	b, err := os.ReadFile(string(f))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	return string(b), err
}

// Save implements licensing.ServerKeyStore.
func (f ServerKeyFile) Save(_ context.Context, encoded string) error {
	return WritePrivateFile(string(f), encoded+"\n")
}

// WritePrivateFile writes a secret file (a server key, an offline lease):
// mode 0600, its directory 0700, atomically, never through a symlink.
func WritePrivateFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return licensing.Wrap(licensing.CodeConfig, err, "cannot create the directory of %s: %v", path, err)
	}
	if err := atomicfile.Write(path, []byte(content), 0o600); err != nil {
		return licensing.Wrap(licensing.CodeConfig, err, "cannot write %s: %v", path, err)
	}
	return nil
}

func (f ServerKeyFile) String() string { return "the server key file " + string(f) }

// ServerKeySecret keeps the server key in a Secrets Manager secret (the
// stack's ServerKeySecretArn, which the activate function reads).
type ServerKeySecret string

// Load implements licensing.ServerKeyStore.
func (s ServerKeySecret) Load(ctx context.Context) (string, error) {
	v, err := awssecret.Fetch(ctx, string(s))
	if errors.Is(err, awssecret.ErrNoValue) {
		return "", nil
	}
	return v, err
}

// Save implements licensing.ServerKeyStore.
func (s ServerKeySecret) Save(ctx context.Context, encoded string) error {
	return awssecret.Put(ctx, string(s), encoded)
}

func (s ServerKeySecret) String() string { return "the secret " + string(s) }
