package config

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"

	"github.com/caio-licensing/caio-licensing/shared/awssecret"
	"github.com/caio-licensing/caio-licensing/shared/httpapi"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/servercert"
)

// Where the API's server key comes from.
const (
	EnvServerKey    = "CAIO_SERVER_KEY"     // base64, for serve and local runs
	EnvServerKeyARN = "CAIO_SERVER_KEY_ARN" // Secrets Manager, for the activate function
)

// DefaultServerKeyFile is where serve keeps the server key it certified
// itself (make run): ~/.caio/server_key.
func DefaultServerKeyFile() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".caio", "server_key")
}

// ServerKeyFromEnv reads CAIO_SERVER_KEY, else the secret named by
// CAIO_SERVER_KEY_ARN; nil when neither is set.
func ServerKeyFromEnv(ctx context.Context) (ed25519.PrivateKey, error) {
	v := os.Getenv(EnvServerKey)
	if v == "" {
		arn := os.Getenv(EnvServerKeyARN)
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
		return nil, licensing.Errorf(licensing.CodeConfig, "the server key (%s or %s) is not usable: %v", EnvServerKey, EnvServerKeyARN, err)
	}
	return key, nil
}

// ServerKeyFromFile reads a server key file (0600, written by
// certify-server-key --output).
func ServerKeyFromFile(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
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
	cert, err := svc.ServerCertificate(ctx, key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	return &httpapi.Signer{Key: key, Certificate: cert.Certificate}, nil
}
