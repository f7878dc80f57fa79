package metrics

import (
	"encoding/json"
	"io"
	"strings"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of every metric.
const Namespace = "CAIO/Licensing"

// EMF writes one CloudWatch Embedded Metric Format line per measurement.
// Each carries the fixed dimensions (Function) and the metric's labels,
// with two dimension sets: all of them, and the fixed ones alone (so an
// alarm can watch the total).
type EMF struct {
	mu    sync.Mutex
	w     io.Writer
	fixed []string // name, value pairs
	now   func() time.Time
}

// NewEMF writes to w (a Lambda function's stdout); fixed are name, value
// pairs of dimensions on every line, such as "Function", "activate".
func NewEMF(w io.Writer, fixed ...string) *EMF {
	return &EMF{w: w, fixed: fixed, now: time.Now}
}

func (e *EMF) Count(name string, n float64, labels ...string)   { e.emit(name, n, labels) }
func (e *EMF) Observe(name string, v float64, labels ...string) { e.emit(name, v, labels) }
func (e *EMF) Gauge(name string, v float64, labels ...string)   { e.emit(name, v, labels) }

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

func (e *EMF) emit(name string, v float64, labels []string) {
	spec, ok := Lookup(name)
	if !ok {
		return
	}
	line := map[string]any{}
	var fixedDims, allDims []string
	for i := 0; i+1 < len(e.fixed); i += 2 {
		line[e.fixed[i]] = e.fixed[i+1]
		fixedDims = append(fixedDims, e.fixed[i])
	}
	allDims = append(allDims, fixedDims...)
	for i := 0; i+1 < len(labels); i += 2 {
		dim := strings.ToUpper(labels[i][:1]) + labels[i][1:]
		line[dim] = labels[i+1]
		allDims = append(allDims, dim)
	}
	dims := [][]string{allDims}
	if len(allDims) != len(fixedDims) {
		dims = append(dims, fixedDims)
	}
	line["_aws"] = map[string]any{
		"Timestamp":         e.now().UnixMilli(),
		"CloudWatchMetrics": []emfDirective{{Namespace: Namespace, Dimensions: dims, Metrics: []emfMetric{{spec.Name, spec.Unit}}}},
	}
	line[spec.Name] = v
	b, err := json.Marshal(line)
	if err != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.w.Write(append(b, '\n'))
}
