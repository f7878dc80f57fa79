// Command activate is the Lambda function behind the activation API. It
// verifies keys with the public key only, and signs its answers with the
// certified server key: it cannot mint license keys.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/caio-licensing/caio-licensing/shared/config"
	"github.com/caio-licensing/caio-licensing/shared/httpapi"
	"github.com/caio-licensing/caio-licensing/shared/lambdaevent"
	"github.com/caio-licensing/caio-licensing/shared/wiring"
)

func main() {
	fn, err := wiring.LoadFunction(context.Background(), config.OS(), "activate", wiring.Needs{PublicKey: true, ServerKey: true})
	if err != nil {
		wiring.Fatal("activate", err)
	}
	api := httpapi.New(fn.Service, fn.Log, fn.Signer)
	api.SetMetrics(fn.Metrics)
	lambda.StartHandler(lambdaevent.HTTP(api, fn.Log))
}
