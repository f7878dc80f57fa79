// Package reportstore keeps the operator report where the stats function
// can hand out a link: the database's bucket. Only the stats function
// links it (the report's templates cost the others' cold starts nothing).
package reportstore

import (
	"bytes"
	"context"

	"github.com/caio-licensing/caio-licensing/shared/buildinfo"
	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/operator"
	"github.com/caio-licensing/caio-licensing/shared/report"
	"github.com/caio-licensing/caio-licensing/shared/s3store"
)

// S3 is where the stats function puts reports: the database's bucket,
// under reports/<date>.html (nil when the database is not in S3).
func S3(store any) operator.ReportSink {
	s3, ok := store.(*s3store.Store)
	if !ok {
		return nil
	}
	return s3Reports{s3}
}

type s3Reports struct{ store *s3store.Store }

func (r s3Reports) Archive() licensing.Archive { return r.store.Archive() }

func (r s3Reports) Report(ctx context.Context, data licensing.ReportData) (operator.ReportLink, error) {
	var page bytes.Buffer
	if err := report.Render(&page, data, report.Meta{Database: r.store.Location(), Version: buildinfo.Read("", "").Short()}); err != nil {
		return operator.ReportLink{}, licensing.Wrap(licensing.CodeInternal, err, "cannot render the report")
	}
	loc, url, exp, err := r.store.PublishReport(ctx, data.GeneratedAt.UTC().Format("2006-01-02")+".html", page.Bytes())
	return operator.ReportLink{Location: loc, URL: url, ExpiresAt: exp}, err
}
