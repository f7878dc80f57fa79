// Package smtest runs a real Secrets Manager emulator for tests (kumo,
// built by `make test-tools` with its Secrets Manager service alone) and
// puts secrets in it through the AWS SDK.
package smtest

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/caio-licensing/caio-licensing/shared/testtools"
)

// Server is a running Secrets Manager emulator.
type Server struct {
	URL    string
	client *secretsmanager.Client
}

// Start runs the emulator on loopback until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := testtools.Path(t, "kumo-secretsmanager")
	addr := testtools.FreeAddr(t)
	host, port, _ := strings.Cut(addr, ":")
	if _, err := strconv.Atoi(port); err != nil {
		t.Fatal(err)
	}
	testtools.Start(t, exec.Command(bin, "-host", host, "-port", port), addr)
	s := &Server{URL: "http://" + addr}
	s.client = secretsmanager.New(secretsmanager.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	return s
}

// Env is what a client (the CLI, a function) needs to reach the emulator.
// Metadata-service lookups are off so a test never leaves loopback.
func (s *Server) Env() map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": s.URL,
		"AWS_ACCESS_KEY_ID":                "test",
		"AWS_SECRET_ACCESS_KEY":            "test",
		"AWS_REGION":                       "us-east-1",
		"AWS_EC2_METADATA_DISABLED":        "true",
	}
}

// Create makes a secret named name and returns its ARN. An empty value
// makes a secret with no value yet, as the stack creates the server key's.
func (s *Server) Create(t testing.TB, name, value string) string {
	t.Helper()
	in := &secretsmanager.CreateSecretInput{Name: aws.String(name)}
	if value != "" {
		in.SecretString = aws.String(value)
	}
	out, err := s.client.CreateSecret(context.Background(), in)
	if err != nil {
		t.Fatalf("creating secret %s: %v", name, err)
	}
	return aws.ToString(out.ARN)
}

// Value returns the secret's current value ("" when it has none).
func (s *Server) Value(t testing.TB, id string) string {
	t.Helper()
	out, err := s.client.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		if strings.Contains(err.Error(), "ResourceNotFoundException") {
			return ""
		}
		t.Fatalf("reading secret %s: %v", id, err)
	}
	return aws.ToString(out.SecretString)
}
