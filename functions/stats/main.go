// Command stats is the stats operator function: read-only counts of the
// licenses, and ({"report": true}) the operator report written to the
// bucket with a link to it.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/caio-licensing/caio-licensing/shared/config"
	"github.com/caio-licensing/caio-licensing/shared/delivery"
	"github.com/caio-licensing/caio-licensing/shared/lambdaevent"
	"github.com/caio-licensing/caio-licensing/shared/operator"
	"github.com/caio-licensing/caio-licensing/shared/reportstore"
	"github.com/caio-licensing/caio-licensing/shared/wiring"
)

func main() {
	fn, err := wiring.LoadFunction(context.Background(), config.OS(), "stats", wiring.Needs{})
	if err != nil {
		wiring.Fatal("stats", err)
	}
	h := operator.New(fn.Service, fn.ReminderDays, delivery.New(fn.Service, fn.Mailer, fn.Log))
	if p, ok := fn.Store.(reportstore.Publisher); ok { // a database in S3
		h.WithReports(reportstore.New(p))
	}
	lambda.StartHandler(lambdaevent.Operator("stats", fn.Log, h.Stats))
}
