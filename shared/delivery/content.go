package delivery

import (
	"bytes"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/mail"
)

// view is what the templates see.
type view struct {
	CustomerName string
	LicenseID    string
	Key          string
	Tier         string
	Expires      string
	DaysLeft     int
	Features     string
	Instances    uint32
	Services     uint32
	Requests     uint32
	// InGrace: the reminder of a license past its expiry, which works on
	// until GraceEnds.
	InGrace   bool
	GraceEnds string
}

func newView(s licensing.Sendable, daysLeft int) view {
	features := strings.Join(s.License.Features, ", ")
	if features == "" {
		features = "none"
	}
	return view{
		CustomerName: s.Customer.Name, LicenseID: s.License.ID, Key: s.Key, Tier: s.License.Tier,
		Expires: s.License.ExpiresAt.UTC().Format(time.DateOnly), DaysLeft: daysLeft, Features: features,
		Instances: s.License.MaxInstances, Services: s.License.MaxServices, Requests: s.License.MaxRequestsPerDay,
	}
}

var licenseText = texttemplate.Must(texttemplate.New("license").Parse(`Hello {{.CustomerName}},

here is your CAIO license key:

{{.Key}}

Tier:                 {{.Tier}}
Expires:              {{.Expires}}
Features:             {{.Features}}
Max instances:        {{.Instances}}
Max services:         {{.Services}}
Max requests per day: {{.Requests}}

How to activate: put the key in your CAIO configuration and start CAIO;
each instance activates itself with the license server (it sends its
instance id in the X-CAIO-Instance-ID header). Keep the key private: it
counts against your instance limit wherever it is used.

License id: {{.LicenseID}}
`))

var licenseHTML = htmltemplate.Must(htmltemplate.New("license").Parse(`<!doctype html>
<html><body style="font-family: sans-serif">
<p>Hello {{.CustomerName}},</p>
<p>here is your CAIO license key:</p>
<pre style="white-space: pre-wrap; word-break: break-all; background: #f4f4f4; padding: 8px">{{.Key}}</pre>
<table>
<tr><td>Tier</td><td>{{.Tier}}</td></tr>
<tr><td>Expires</td><td>{{.Expires}}</td></tr>
<tr><td>Features</td><td>{{.Features}}</td></tr>
<tr><td>Max instances</td><td>{{.Instances}}</td></tr>
<tr><td>Max services</td><td>{{.Services}}</td></tr>
<tr><td>Max requests per day</td><td>{{.Requests}}</td></tr>
</table>
<p><b>How to activate:</b> put the key in your CAIO configuration and start CAIO; each instance
activates itself with the license server (it sends its instance id in the X-CAIO-Instance-ID header).
Keep the key private: it counts against your instance limit wherever it is used.</p>
<p style="color: #777">License id: {{.LicenseID}}</p>
</body></html>
`))

var reminderText = texttemplate.Must(texttemplate.New("reminder").Parse(`Hello {{.CustomerName}},

{{if .InGrace}}your CAIO license ({{.Tier}}) expired on {{.Expires}}. It keeps working in its grace
period until {{.GraceEnds}}, and stops working then: {{.DaysLeft}} day{{if ne .DaysLeft 1}}s{{end}} left.
{{else}}your CAIO license ({{.Tier}}) expires on {{.Expires}}, in {{.DaysLeft}} day{{if ne .DaysLeft 1}}s{{end}}.
{{end}}Contact your vendor to renew it; once renewed, your instances keep running
without any change on your side.

License id: {{.LicenseID}}
`))

var reminderHTML = htmltemplate.Must(htmltemplate.New("reminder").Parse(`<!doctype html>
<html><body style="font-family: sans-serif">
<p>Hello {{.CustomerName}},</p>
{{if .InGrace}}<p>your CAIO license ({{.Tier}}) expired on <b>{{.Expires}}</b>. It keeps working in its grace period
until <b>{{.GraceEnds}}</b>, and stops working then: {{.DaysLeft}} day{{if ne .DaysLeft 1}}s{{end}} left.
{{else}}<p>your CAIO license ({{.Tier}}) expires on <b>{{.Expires}}</b>, in {{.DaysLeft}} day{{if ne .DaysLeft 1}}s{{end}}.
{{end}}Contact your vendor to renew it; once renewed, your instances keep running without any change on your side.</p>
<p style="color: #777">License id: {{.LicenseID}}</p>
</body></html>
`))

func render(text *texttemplate.Template, html *htmltemplate.Template, v view) (string, string, error) {
	var t, h bytes.Buffer
	if err := text.Execute(&t, v); err != nil {
		return "", "", err
	}
	if err := html.Execute(&h, v); err != nil {
		return "", "", err
	}
	return t.String(), h.String(), nil
}

func licenseMessage(to string, s licensing.Sendable) (mail.Message, error) {
	text, html, err := render(licenseText, licenseHTML, newView(s, 0))
	return mail.Message{To: to, Subject: "Your CAIO license (" + s.License.Tier + ")", Text: text, HTML: html}, err
}

// reminderMessage is the reminder of r: before the expiry, when it is;
// in grace, that the license expired and when it stops working.
func reminderMessage(to string, s licensing.Sendable, r licensing.Reminder) (mail.Message, error) {
	v := newView(s, r.DaysLeft)
	subject := "Your CAIO license expires on " + s.License.ExpiresAt.UTC().Format(time.DateOnly)
	if r.InGrace {
		// To the minute: it stops at that time of day, not at midnight.
		v.InGrace, v.GraceEnds = true, r.GraceEndsAt.UTC().Format("2006-01-02 15:04 UTC")
		subject = "Your CAIO license expired on " + v.Expires + " — in grace until " + v.GraceEnds
	}
	text, html, err := render(reminderText, reminderHTML, v)
	return mail.Message{To: to, Subject: subject, Text: text, HTML: html}, err
}
