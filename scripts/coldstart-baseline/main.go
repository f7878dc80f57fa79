// Command coldstart-baseline is the smallest Go Lambda function, built like
// ours: `make bench` compares the activate function's cold start with it.
package main

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(_ context.Context, in json.RawMessage) (json.RawMessage, error) { return in, nil })
}
