// Package awsconf gives the AWS SDK's clients their configuration.
//
// A function needs little of it: Lambda (and sam local invoke) hands it a
// region and its role's credentials in the environment. The SDK's full
// chain (shared config files, profiles, SSO, web identity, instance
// metadata) is for operators' machines, and linking it costs every cold
// start the initialisation of the STS, SSO, SSO-OIDC and sign-in clients
// it brings (3.4 ms of the 10 ms the activate function spent initialising
// its packages, measured here). So the default is FromEnvironment, and the CLI,
// which runs where profiles live, installs the full chain with Use
// (package sdkchain) before it builds any client.
package awsconf

import (
	"context"
	"errors"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go/logging"
)

// Loader loads an AWS configuration.
type Loader func(context.Context) (aws.Config, error)

var loader Loader = FromEnvironment

// Use makes l the loader of every client this process builds. A main calls
// it first, before any client exists; it is not safe alongside Load.
func Use(l Loader) { loader = l }

// DefaultRegion signs requests when no region is configured: S3-compatible
// servers ignore it, and AWS needs one.
const DefaultRegion = "us-east-1"

// Load returns the configuration for a client: the installed loader's,
// with a region always set and the SDK's own log lines silenced (they
// would land in the CLI's output and the functions' JSON logs).
func Load(ctx context.Context) (aws.Config, error) {
	cfg, err := loader(ctx)
	if err != nil {
		return aws.Config{}, err
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	cfg.Logger = logging.Nop{}
	return cfg, nil
}

// ErrNoCredentials: the environment holds no AWS credentials.
var ErrNoCredentials = errors.New("no AWS credentials in the environment: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (Lambda sets them from the function's role)")

// FromEnvironment is the configuration Lambda (and sam local invoke)
// gives a function: the region in AWS_REGION (or AWS_DEFAULT_REGION), and
// its role's credentials in AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN.
func FromEnvironment(context.Context) (aws.Config, error) {
	cfg := aws.Config{Region: firstSet("AWS_REGION", "AWS_DEFAULT_REGION")}
	id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if id != "" && secret != "" {
		cfg.Credentials = credentials.NewStaticCredentialsProvider(id, secret, os.Getenv("AWS_SESSION_TOKEN"))
	} else {
		cfg.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{}, ErrNoCredentials
		})
	}
	return cfg, nil
}

// Endpoint is where a client of service sends its requests instead of AWS,
// as the SDK's shared configuration reads it from the environment:
// AWS_ENDPOINT_URL_<SERVICE> (service as the variable spells it: "S3",
// "SESV2", "SECRETS_MANAGER"), else AWS_ENDPOINT_URL; "" for AWS. Clients
// set it themselves, so that it holds whichever loader is installed.
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true sends them to AWS, as it does
// the SDK's clients.
func Endpoint(service string) string {
	v, _ := EndpointFrom(service)
	return v
}

// EndpointFrom is Endpoint and the variable it came from, for messages
// that must name what to fix.
func EndpointFrom(service string) (value, variable string) {
	if strings.EqualFold(os.Getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"), "true") {
		return "", ""
	}
	for _, n := range []string{"AWS_ENDPOINT_URL_" + service, "AWS_ENDPOINT_URL"} {
		if v := os.Getenv(n); v != "" {
			return v, n
		}
	}
	return "", ""
}

func firstSet(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// CredentialsInUse names where the SDK took the credentials from, as far
// as the environment tells: what to check when they are rejected.
func CredentialsInUse() string {
	switch {
	case os.Getenv("AWS_ACCESS_KEY_ID") != "" && os.Getenv("AWS_SESSION_TOKEN") != "":
		return "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (temporary credentials expire)"
	case os.Getenv("AWS_ACCESS_KEY_ID") != "":
		return "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
	case os.Getenv("AWS_PROFILE") != "":
		return "the profile AWS_PROFILE names (" + os.Getenv("AWS_PROFILE") + ") in the shared credentials and config files"
	}
	return "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, the default profile, or the role this runs with"
}
