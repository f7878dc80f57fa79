package s3store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

// s3Archive keeps archive files beside the database object, under
// <key>.archive/, each created once with put-if-absent.
type s3Archive struct {
	obj objects
	dir string
}

// Archive is the database's archive in S3.
func (s *Store) Archive() licensing.Archive { return &s3Archive{obj: s.obj, dir: s.key + ".archive/"} }

func (a *s3Archive) Location() string { return "s3://" + a.obj.bucketName() + "/" + a.dir }

// Create implements licensing.Archive with If-None-Match: *.
func (a *s3Archive) Create(ctx context.Context, name string, data []byte) error {
	_, err := a.obj.put(ctx, a.dir+name, bytes.NewReader(data), int64(len(data)), "", nil)
	if errors.Is(err, errCondition) {
		// Taken, perhaps by a concurrent create: the caller reads back
		// what is there.
		return licensing.ErrArchiveExists
	}
	return err
}

// Read implements licensing.Archive.
func (a *s3Archive) Read(ctx context.Context, name string) ([]byte, error) {
	body, _, err := a.obj.get(ctx, a.dir+name)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return io.ReadAll(body)
}

// Size is the size of the current state.
func (s *Store) Size(ctx context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.sync(ctx); err != nil {
		return 0, err
	}
	info, err := os.Stat(s.path)
	if err != nil {
		return 0, err
	}
	return info.Size(), nil
}

// FreeBytes is the space of the current state's free pages.
func (s *Store) FreeBytes(ctx context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.sync(ctx); err != nil {
		return 0, err
	}
	return s.db.FreeBytes(ctx)
}

// Vacuum publishes a compacted state through the usual commit.
func (s *Store) Vacuum(ctx context.Context) error {
	return s.update(ctx, true, func(st *sqlitestore.WorkingCopy, opID string) (bool, error) {
		if err := st.Vacuum(ctx); err != nil {
			return false, err
		}
		now := time.Now().UTC()
		return st.UpdateOperation(ctx, opID, now, func(tx licensing.Tx) error {
			return tx.PutSetting("last_vacuum", []byte(now.Format(time.RFC3339)))
		})
	})
}

// ReportTTL is how long a report's link works (a link signed with a
// Lambda role's session stops working sooner, when the session ends).
const ReportTTL = 12 * time.Hour

// PublishReport puts an HTML page at reports/<name> in the database's
// bucket and returns a presigned link to it.
func (s *Store) PublishReport(ctx context.Context, name string, html []byte) (location, url string, expires time.Time, err error) {
	o, ok := s.obj.(*s3Objects)
	if !ok {
		return "", "", time.Time{}, licensing.Errorf(licensing.CodeConfig, "this store cannot publish reports")
	}
	key := "reports/" + name
	_, err = o.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &o.bucket, Key: &key, Body: bytes.NewReader(html),
		ContentLength: aws.Int64(int64(len(html))), ContentType: aws.String("text/html; charset=utf-8")})
	if err != nil {
		return "", "", time.Time{}, s.unavailable(o.describe(key, err))
	}
	req, err := s3.NewPresignClient(o.client).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &o.bucket, Key: &key},
		s3.WithPresignExpires(ReportTTL))
	if err != nil {
		return "", "", time.Time{}, licensing.Wrap(licensing.CodeInternal, err, "cannot sign a link to s3://%s/%s", o.bucket, key)
	}
	return "s3://" + o.bucket + "/" + key, req.URL, time.Now().Add(ReportTTL), nil
}
