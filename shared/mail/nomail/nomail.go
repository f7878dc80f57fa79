// Package nomail is the provider for "no email configured": it sends
// nothing, so that delivery is reported as skipped.
package nomail

import (
	"context"

	"github.com/caio-licensing/caio-licensing/shared/mail"
)

// Sender sends nothing.
type Sender struct{}

var _ mail.Sender = Sender{}

// Name implements mail.Sender.
func (Sender) Name() string { return mail.NoProvider }

// Send implements mail.Sender: it always answers mail.ErrNotConfigured.
func (Sender) Send(context.Context, mail.Message) (mail.Receipt, error) {
	return mail.Receipt{}, mail.ErrNotConfigured
}
