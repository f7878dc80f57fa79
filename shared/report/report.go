// Package report renders the operator report: one self-contained HTML page
// (styles inline, charts drawn here as SVG, no script, no network access),
// readable on a laptop and printable.
package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// Meta says where a report comes from.
type Meta struct {
	Database string
	Version  string
}

// palette is colour-blind safe (Okabe-Ito).
var palette = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"}

// Render writes the report.
func Render(w io.Writer, d licensing.ReportData, meta Meta) error {
	v := view{D: d, Meta: meta, Generated: d.GeneratedAt.UTC().Format("2006-01-02 15:04 UTC")}
	v.ExpiringChart, v.ExpiringTiers = expiringChart(d)
	v.SeatsChart, v.AtLimit = seatsChart(d.Customers)
	v.ActivityChart = activityChart(d)
	v.RefusalChart, v.RefusalCodes = refusalChart(d)
	for _, r := range d.Refusals {
		v.RefusalTotal += r.Count
	}
	for _, c := range d.Deliveries {
		switch c.Outcome {
		case licensing.OutcomeSent:
			v.Sent += c.Count
		case licensing.OutcomeFailed:
			v.Failed += c.Count
		case licensing.OutcomeSkipped:
			v.Skipped += c.Count
		}
	}
	return page().Execute(w, v)
}

type view struct {
	D                     licensing.ReportData
	Meta                  Meta
	Generated             string
	ExpiringChart         template.HTML
	ExpiringTiers         []legendItem
	SeatsChart            template.HTML
	AtLimit               []licensing.CustomerSeats
	ActivityChart         template.HTML
	RefusalChart          template.HTML
	RefusalCodes          []legendItem
	RefusalTotal          int
	Sent, Failed, Skipped int
}

type legendItem struct{ Name, Color string }

// segment is one coloured part of a stacked bar.
type segment struct {
	name  string
	value int
	color string
}

type bar struct {
	label string
	segs  []segment
}

// stacked draws vertical stacked bars with a value axis; every bar carries
// its total in data-total (the browser test reads them).
func stacked(id string, bars []bar, height int) template.HTML {
	const left, bottom, top = 40, 36, 10
	bw := 14
	if len(bars) > 0 {
		bw = max(4, min(40, 860/len(bars)-4))
	}
	width := left + len(bars)*(bw+4) + 10
	maxTotal := 1
	for _, b := range bars {
		t := 0
		for _, s := range b.segs {
			t += s.value
		}
		maxTotal = max(maxTotal, t)
	}
	scale := float64(height-top-bottom) / float64(niceCeil(maxTotal))
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg id="%s" role="img" viewBox="0 0 %d %d" width="%d" height="%d" xmlns="http://www.w3.org/2000/svg">`, id, width, height, width, height)
	// Axis and gridlines.
	for i := 0; i <= 4; i++ {
		val := niceCeil(maxTotal) * i / 4
		y := float64(height-bottom) - float64(val)*scale
		fmt.Fprintf(&sb, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" class="tick" text-anchor="end">%d</text>`,
			left, width-10, y, y, left-4, y+4, val)
	}
	for i, b := range bars {
		x := left + i*(bw+4) + 2
		y := float64(height - bottom)
		total := 0
		for _, s := range b.segs {
			total += s.value
		}
		fmt.Fprintf(&sb, `<g class="bar" data-label="%s" data-total="%d">`, template.HTMLEscapeString(b.label), total)
		for _, s := range b.segs {
			if s.value == 0 {
				continue
			}
			h := float64(s.value) * scale
			y -= h
			fmt.Fprintf(&sb, `<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="%s"><title>%s %s: %d</title></rect>`,
				x, y, bw, h, s.color, template.HTMLEscapeString(b.label), template.HTMLEscapeString(s.name), s.value)
		}
		sb.WriteString(`</g>`)
		if len(bars) <= 16 || i%int(math.Ceil(float64(len(bars))/16)) == 0 {
			fmt.Fprintf(&sb, `<text x="%d" y="%d" class="tick" text-anchor="middle">%s</text>`, x+bw/2, height-bottom+14, template.HTMLEscapeString(b.label))
		}
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String())
}

// niceCeil is the axis top: four times a round step, at least n.
func niceCeil(n int) int {
	// Four gridlines a round step apart (1, 2 or 5 times a power of ten):
	// 0/20/40/60/80 reads at a glance, 0/12/25/37/50 does not.
	need := max(1, (n+3)/4)
	p := 1
	for p*10 <= need {
		p *= 10
	}
	for _, m := range []int{1, 2, 5, 10} {
		if m*p >= need {
			return 4 * m * p
		}
	}
	return 40 * p
}

// expiringChart is licenses expiring per week over the window, by tier.
func expiringChart(d licensing.ReportData) (template.HTML, []legendItem) {
	weeks := (d.Days + 6) / 7
	tiers := map[string]bool{}
	for _, e := range d.Expiring {
		tiers[e.Tier] = true
	}
	names := make([]string, 0, len(tiers))
	for t := range tiers {
		names = append(names, t)
	}
	sort.Strings(names)
	color := map[string]string{}
	var legend []legendItem
	for i, t := range names {
		color[t] = palette[i%len(palette)]
		legend = append(legend, legendItem{t, color[t]})
	}
	counts := make([]map[string]int, weeks)
	for i := range counts {
		counts[i] = map[string]int{}
	}
	for _, e := range d.Expiring {
		w := int(e.ExpiresAt.Sub(d.GeneratedAt).Hours() / (24 * 7))
		if w >= 0 && w < weeks {
			counts[w][e.Tier]++
		}
	}
	bars := make([]bar, weeks)
	for i := range bars {
		start := d.GeneratedAt.Add(time.Duration(i) * 7 * 24 * time.Hour)
		bars[i].label = start.Format("Jan 2")
		for _, t := range names {
			bars[i].segs = append(bars[i].segs, segment{t, counts[i][t], color[t]})
		}
	}
	return stacked("expiring-chart", bars, 220), legend
}

// seatsChart is seats used against sold, per customer, fullest first.
func seatsChart(cs []licensing.CustomerSeats) (template.HTML, []licensing.CustomerSeats) {
	const rowH, labelW, barW = 18, 170, 520
	shown := cs[:min(len(cs), 40)]
	var atLimit []licensing.CustomerSeats
	for _, c := range cs {
		if c.Max > 0 && c.Used >= c.Max {
			atLimit = append(atLimit, c)
		}
	}
	height := rowH*len(shown) + 10
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg id="seats-chart" role="img" viewBox="0 0 %d %d" width="%d" height="%d" xmlns="http://www.w3.org/2000/svg">`,
		labelW+barW+90, height, labelW+barW+90, height)
	for i, c := range shown {
		y := 5 + i*rowH
		frac := 0.0
		if c.Max > 0 {
			frac = math.Min(1, float64(c.Used)/float64(c.Max))
		}
		fill := palette[0]
		if c.Max > 0 && c.Used >= c.Max {
			fill = palette[5]
		}
		fmt.Fprintf(&sb, `<g class="customer" data-customer="%s" data-used="%d" data-max="%d">`, template.HTMLEscapeString(c.CustomerID), c.Used, c.Max)
		fmt.Fprintf(&sb, `<text x="%d" y="%d" class="label" text-anchor="end">%s</text>`, labelW-6, y+12, template.HTMLEscapeString(truncate(c.Name, 26)))
		fmt.Fprintf(&sb, `<rect x="%d" y="%d" width="%d" height="%d" fill="#eee"/>`, labelW, y+2, barW, rowH-5)
		fmt.Fprintf(&sb, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s: %d of %d seats</title></rect>`,
			labelW, y+2, frac*barW, rowH-5, fill, template.HTMLEscapeString(c.Name), c.Used, c.Max)
		fmt.Fprintf(&sb, `<text x="%d" y="%d" class="tick">%d / %d</text></g>`, labelW+barW+6, y+12, c.Used, c.Max)
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String()), atLimit
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// activityChart is seat events per day over the window.
func activityChart(d licensing.ReportData) template.HTML {
	kinds := []struct{ kind, name string }{
		{licensing.EventActivationCreated, "new seats"},
		{licensing.EventActivationRefreshed, "re-activations"},
		{licensing.EventActivationDeactivated, "deactivations"},
	}
	byDay := map[string]map[string]int{}
	for _, c := range d.Activity {
		if byDay[c.Day] == nil {
			byDay[c.Day] = map[string]int{}
		}
		byDay[c.Day][c.Kind] += c.Count
	}
	var bars []bar
	for _, day := range windowDays(d) {
		b := bar{label: day[5:]}
		for j, k := range kinds {
			b.segs = append(b.segs, segment{k.name, byDay[day][k.kind], palette[j]})
		}
		bars = append(bars, b)
	}
	return stacked("activity-chart", bars, 240)
}

// windowDays are the report's past days, oldest first (YYYY-MM-DD, UTC).
func windowDays(d licensing.ReportData) []string {
	start := d.GeneratedAt.UTC().Add(-time.Duration(d.Days-1) * 24 * time.Hour)
	days := make([]string, d.Days)
	for i := range days {
		days[i] = start.Add(time.Duration(i) * 24 * time.Hour).Format(time.DateOnly)
	}
	return days
}

// refusalChart is refused seat requests per day, by code.
func refusalChart(d licensing.ReportData) (template.HTML, []legendItem) {
	codes := map[licensing.Code]bool{}
	byDay := map[string]map[licensing.Code]int{}
	for _, r := range d.Refusals {
		codes[r.Code] = true
		if byDay[r.Day] == nil {
			byDay[r.Day] = map[licensing.Code]int{}
		}
		byDay[r.Day][r.Code] += r.Count
	}
	names := make([]string, 0, len(codes))
	for c := range codes {
		names = append(names, string(c))
	}
	sort.Strings(names)
	var legend []legendItem
	for i, c := range names {
		legend = append(legend, legendItem{c, palette[(i+3)%len(palette)]})
	}
	var bars []bar
	for _, day := range windowDays(d) {
		b := bar{label: day[5:]}
		for j, c := range names {
			b.segs = append(b.segs, segment{c, byDay[day][licensing.Code(c)], legend[j].Color})
		}
		bars = append(bars, b)
	}
	return stacked("refusal-chart", bars, 200), legend
}

// page is parsed on first use, not at start: binaries that link this
// package without rendering pay nothing.
var page = sync.OnceValue(func() *template.Template { return template.Must(template.New("report").Parse(pageText)) })

const pageText = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>CAIO licensing report — {{.Generated}}</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 24px auto; max-width: 1000px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.meta { color: #666; font-size: 12px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 14px; min-width: 110px; }
.card .n { font-size: 24px; font-weight: 600; } .card .l { color: #666; font-size: 12px; }
table { border-collapse: collapse; margin-top: 8px; font-size: 13px; } th, td { text-align: left; padding: 3px 10px 3px 0; border-bottom: 1px solid #eee; }
.tick { font-size: 10px; fill: #555; } .label { font-size: 11px; fill: #222; }
.legend span { display: inline-block; margin-right: 14px; font-size: 12px; } .legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
.warn { color: #D55E00; font-weight: 600; } .note { color: #666; font-size: 12px; }
svg { max-width: 100%; height: auto; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; } svg, table { break-inside: avoid; } }
</style>
</head>
<body>
<h1>CAIO licensing report</h1>
<div class="meta">Generated {{.Generated}} from <span id="source">{{.Meta.Database}}</span> by manage-licenses {{.Meta.Version}}; window: {{.D.Days}} days.</div>

<h2>Headlines</h2>
<div class="cards">
 <div class="card"><div class="n" data-metric="total">{{.D.Stats.Total}}</div><div class="l">licenses</div></div>
 <div class="card"><div class="n" data-metric="active">{{.D.Stats.Active}}</div><div class="l">active</div></div>
 <div class="card"><div class="n" data-metric="expiring_soon">{{.D.Stats.ExpiringSoon}}</div><div class="l">expiring within {{.D.Stats.ExpiringWithinDays}} days</div></div>
 <div class="card"><div class="n {{if .D.Stats.InGrace}}warn{{end}}" data-metric="in_grace">{{.D.Stats.InGrace}}</div><div class="l">in grace (expired, still working)</div></div>
 <div class="card"><div class="n" data-metric="expired">{{.D.Stats.Expired}}</div><div class="l">expired</div></div>
 <div class="card"><div class="n" data-metric="suspended">{{.D.Stats.Suspended}}</div><div class="l">suspended</div></div>
 <div class="card"><div class="n" data-metric="revoked">{{.D.Stats.Revoked}}</div><div class="l">revoked</div></div>
 <div class="card"><div class="n" data-metric="customers">{{.D.Stats.Customers}}</div><div class="l">customers</div></div>
 <div class="card"><div class="n" data-metric="active_instances">{{.D.Stats.ActiveInstances}}</div><div class="l">live seats</div></div>
 <div class="card"><div class="n {{if .D.Stats.Seats.Overage}}warn{{end}}" data-metric="overage_seats">{{.D.Stats.Seats.Overage}}</div><div class="l">overage seats (above max instances)</div></div>
 <div class="card"><div class="n"><span data-metric="seats_used">{{.D.Stats.ActiveInstances}}</span> / <span data-metric="seats_sold">{{.D.SeatsSold}}</span></div><div class="l">seats in use / sold (active licenses)</div></div>
</div>

<h2>Licenses expiring per week, next {{.D.Days}} days</h2>
<div class="legend">{{range .ExpiringTiers}}<span><i style="background:{{.Color}}"></i>{{.Name}}</span>{{end}}</div>
{{.ExpiringChart}}
{{if .D.Expiring}}<table id="expiring-list"><tr><th>Expires</th><th>Customer</th><th>Tier</th><th>License</th></tr>
{{range .D.Expiring}}<tr><td>{{.ExpiresAt.Format "2006-01-02"}}</td><td>{{.CustomerName}} ({{.CustomerID}})</td><td>{{.Tier}}</td><td><code>{{.LicenseID}}</code></td></tr>
{{end}}</table>{{else}}<p class="note">No active license expires in this window.</p>{{end}}

<h2>Licenses in grace</h2>
{{if .D.InGrace}}<table id="grace-list"><tr><th>Works until</th><th>Expired</th><th>Customer</th><th>Tier</th><th>License</th></tr>
{{range .D.InGrace}}<tr class="grace" data-license="{{.LicenseID}}" data-grace-ends="{{.GraceEndsAt.UTC.Format "2006-01-02T15:04:05Z07:00"}}"><td class="warn">{{.GraceEndsAt.UTC.Format "2006-01-02 15:04"}}</td><td>{{.ExpiresAt.UTC.Format "2006-01-02 15:04"}}</td><td>{{.CustomerName}} ({{.CustomerID}})</td><td>{{.Tier}}</td><td><code>{{.LicenseID}}</code></td></tr>
{{end}}</table><p class="note">Expired, and working on in their grace days (the API answers GRACE) until the time shown; renew them (renew-license) before then.</p>{{else}}<p class="note">No license is in grace.</p>{{end}}

<h2>Overage seats, per license</h2>
{{if .D.Overage}}<table id="overage-list"><tr><th>Customer</th><th>License</th><th>Seats held / max instances</th><th>Above max</th><th>Allowance</th></tr>
{{range .D.Overage}}<tr class="overage" data-license="{{.LicenseID}}" data-live="{{.Live}}" data-max="{{.MaxInstances}}" data-overage="{{.Overage}}" data-cap="{{.SeatCap}}"><td>{{.CustomerName}} ({{.CustomerID}})</td><td><code>{{.LicenseID}}</code></td><td>{{.Live}} / {{.MaxInstances}}</td><td class="warn">{{.Overage}}</td><td>{{.OveragePercent}}% (up to {{.SeatCap}} seats)</td></tr>
{{end}}</table><p class="note">Seats taken above max instances under an overage allowance (the API answers OVERAGE to them); past the allowance seats are refused (TOO_MANY_INSTANCES). Sell more instances (update-license --max-instances) to those who use them.</p>{{else}}<p class="note">No license holds seats above its max instances.</p>{{end}}

<h2>Seats in use against seats sold, per customer</h2>
{{if .AtLimit}}<p class="warn" id="at-limit">At their limit: {{range $i, $c := .AtLimit}}{{if $i}}, {{end}}{{$c.Name}} ({{$c.Used}}/{{$c.Max}}){{end}}</p>{{end}}
{{if .D.Customers}}{{.SeatsChart}}<p class="note">Fullest first (at most 40 shown); red: at the limit.</p>{{else}}<p class="note">No customer holds an active license.</p>{{end}}

<h2>Seat activity per day, last {{.D.Days}} days</h2>
<div class="legend"><span><i style="background:#0072B2"></i>new seats</span><span><i style="background:#E69F00"></i>re-activations</span><span><i style="background:#009E73"></i>deactivations</span></div>
{{.ActivityChart}}
{{if .D.ArchivedDays}}<p class="note">Older days come from the archives.</p>{{end}}

<h2>Refused seat requests per day, by code</h2>
<div class="legend">{{range .RefusalCodes}}<span><i style="background:{{.Color}}"></i>{{.Name}}</span>{{end}}</div>
<p><span data-metric="refusals">{{.RefusalTotal}}</span> refusals in the window.</p>
{{.RefusalChart}}
<p class="note">A refusal writes nothing by itself (a flood of them must not grow the database): each server counts them and records the counts with its next write, so the last few before a server stops may be missing. The exact figures are the <code>Refusals</code> metric (CloudWatch, namespace CAIO/Licensing) and <code>caio_refusals_total</code> (<code>serve --metrics-addr</code>), which also count refusals made before a request reaches the licensing rules (rate limits, malformed requests).</p>

<h2>Reminders and deliveries, last {{.D.Days}} days</h2>
<div class="cards">
 <div class="card"><div class="n" data-metric="deliveries_sent">{{.Sent}}</div><div class="l">sent</div></div>
 <div class="card"><div class="n" data-metric="deliveries_skipped">{{.Skipped}}</div><div class="l">skipped (no email configured)</div></div>
 <div class="card"><div class="n {{if .Failed}}warn{{end}}" data-metric="deliveries_failed">{{.Failed}}</div><div class="l">failed</div></div>
</div>
{{if .D.Deliveries}}<table><tr><th>Kind</th><th>Outcome</th><th>Count</th></tr>{{range .D.Deliveries}}<tr><td>{{.Kind}}</td><td>{{.Outcome}}</td><td>{{.Count}}</td></tr>{{end}}</table>{{end}}
{{if .D.Failures}}<h3>Failures</h3><table id="failures"><tr><th>When</th><th>Kind</th><th>To</th><th>Via</th><th>Error</th></tr>
{{range .D.Failures}}<tr><td>{{.At.Format "2006-01-02 15:04"}}</td><td>{{.Kind}}</td><td>{{.Recipient}}</td><td>{{.Provider}}</td><td>{{.Error}}</td></tr>{{end}}</table>{{end}}
</body>
</html>
`
