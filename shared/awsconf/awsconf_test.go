package awsconf_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/caio-licensing/caio-licensing/shared/awsconf"
)

func clearAWS(t *testing.T) {
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"} {
		t.Setenv(k, "")
	}
}

// What Lambda sets is all a function reads: the region and the role's
// temporary credentials, session token included.
func TestFromEnvironmentReadsWhatLambdaSets(t *testing.T) {
	clearAWS(t)
	t.Setenv("AWS_REGION", "eu-west-3")
	t.Setenv("AWS_DEFAULT_REGION", "us-west-2")
	t.Setenv("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_SESSION_TOKEN", "token")
	cfg, err := awsconf.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "eu-west-3" || creds.AccessKeyID != "ASIAEXAMPLE" || creds.SecretAccessKey != "secret" || creds.SessionToken != "token" {
		t.Fatalf("region %q, credentials %+v", cfg.Region, creds)
	}
	t.Setenv("AWS_REGION", "")
	if cfg, _ := awsconf.Load(context.Background()); cfg.Region != "us-west-2" {
		t.Fatalf("AWS_DEFAULT_REGION: region %q", cfg.Region)
	}
}

// No credentials is an error that says what to set, met when a client
// first needs them; with no region, requests are signed for us-east-1.
func TestFromEnvironmentWithoutCredentials(t *testing.T) {
	clearAWS(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "only-the-id")
	cfg, err := awsconf.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != awsconf.DefaultRegion {
		t.Errorf("region %q", cfg.Region)
	}
	_, err = cfg.Credentials.Retrieve(context.Background())
	if !errors.Is(err, awsconf.ErrNoCredentials) {
		t.Fatalf("got %v", err)
	}
}

// A service's own endpoint variable wins over the general one, as in the
// SDK's shared configuration.
func TestEndpoint(t *testing.T) {
	clearAWS(t)
	if got := awsconf.Endpoint("S3"); got != "" {
		t.Fatalf("no variable: %q", got)
	}
	t.Setenv("AWS_ENDPOINT_URL", "http://all.test")
	if got := awsconf.Endpoint("S3"); got != "http://all.test" {
		t.Fatalf("AWS_ENDPOINT_URL: %q", got)
	}
	t.Setenv("AWS_ENDPOINT_URL_S3", "http://s3.test")
	if got := awsconf.Endpoint("S3"); got != "http://s3.test" {
		t.Fatalf("AWS_ENDPOINT_URL_S3: %q", got)
	}
	if got := awsconf.Endpoint("SESV2"); got != "http://all.test" {
		t.Fatalf("another service: %q", got)
	}
}

// Use installs another loader (the CLI's: the SDK's whole chain); Load
// still fills in the region.
func TestUse(t *testing.T) {
	clearAWS(t)
	defer awsconf.Use(awsconf.FromEnvironment)
	called := false
	awsconf.Use(func(context.Context) (aws.Config, error) {
		called = true
		return aws.Config{Credentials: aws.AnonymousCredentials{}}, nil
	})
	cfg, err := awsconf.Load(context.Background())
	if err != nil || !called || cfg.Region != awsconf.DefaultRegion {
		t.Fatalf("called %v, region %q, err %v", called, cfg.Region, err)
	}
	awsconf.Use(func(context.Context) (aws.Config, error) { return aws.Config{}, errors.New("broken profile") })
	if _, err := awsconf.Load(context.Background()); err == nil || err.Error() != "broken profile" {
		t.Fatalf("got %v", err)
	}
}

// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true sends every client to AWS, as
// the SDK's own resolution does (the CLI's chain honours it for the
// clients it builds): an endpoint variable left in the environment is then
// not where the database, the secrets or the mail go.
func TestEndpointIgnoredAsTheSDKIgnoresIt(t *testing.T) {
	clearAWS(t)
	t.Setenv("AWS_ENDPOINT_URL", "http://all.test")
	t.Setenv("AWS_ENDPOINT_URL_S3", "http://s3.test")
	t.Setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
	for _, service := range []string{"S3", "SECRETS_MANAGER", "SESV2"} {
		if got := awsconf.Endpoint(service); got != "" {
			t.Errorf("%s: %q, want AWS", service, got)
		}
	}
	t.Setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "false")
	if got := awsconf.Endpoint("S3"); got != "http://s3.test" {
		t.Fatalf("not ignored: %q", got)
	}
}
