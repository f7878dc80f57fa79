// Package metrics counts what the licensing server does, for CloudWatch
// (Embedded Metric Format lines on stdout: no agent, no API call) and for
// Prometheus (serve --metrics-addr). Callers name metrics from the catalog
// below; each sink renders them in its own convention.
package metrics

import "slices"

// Sink receives measurements. Labels are name, value pairs, in the order
// the catalog gives for the metric.
type Sink interface {
	Count(name string, n float64, labels ...string)
	Observe(name string, v float64, labels ...string)
	Gauge(name string, v float64, labels ...string)
}

// Kinds of metric.
type Kind int

const (
	Counter Kind = iota
	Histogram
	GaugeKind
)

// Spec describes one metric.
type Spec struct {
	Name   string // CloudWatch name
	Prom   string // Prometheus name
	Kind   Kind
	Unit   string   // CloudWatch unit: Count, Milliseconds, Bytes
	Labels []string // label names, lower case
	Help   string
	// Scale turns the value into Prometheus's base unit (ms → s).
	Scale float64
}

// Metric names.
const (
	Requests                 = "Requests"
	Refusals                 = "Refusals"
	RequestLatency           = "RequestLatency"
	S3Commits                = "S3Commits"
	S3CommitLatency          = "S3CommitLatency"
	S3CommitRetriesExhausted = "S3CommitRetriesExhausted"
	DatabaseBytes            = "DatabaseBytes"
	Emails                   = "Emails"
)

// Catalog is every metric there is.
var Catalog = []Spec{
	{Requests, "caio_requests_total", Counter, "Count", []string{"route", "code"}, "API requests by route and outcome code.", 1},
	{Refusals, "caio_refusals_total", Counter, "Count", []string{"code"}, "API requests answered 4xx or 5xx, by outcome code.", 1},
	{RequestLatency, "caio_request_duration_seconds", Histogram, "Milliseconds", []string{"route"}, "Time to answer an API request.", 0.001},
	{S3Commits, "caio_s3_commits_total", Counter, "Count", []string{"outcome"}, "S3 commit attempts: committed, conflict (another writer won the number), unknown (the answer was lost).", 1},
	{S3CommitLatency, "caio_s3_commit_duration_seconds", Histogram, "Milliseconds", nil, "Time from the start of a write to its commit in S3, retries included.", 0.001},
	{S3CommitRetriesExhausted, "caio_s3_commit_retries_exhausted_total", Counter, "Count", nil, "Writes that gave up after every attempt (BUSY or UNKNOWN_OUTCOME).", 1},
	{DatabaseBytes, "caio_database_bytes", GaugeKind, "Bytes", nil, "Size of the database file.", 1},
	{Emails, "caio_emails_total", Counter, "Count", []string{"outcome"}, "License and reminder emails: sent, failed, skipped.", 1},
}

// Lookup returns the spec of name.
func Lookup(name string) (Spec, bool) {
	i := slices.IndexFunc(Catalog, func(s Spec) bool { return s.Name == name })
	if i < 0 {
		return Spec{}, false
	}
	return Catalog[i], true
}

// Nop discards everything.
type Nop struct{}

func (Nop) Count(string, float64, ...string)   {}
func (Nop) Observe(string, float64, ...string) {}
func (Nop) Gauge(string, float64, ...string)   {}

// Multi sends to several sinks.
type Multi []Sink

func (m Multi) Count(n string, v float64, l ...string) {
	for _, s := range m {
		s.Count(n, v, l...)
	}
}
func (m Multi) Observe(n string, v float64, l ...string) {
	for _, s := range m {
		s.Observe(n, v, l...)
	}
}
func (m Multi) Gauge(n string, v float64, l ...string) {
	for _, s := range m {
		s.Gauge(n, v, l...)
	}
}

// OrNop is s, or Nop when s is nil.
func OrNop(s Sink) Sink {
	if s == nil {
		return Nop{}
	}
	return s
}
