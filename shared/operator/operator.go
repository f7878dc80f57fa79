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
	"time"

	"github.com/caio-licensing/caio-licensing/shared/delivery"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// Handlers serve the operator functions.
type Handlers struct {
	svc *licensing.Service
	// reminderDays are the default reminder thresholds (CAIO_REMINDER_DAYS).
	reminderDays []int
	deliver      *delivery.Deliverer
	// maintain, when set, runs after the reminders (the daily schedule).
	maintain func(context.Context) (any, error)
	// reports, when set, is where stats {"report": true} puts the report.
	reports ReportSink
	// serverKeys, when set, is where the API's server key is renewed.
	serverKeys licensing.ServerKeyStore
	// snapshot, when set, publishes the database's snapshot when one is
	// due (reminders {"snapshot": true}, the frequent schedule).
	snapshot func(context.Context) (any, error)
}

// ReportSink keeps a rendered report and returns a link to it.
type ReportSink interface {
	// Report renders the report of data and keeps it; it returns where,
	// a link valid until expires.
	Report(ctx context.Context, data licensing.ReportData) (ReportLink, error)
	// Archive is where old history is, for the activity chart.
	Archive() licensing.Archive
}

// ReportLink says where a report was put.
type ReportLink struct {
	Location  string    `json:"location"`
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// WithServerKeyRenewal lets the generate function renew the API's server
// key in store on its daily schedule ({"renew_server_key": true}).
func (h *Handlers) WithServerKeyRenewal(store licensing.ServerKeyStore) *Handlers {
	h.serverKeys = store
	return h
}

// WithReports lets the stats function write the operator report.
func (h *Handlers) WithReports(r ReportSink) *Handlers {
	h.reports = r
	return h
}

// WithMaintenance makes the reminders run end with maintain (archiving
// old history, pruning dead seats): one daily schedule for both.
func (h *Handlers) WithMaintenance(maintain func(context.Context) (any, error)) *Handlers {
	h.maintain = maintain
	return h
}

// WithSnapshots lets the reminders function publish the database's
// snapshot on its frequent schedule ({"snapshot": true}); nil (a local
// database) refuses that input.
func (h *Handlers) WithSnapshots(publish func(context.Context) (any, error)) *Handlers {
	h.snapshot = publish
	return h
}

// New returns the handlers; deliver emails licenses and reminders.
func New(svc *licensing.Service, reminderDays []int, deliver *delivery.Deliverer) *Handlers {
	return &Handlers{svc: svc, reminderDays: reminderDays, deliver: deliver}
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
	// LeaseHours or LeaseMinutes: how long a seat is held without renewal
	// (default 72 hours).
	LeaseHours   *int64 `json:"lease_hours,omitempty"`
	LeaseMinutes *int64 `json:"lease_minutes,omitempty"`
	// SeatTimeoutMinutes: a seat not renewed for this long is free for
	// another instance, though its holder's lease still runs (default, or
	// 0: the lease length; at least 1, at most the lease).
	SeatTimeoutMinutes *int64 `json:"seat_timeout_minutes,omitempty"`
	// GraceDays: days the license keeps working after it expires (0 to
	// 365); OveragePercent: seats allowed above max instances, in percent
	// of them (0 to 100). Default 0: none. The domain checks the bounds
	// and names the term (grace-days, overage-percent), as for the CLI.
	GraceDays      *int64 `json:"grace_days,omitempty"`
	OveragePercent *int64 `json:"overage_percent,omitempty"`
	// MaxActivationsPerDay is the churn limit (default max(10, 2 x max instances)).
	MaxActivationsPerDay int64  `json:"max_activations_per_day,omitempty"`
	Email                string `json:"email,omitempty"`
	SendEmail            bool   `json:"send_email,omitempty"`
	// RenewServerKey (generate, alone): keep the API's server key current
	// instead of minting, as the daily schedule does.
	RenewServerKey bool `json:"renew_server_key,omitempty"`
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
	r.MaxActivationsPerDay = in.MaxActivationsPerDay
	switch {
	case in.LeaseMinutes != nil:
		r.LeaseSeconds = *in.LeaseMinutes * 60
	case in.LeaseHours != nil:
		r.LeaseSeconds = *in.LeaseHours * 3600
	}
	if in.SeatTimeoutMinutes != nil {
		// Past any lease, not multiplied into a valid value by overflow.
		r.SeatTimeoutSeconds = min(*in.SeatTimeoutMinutes, licensing.MaxDays*24*60+1) * 60
	}
	if in.GraceDays != nil {
		r.GraceDays = *in.GraceDays
	}
	if in.OveragePercent != nil {
		r.OveragePercent = *in.OveragePercent
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
	if in.RenewServerKey {
		return h.renewServerKey(ctx, in)
	}
	return h.svc.Generate(ctx, in.request())
}

// renewServerKey renews the server key when less than a third of its
// certificate's term is left (the key it replaces is retired).
func (h *Handlers) renewServerKey(ctx context.Context, in GenerateInput) (any, error) {
	if in.CustomerID != "" || in.Tier != "" {
		return nil, licensing.Errorf(licensing.CodeBadRequest, "renew_server_key goes alone: it mints no license")
	}
	if h.serverKeys == nil {
		return nil, licensing.Errorf(licensing.CodeConfig, "this function has no server key to renew: set CAIO_SERVER_KEY_ARN to the stack's ServerKeySecretArn")
	}
	return h.svc.RenewServerKey(ctx, h.serverKeys, licensing.Renewal{Days: licensing.DefaultServerKeyDays})
}

// Distributed is the distribute function's result.
type Distributed struct {
	licensing.Issued
	Delivery delivery.Result `json:"delivery"`
}

// Distribute mints a license for a recipient and, with send_email, emails
// it. A configured provider that fails is an error (the license stays).
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
	out := Distributed{Issued: is, Delivery: delivery.Result{Status: licensing.OutcomeSkipped, Recipient: in.Email, Detail: "send_email was not set"}}
	if !in.SendEmail {
		return out, nil
	}
	cust, err := h.svc.Customer(ctx, is.License.CustomerID)
	if err != nil {
		return nil, err
	}
	out.Delivery, err = h.deliver.License(ctx, licensing.Sendable{License: is.License, Customer: cust, Key: is.Key}, in.Email)
	if err != nil && licensing.ErrorCode(err) != delivery.CodeDeliveryFailed {
		return nil, err
	}
	// A failed send is a result, not a function error: a retried invocation
	// would mint a second license. delivery.status says "failed"; resend
	// with 'manage-licenses resend-license'.
	return out, nil
}

// StatsInput is the stats function's input. With report, the function
// also writes the operator report (over days, default 90) and returns a
// link to it.
type StatsInput struct {
	Days   *int `json:"days"`
	Report bool `json:"report"`
}

// StatsWithReport is the stats object and where the report went.
type StatsWithReport struct {
	licensing.Stats
	Report ReportLink `json:"report"`
}

// Stats returns the CLI's stats object (and the report's link, if asked).
func (h *Handlers) Stats(ctx context.Context, input json.RawMessage) (any, error) {
	var in StatsInput
	if err := decode(input, &in); err != nil {
		return nil, err
	}
	days := licensing.DefaultExpiringDays
	if in.Report {
		days = 90
	}
	if in.Days != nil {
		days = *in.Days
	}
	if !in.Report {
		return h.svc.Stats(ctx, days)
	}
	if h.reports == nil {
		return nil, licensing.Errorf(licensing.CodeBadRequest, "reports need the database in S3 (they are written to its bucket, under reports/): run 'manage-licenses report' locally instead")
	}
	data, err := h.svc.Report(ctx, h.reports.Archive(), days)
	if err != nil {
		return nil, err
	}
	link, err := h.reports.Report(ctx, data)
	if err != nil {
		return nil, err
	}
	return StatsWithReport{Stats: data.Stats, Report: link}, nil
}

// RemindersInput is the reminders function's input: the schedule's Input,
// or nothing for the defaults. days is a list of thresholds, or one number.
type RemindersInput struct {
	Days json.RawMessage `json:"days"`
	// Snapshot (alone): publish the database's snapshot if one is due,
	// instead of the reminders, as the frequent schedule does.
	Snapshot bool `json:"snapshot,omitempty"`
}

// SnapshotResult is what a {"snapshot": true} run did.
type SnapshotResult struct {
	Snapshot any `json:"snapshot"`
}

// RemindersResult is what a reminders run found and did.
type RemindersResult struct {
	Thresholds []int `json:"thresholds"`
	delivery.Counts
	Reminders []delivery.ReminderOutcome `json:"reminders"`
	// Maintenance is what the day's maintenance did, when it ran.
	Maintenance any `json:"maintenance,omitempty"`
}

// Reminders emails the reminders due at the thresholds, each at most once
// per license, threshold and expiry (see delivery.Deliverer.Reminders).
func (h *Handlers) Reminders(ctx context.Context, input json.RawMessage) (any, error) {
	var in RemindersInput
	if err := decode(input, &in); err != nil {
		return nil, err
	}
	if in.Snapshot {
		return h.publishSnapshot(ctx, in)
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
	counts, outcomes, err := h.deliver.Reminders(ctx, thresholds)
	if err != nil {
		return nil, err
	}
	res := RemindersResult{Thresholds: thresholds, Counts: counts, Reminders: outcomes}
	if counts.Failed > 0 {
		// A failed run goes to the on-failure destination and is retried;
		// the reminders already sent are not sent again.
		return nil, licensing.Errorf(delivery.CodeDeliveryFailed, "%d of %d reminders could not be sent", counts.Failed, counts.Found)
	}
	if h.maintain != nil {
		if res.Maintenance, err = h.maintain(ctx); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// publishSnapshot runs {"snapshot": true}.
func (h *Handlers) publishSnapshot(ctx context.Context, in RemindersInput) (any, error) {
	switch {
	case len(in.Days) > 0:
		return nil, licensing.Errorf(licensing.CodeBadRequest, "snapshot goes alone: it sends no reminders")
	case h.snapshot == nil:
		return nil, licensing.Errorf(licensing.CodeBadRequest, "this database keeps no snapshots: it is not in S3")
	}
	rep, err := h.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return SnapshotResult{Snapshot: rep}, nil
}
