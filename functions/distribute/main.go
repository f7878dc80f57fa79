// Command distribute is the distribute operator function: it mints a license for a recipient.
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
	"github.com/caio-licensing/caio-licensing/shared/wiring/mailwiring"
)

func main() {
	fn, err := wiring.LoadFunction(context.Background(), config.OS(), "distribute", wiring.Needs{SecretPolicy: secretstrength.Check, Secret: true, Mailer: mailwiring.Mailer})
	if err != nil {
		wiring.Fatal("distribute", err)
	}
	h := operator.New(fn.Service, fn.ReminderDays, delivery.New(fn.Service, fn.Mailer, fn.Log))
	lambda.StartHandler(lambdaevent.Operator("distribute", fn.Log, h.Distribute))
}
