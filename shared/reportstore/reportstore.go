// Package reportstore keeps the operator report where the stats function
// can hand out a link: beside the database, where its store publishes it
// (the bucket of a database in S3). Only the stats function links it (the
// report's templates cost the others' cold starts nothing).
package reportstore

import (
	"bytes"
	"context"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/buildinfo"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/operator"
	"github.com/caio-licensing/caio-licensing/shared/report"
)

// Publisher is a store that can keep a rendered report beside its
// database and hand out a link to it (the S3 store does: s3store.Store).
// A store without the capability has no reports.
type Publisher interface {
	// Location names the database, for the report's header.
	Location() string
	// Archive is where old history is, for the activity chart.
	Archive() licensing.Archive
	// PublishReport keeps html as name and returns where, and a link
	// valid until expires.
	PublishReport(ctx context.Context, name string, html []byte) (location, url string, expires time.Time, err error)
}

// New returns the report sink that renders reports and has p publish them
// as reports/<date>.html.
func New(p Publisher) operator.ReportSink { return reports{p} }

type reports struct{ store Publisher }

func (r reports) Archive() licensing.Archive { return r.store.Archive() }

func (r reports) Report(ctx context.Context, data licensing.ReportData) (operator.ReportLink, error) {
	var page bytes.Buffer
	if err := report.Render(&page, data, report.Meta{Database: r.store.Location(), Version: buildinfo.Read("", "").Short()}); err != nil {
		return operator.ReportLink{}, licensing.Wrap(licensing.CodeInternal, err, "cannot render the report")
	}
	loc, url, exp, err := r.store.PublishReport(ctx, data.GeneratedAt.UTC().Format("2006-01-02")+".html", page.Bytes())
	return operator.ReportLink{Location: loc, URL: url, ExpiresAt: exp}, err
}
