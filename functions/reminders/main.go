// Command reminders is the reminders operator function: daily, the renewal reminders due, then maintenance
// (archives history older than CAIO_EVENT_RETENTION_DAYS); every few minutes, the database's snapshot.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/caio-licensing/caio-licensing/shared/config"
	"github.com/caio-licensing/caio-licensing/shared/delivery"
	"github.com/caio-licensing/caio-licensing/shared/lambdaevent"
	"github.com/caio-licensing/caio-licensing/shared/operator"
	"github.com/caio-licensing/caio-licensing/shared/wiring"
	"github.com/caio-licensing/caio-licensing/shared/wiring/mailwiring"
)

func main() {
	fn, err := wiring.LoadFunction(context.Background(), config.OS(), "reminders", wiring.Needs{Mailer: mailwiring.Mailer, Snapshots: true})
	if err != nil {
		wiring.Fatal("reminders", err)
	}
	retention, err := fn.Env.RetentionDays(0, false)
	if err != nil {
		wiring.Fatal("reminders", err)
	}
	h := operator.New(fn.Service, fn.ReminderDays, delivery.New(fn.Service, fn.Mailer, fn.Log)).WithSnapshots(fn.Snapshot).
		WithMaintenance(func(ctx context.Context) (any, error) { return wiring.Maintain(ctx, fn.Service, fn.Store, retention) })
	lambda.StartHandler(lambdaevent.Operator("reminders", fn.Log, h.Reminders, lambdaevent.EventBridge, lambdaevent.Scheduler))
}
