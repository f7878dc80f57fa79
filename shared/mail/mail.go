// Package mail is the one small interface through which licenses and
// reminders are emailed, and the SES-to-SMTP fallback. The providers live
// in their own packages: sesmail, smtpmail and nomail.
package mail

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"
)

// Message is one email: a plain-text and an HTML part.
type Message struct {
	To      string
	Subject string
	Text    string
	HTML    string
}

// Receipt says how a message went out.
type Receipt struct {
	// Provider is the provider that accepted the message: ses, smtp.
	Provider string
	// MessageID is the provider's id for it.
	MessageID string
	// FallbackFrom names the provider that failed first, and why.
	FallbackFrom  string
	FallbackError string
}

// Sender sends messages.
type Sender interface {
	// Name is the provider's name as recorded: ses, smtp, none.
	Name() string
	Send(ctx context.Context, m Message) (Receipt, error)
}

// NoProvider is the name of the provider that sends nothing (package
// nomail): what is recorded when no email is configured.
const NoProvider = "none"

// ErrNotConfigured means no provider is configured: delivery is skipped
// (see package nomail).
var ErrNotConfigured = errors.New("no email provider is configured")

// Fallback sends through Primary and, when it fails, through Secondary.
type Fallback struct {
	Primary, Secondary Sender
}

// Name implements Sender.
func (f Fallback) Name() string { return f.Primary.Name() + "+" + f.Secondary.Name() }

// Send implements Sender.
func (f Fallback) Send(ctx context.Context, m Message) (Receipt, error) {
	r, err := f.Primary.Send(ctx, m)
	if err == nil {
		return r, nil
	}
	r2, err2 := f.Secondary.Send(ctx, m)
	if err2 != nil {
		return Receipt{}, fmt.Errorf("%s failed (%v), then %s failed (%w)", f.Primary.Name(), err, f.Secondary.Name(), err2)
	}
	r2.FallbackFrom, r2.FallbackError = f.Primary.Name(), err.Error()
	return r2, nil
}

// ValidateAddress accepts a bare address: no display name, no CR/LF.
func ValidateAddress(addr string) error {
	if addr == "" {
		return errors.New("email address is empty")
	}
	if len(addr) > 254 || strings.ContainsFunc(addr, unicode.IsControl) {
		return fmt.Errorf("email address %q is not valid (want name@example.com)", addr)
	}
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Address != addr || a.Name != "" {
		return fmt.Errorf("email address %q is not valid (want name@example.com)", addr)
	}
	return nil
}

// Check validates a message before any provider sees it.
func (m Message) Check() error {
	if err := ValidateAddress(m.To); err != nil {
		return err
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return errors.New("subject must be one line")
	}
	return nil
}
