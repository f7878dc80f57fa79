// Package sdkchain is the AWS SDK's full configuration chain (environment,
// shared config and credentials files, AWS_PROFILE, SSO, web identity,
// instance roles), for the CLI: operators' machines keep their credentials
// in profiles. Functions do not link it (see package awsconf).
package sdkchain

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go/logging"
)

// Load is awsconf.Loader on the SDK's default chain. The chain's own
// clients (instance metadata, SSO, STS) log nothing: their warnings, such
// as instance metadata's fallback to IMDSv1, would be lines on the CLI's
// stderr, where an error is one line (one JSON object under --json).
func Load(ctx context.Context) (aws.Config, error) {
	return config.LoadDefaultConfig(ctx, config.WithLogger(logging.Nop{}))
}
