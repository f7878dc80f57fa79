// Package prommetrics renders the metrics catalog for Prometheus, with the
// official client library (linked only into serve, not the functions).
package prommetrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/caio-licensing/caio-licensing/shared/metrics"
)

// Sink is a metrics.Sink on a Prometheus registry.
type Sink struct {
	reg        *prometheus.Registry
	counters   map[string]*prometheus.CounterVec
	histograms map[string]*prometheus.HistogramVec
	gauges     map[string]*prometheus.GaugeVec
}

// New registers every metric of the catalog (and the Go runtime's).
func New() *Sink {
	s := &Sink{reg: prometheus.NewRegistry(), counters: map[string]*prometheus.CounterVec{},
		histograms: map[string]*prometheus.HistogramVec{}, gauges: map[string]*prometheus.GaugeVec{}}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, spec := range metrics.Catalog {
		switch spec.Kind {
		case metrics.Counter:
			v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: spec.Prom, Help: spec.Help}, spec.Labels)
			s.reg.MustRegister(v)
			s.counters[spec.Name] = v
		case metrics.Histogram:
			v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: spec.Prom, Help: spec.Help,
				Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, spec.Labels)
			s.reg.MustRegister(v)
			s.histograms[spec.Name] = v
		case metrics.GaugeKind:
			v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: spec.Prom, Help: spec.Help}, spec.Labels)
			s.reg.MustRegister(v)
			s.gauges[spec.Name] = v
		}
	}
	return s
}

// values picks the label values out of name, value pairs.
func values(labels []string) []string {
	out := make([]string, 0, len(labels)/2)
	for i := 1; i < len(labels); i += 2 {
		out = append(out, labels[i])
	}
	return out
}

func (s *Sink) Count(name string, n float64, labels ...string) {
	if v, ok := s.counters[name]; ok {
		if c, err := v.GetMetricWithLabelValues(values(labels)...); err == nil {
			c.Add(n)
		}
	}
}

func (s *Sink) Observe(name string, v float64, labels ...string) {
	spec, _ := metrics.Lookup(name)
	if h, ok := s.histograms[name]; ok {
		if o, err := h.GetMetricWithLabelValues(values(labels)...); err == nil {
			o.Observe(v * spec.Scale)
		}
	}
}

func (s *Sink) Gauge(name string, v float64, labels ...string) {
	if g, ok := s.gauges[name]; ok {
		if m, err := g.GetMetricWithLabelValues(values(labels)...); err == nil {
			m.Set(v)
		}
	}
}

// Handler serves the registry in the Prometheus text format.
func (s *Sink) Handler() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})
}
