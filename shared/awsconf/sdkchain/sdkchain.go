// Package sdkchain is the AWS SDK's full configuration chain (environment,
// shared config and credentials files, AWS_PROFILE, SSO, web identity,
// instance roles), for the CLI: operators' machines keep their credentials
// in profiles. Functions do not link it (see package awsconf).
package sdkchain

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// Load is awsconf.Loader on the SDK's default chain.
func Load(ctx context.Context) (aws.Config, error) { return config.LoadDefaultConfig(ctx) }
