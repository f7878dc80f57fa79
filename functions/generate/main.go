// Command generate is the generate operator function: it mints license
// keys, and renews the API's server key on a daily schedule.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/caio-licensing/caio-licensing/shared/config"
	"github.com/caio-licensing/caio-licensing/shared/delivery"
	"github.com/caio-licensing/caio-licensing/shared/lambdaevent"
	"github.com/caio-licensing/caio-licensing/shared/operator"
	"github.com/caio-licensing/caio-licensing/shared/secretstrength"
	"github.com/caio-licensing/caio-licensing/shared/wiring"
)

func main() {
	fn, err := wiring.LoadFunction(context.Background(), config.OS(), "generate", wiring.Needs{SecretPolicy: secretstrength.Check, Secret: true})
	if err != nil {
		wiring.Fatal("generate", err)
	}
	h := operator.New(fn.Service, fn.ReminderDays, delivery.New(fn.Service, fn.Mailer, fn.Log))
	if _, arn := fn.Env.ServerKey(); arn != "" {
		h.WithServerKeyRenewal(wiring.ServerKeySecret(arn)) // the daily {"renew_server_key": true}
	}
	lambda.StartHandler(lambdaevent.Operator("generate", fn.Log, h.Generate))
}
