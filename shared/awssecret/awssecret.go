// Package awssecret reads and stores secrets in AWS Secrets Manager, so
// that a secret never sits in a function's environment variables or an
// operator's files.
package awssecret

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/caio-licensing/caio-licensing/shared/awsconf"
)

// ErrNoValue: the secret has no current value (or does not exist). A
// secret that CloudFormation created empty answers this until it is set.
var ErrNoValue = errors.New("not found, or no value set yet")

// Fetch returns the string value of the secret named by arn.
func Fetch(ctx context.Context, arn string) (string, error) {
	client, err := newClient(ctx)
	if err != nil {
		return "", err
	}
	out, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &arn})
	if err != nil {
		return "", describe("reading", arn, err)
	}
	if out.SecretString == nil || *out.SecretString == "" {
		return "", fmt.Errorf("secret %s has no string value", arn)
	}
	return *out.SecretString, nil
}

// Put stores value as the secret's new current version.
func Put(ctx context.Context, arn, value string) error {
	client, err := newClient(ctx)
	if err != nil {
		return err
	}
	_, err = client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: &arn, SecretString: &value})
	if err != nil {
		return describe("storing", arn, err)
	}
	return nil
}

func newClient(ctx context.Context) (*secretsmanager.Client, error) {
	cfg, err := awsconf.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	return secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
		if endpoint := awsconf.Endpoint("SECRETS_MANAGER"); endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), nil
}

// describe shortens the SDK's error to what an operator acts on; never the
// request or response bodies, which may hold the value.
func describe(verb, arn string, err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		if apiErr.ErrorCode() == "ResourceNotFoundException" {
			return fmt.Errorf("%s secret %s: %w (ResourceNotFoundException)", verb, arn, ErrNoValue)
		}
		return fmt.Errorf("%s secret %s: %s", verb, arn, apiErr.ErrorCode())
	}
	if errors.Is(err, awsconf.ErrNoCredentials) {
		return fmt.Errorf("%s secret %s: %w", verb, arn, awsconf.ErrNoCredentials)
	}
	// The SDK's chain for this is a paragraph about IMDS; say the fix.
	if strings.Contains(err.Error(), "get credentials:") {
		return fmt.Errorf("%s secret %s: no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", verb, arn)
	}
	return fmt.Errorf("%s secret %s: %w", verb, arn, err)
}
