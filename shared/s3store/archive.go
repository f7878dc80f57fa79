package s3store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"time"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/s3log"
)

// s3Archive keeps archive files beside the database object, under
// <key>.archive/, each created once with put-if-absent.
type s3Archive struct {
	store *Store
	dir   string
}

// Archive is the database's archive in S3.
func (s *Store) Archive() licensing.Archive {
	return &s3Archive{store: s, dir: s.log.Key() + ".archive/"}
}

func (a *s3Archive) Location() string { return "s3://" + a.store.obj.Bucket() + "/" + a.dir }

// Create implements licensing.Archive with If-None-Match: *.
func (a *s3Archive) Create(ctx context.Context, name string, data []byte) error {
	_, err := a.store.obj.Put(ctx, a.dir+name, bytes.NewReader(data), int64(len(data)), s3log.PutOptions{IfAbsent: true})
	if errors.Is(err, s3log.ErrPreconditionFailed) {
		// Taken, perhaps by a concurrent create: the caller reads back
		// what is there.
		return licensing.ErrArchiveExists
	}
	return a.store.fail(err, duringUse)
}

// Read implements licensing.Archive.
func (a *s3Archive) Read(ctx context.Context, name string) ([]byte, error) {
	body, _, err := a.store.obj.Get(ctx, a.dir+name)
	if err != nil {
		return nil, a.store.fail(err, duringUse)
	}
	defer body.Close()
	return io.ReadAll(body)
}

// ReportTTL is how long a report's link works (a link signed with a
// Lambda role's session stops working sooner, when the session ends).
const ReportTTL = 12 * time.Hour

// PublishReport puts an HTML page at reports/<name> in the database's
// bucket and returns a presigned link to it.
func (s *Store) PublishReport(ctx context.Context, name string, html []byte) (location, url string, expires time.Time, err error) {
	key := "reports/" + name
	_, err = s.obj.Put(ctx, key, bytes.NewReader(html), int64(len(html)), s3log.PutOptions{ContentType: "text/html; charset=utf-8"})
	if err != nil {
		return "", "", time.Time{}, s.fail(s3log.Unavailable(err), duringUse)
	}
	url, err = s.obj.PresignGet(ctx, key, ReportTTL)
	if err != nil {
		return "", "", time.Time{}, licensing.Wrap(licensing.CodeInternal, err, "cannot sign a link to s3://%s/%s", s.obj.Bucket(), key)
	}
	return "s3://" + s.obj.Bucket() + "/" + key, url, time.Now().Add(ReportTTL), nil
}
