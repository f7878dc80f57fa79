// Package sesmail sends email through Amazon SES (API v2).
package sesmail

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/aws/smithy-go"

	"github.com/caio-licensing/caio-licensing/shared/awsconf"
	"github.com/caio-licensing/caio-licensing/shared/mail"
)

// Sender sends through SES from a verified sender address.
type Sender struct {
	client *sesv2.Client
	from   string
}

var _ mail.Sender = (*Sender)(nil)

// New returns a sender from the verified address from, with the SDK's
// standard configuration (AWS_ENDPOINT_URL_SESV2 points it elsewhere).
func New(ctx context.Context, from string) (*Sender, error) {
	if err := mail.ValidateAddress(from); err != nil {
		return nil, fmt.Errorf("CAIO_SES_SENDER: %w", err)
	}
	cfg, err := awsconf.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	client := sesv2.NewFromConfig(cfg, func(o *sesv2.Options) {
		if endpoint := awsconf.Endpoint("SESV2"); endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	return &Sender{client: client, from: from}, nil
}

// Name implements mail.Sender.
func (s *Sender) Name() string { return "ses" }

// Send implements mail.Sender.
func (s *Sender) Send(ctx context.Context, m mail.Message) (mail.Receipt, error) {
	if err := m.Check(); err != nil {
		return mail.Receipt{}, err
	}
	out, err := s.client.SendEmail(ctx, &sesv2.SendEmailInput{
		FromEmailAddress: aws.String(s.from),
		Destination:      &types.Destination{ToAddresses: []string{m.To}},
		Content: &types.EmailContent{Simple: &types.Message{
			Subject: &types.Content{Data: aws.String(m.Subject), Charset: aws.String("UTF-8")},
			Body: &types.Body{
				Text: &types.Content{Data: aws.String(m.Text), Charset: aws.String("UTF-8")},
				Html: &types.Content{Data: aws.String(m.HTML), Charset: aws.String("UTF-8")},
			},
		}},
	})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			return mail.Receipt{}, fmt.Errorf("SES refused the message: %s: %s", ae.ErrorCode(), ae.ErrorMessage())
		}
		return mail.Receipt{}, fmt.Errorf("SES unreachable: %w", err)
	}
	return mail.Receipt{Provider: "ses", MessageID: aws.ToString(out.MessageId)}, nil
}
