// Package operator holds the handlers of the operator functions (generate,
// distribute, stats, reminders): JSON input whose fields are the CLI's
// flags in snake_case, JSON output. They are not on the public API.
package operator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// Handlers serve the operator functions.
type Handlers struct {
	svc *licensing.Service
	// reminderDays are the default reminder thresholds (CAIO_REMINDER_DAYS).
	reminderDays []int
}

// New returns the handlers.
func New(svc *licensing.Service, reminderDays []int) *Handlers {
	return &Handlers{svc: svc, reminderDays: reminderDays}
}

// decode reads one JSON object strictly: a misspelt field is an error, not
// a silently applied default.
func decode(input json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(input))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr):
			return licensing.Errorf(licensing.CodeBadRequest, "field %s must be a %s", typeErr.Field, typeErr.Type)
		case errors.Is(err, io.EOF):
			return licensing.Errorf(licensing.CodeBadRequest, "input is empty: send a JSON object")
		}
		return licensing.Errorf(licensing.CodeBadRequest, "input is not valid: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return licensing.Errorf(licensing.CodeBadRequest, "input has data after the JSON object")
	}
	return nil
}

// GenerateInput is the generate function's input (and distribute's, with
// email and send_email). Absent limits take the CLI's defaults.
type GenerateInput struct {
	CustomerID        string   `json:"customer_id"`
	Tier              string   `json:"tier"`
	ExpiresDays       *int     `json:"expires_days"`
	Features          []string `json:"features"`
	MaxInstances      *int64   `json:"max_instances"`
	MaxServices       *int64   `json:"max_services"`
	MaxRequestsPerDay *int64   `json:"max_requests_per_day"`
	Email             string   `json:"email,omitempty"`
	SendEmail         bool     `json:"send_email,omitempty"`
}

func (in GenerateInput) request() licensing.GenerateRequest {
	r := licensing.GenerateRequest{
		CustomerID: in.CustomerID, Tier: in.Tier, Features: in.Features, Recipient: in.Email,
		ExpiresDays: licensing.DefaultExpiresDays, MaxInstances: licensing.DefaultMaxInstances,
		MaxServices: licensing.DefaultMaxServices, MaxRequestsPerDay: licensing.DefaultMaxRequestsPerDay,
	}
	if in.ExpiresDays != nil {
		r.ExpiresDays = *in.ExpiresDays
	}
	if in.MaxInstances != nil {
		r.MaxInstances = *in.MaxInstances
	}
	if in.MaxServices != nil {
		r.MaxServices = *in.MaxServices
	}
	if in.MaxRequestsPerDay != nil {
		r.MaxRequestsPerDay = *in.MaxRequestsPerDay
	}
	return r
}

// Generate mints a license.
func (h *Handlers) Generate(ctx context.Context, input json.RawMessage) (any, error) {
	var in GenerateInput
	if err := decode(input, &in); err != nil {
		return nil, err
	}
	if in.Email != "" || in.SendEmail {
		return nil, licensing.Errorf(licensing.CodeBadRequest, "email and send_email belong to the distribute function")
	}
	return h.svc.Generate(ctx, in.request())
}

// Delivery says what happened to the email of a distributed license.
type Delivery struct {
	Status string `json:"status"` // sent, skipped
	Detail string `json:"detail"`
}

// Distributed is the distribute function's result.
type Distributed struct {
	licensing.Issued
	Delivery Delivery `json:"delivery"`
}

// Distribute mints a license for a recipient.
func (h *Handlers) Distribute(ctx context.Context, input json.RawMessage) (any, error) {
	var in GenerateInput
	if err := decode(input, &in); err != nil {
		return nil, err
	}
	if in.Email == "" {
		return nil, licensing.Errorf(licensing.CodeBadRequest, "email is required: the address to distribute the license to")
	}
	if err := licensing.ValidateEmail(in.Email); err != nil {
		return nil, err
	}
	is, err := h.svc.Generate(ctx, in.request())
	if err != nil {
		return nil, err
	}
	out := Distributed{Issued: is, Delivery: Delivery{Status: "skipped", Detail: "send_email was not set"}}
	if in.SendEmail {
		out.Delivery.Detail = "email delivery is not configured in this build; the license was generated"
	}
	return out, nil
}

// StatsInput is the stats function's input.
type StatsInput struct {
	Days *int `json:"days"`
}

// Stats returns the CLI's stats object.
func (h *Handlers) Stats(ctx context.Context, input json.RawMessage) (any, error) {
	var in StatsInput
	if err := decode(input, &in); err != nil {
		return nil, err
	}
	days := licensing.DefaultExpiringDays
	if in.Days != nil {
		days = *in.Days
	}
	return h.svc.Stats(ctx, days)
}

// RemindersInput is the reminders function's input: the schedule's Input,
// or nothing for the defaults. days is a list of thresholds, or one number.
type RemindersInput struct {
	Days json.RawMessage `json:"days"`
}

// RemindersResult is what the reminders function found.
type RemindersResult struct {
	Thresholds []int                `json:"thresholds"`
	Found      int                  `json:"found"`
	Reminders  []licensing.Reminder `json:"reminders"`
}

// Reminders lists the licenses due a renewal reminder within the largest threshold.
func (h *Handlers) Reminders(ctx context.Context, input json.RawMessage) (any, error) {
	var in RemindersInput
	if err := decode(input, &in); err != nil {
		return nil, err
	}
	thresholds := h.reminderDays
	if len(in.Days) > 0 {
		var one int
		if err := json.Unmarshal(in.Days, &one); err == nil {
			thresholds = []int{one}
		} else if err := json.Unmarshal(in.Days, &thresholds); err != nil {
			return nil, licensing.Errorf(licensing.CodeBadRequest, "days must be a number or a list of numbers, such as [30, 7, 1]")
		}
	}
	if len(thresholds) == 0 {
		return nil, licensing.Errorf(licensing.CodeBadRequest, "days must list at least one threshold")
	}
	for _, d := range thresholds {
		if d <= 0 || d > licensing.MaxDays {
			return nil, licensing.Errorf(licensing.CodeBadRequest, "days must be between 1 and %d (got %d)", licensing.MaxDays, d)
		}
	}
	rs, err := h.svc.RenewalReminders(ctx, slices.Max(thresholds))
	if err != nil {
		return nil, err
	}
	return RemindersResult{Thresholds: thresholds, Found: len(rs), Reminders: rs}, nil
}
