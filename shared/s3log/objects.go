package s3log

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/caio-licensing/caio-licensing/shared/awsconf"
)

// Objects is the part of S3 the log uses, on keys in one bucket: the one
// seam between the protocol and the SDK, which whatever else keeps
// objects beside the database (archives, reports) goes through too.
//
// Its errors: ErrNoObject, ErrPreconditionFailed, a *ConfigError for what
// configuration causes, and the SDK's own (transport) errors otherwise.
type Objects interface {
	// Get returns key's content and what S3 says of it. The caller closes
	// body.
	Get(ctx context.Context, key string) (body io.ReadCloser, info ObjectInfo, err error)
	Head(ctx context.Context, key string) (ObjectInfo, error)
	// Put writes key, under opt's condition if it has one.
	Put(ctx context.Context, key string, body io.ReadSeeker, size int64, opt PutOptions) (etag string, err error)
	// Copy copies src, if its ETag is srcETag, to dst (server side).
	Copy(ctx context.Context, src, srcETag, dst string) error
	List(ctx context.Context, prefix string) ([]Listed, error)
	// ListAfter lists the keys under prefix that sort after startAfter,
	// in order: one request when they fit in a page (1,000 keys).
	ListAfter(ctx context.Context, prefix, startAfter string) ([]Listed, error)
	// ListPage is the first page of ListAfter (up to 1,000 keys), and
	// whether more follow: one request.
	ListPage(ctx context.Context, prefix, startAfter string) (page []Listed, more bool, err error)
	// First is the first key under prefix, if any: one request.
	First(ctx context.Context, prefix string) (Listed, bool, error)
	Remove(ctx context.Context, keys []string) error
	// PresignGet returns a link that reads key, valid for ttl, without
	// credentials. It sends no request.
	PresignGet(ctx context.Context, key string, ttl time.Duration) (url string, err error)
	// Bucket names the bucket, for messages.
	Bucket() string
}

// ObjectInfo is what a GET or HEAD says about an object.
type ObjectInfo struct {
	ETag     string
	Meta     map[string]string
	Modified time.Time
}

// Listed is one object of a listing.
type Listed struct {
	Key      string
	Size     int64
	Modified time.Time
}

// PutOptions are a Put's condition and headers.
type PutOptions struct {
	// IfAbsent writes only if the key does not exist (If-None-Match: *);
	// IfMatch only over the object with this ETag. Either condition,
	// failed, is ErrPreconditionFailed. With neither, Put overwrites.
	IfAbsent bool
	IfMatch  string
	// ContentType is "" for application/octet-stream.
	ContentType string
	Meta        map[string]string
}

// s3Objects is Objects on the AWS SDK.
type s3Objects struct {
	client *s3.Client
	bucket string
}

// DialS3 returns the objects of bucket through the AWS configuration
// awsconf gives (the environment in a function; the SDK's whole chain,
// profiles and roles, in the CLI). It checks that credentials exist; it
// sends no request to S3.
func DialS3(ctx context.Context, bucket string) (Objects, error) {
	cfg, err := awsconf.Load(ctx)
	if err != nil {
		return nil, &ConfigError{Reason: ErrAWSConfig, Bucket: bucket, Err: err}
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return nil, &ConfigError{Reason: ErrNoCredentials, Bucket: bucket, Err: err}
	}
	endpoint, variable := awsconf.EndpointFrom("S3")
	if u, err := url.Parse(endpoint); endpoint != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		return nil, &ConfigError{Reason: ErrBadEndpoint, Bucket: bucket, Endpoint: endpoint, EndpointVar: variable, Err: ErrBadEndpoint}
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		// Validate downloads where the GET asks for it (ChecksumMode).
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		// S3-compatible servers (AWS_ENDPOINT_URL_S3) address buckets by path.
		if endpoint != "" {
			o.BaseEndpoint, o.UsePathStyle = aws.String(endpoint), true
		}
	})
	return &s3Objects{client: client, bucket: bucket}, nil
}

func (o *s3Objects) Bucket() string { return o.bucket }

func (o *s3Objects) Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	// ChecksumMode: where S3 holds a checksum of the object (the SDK sends
	// one with every PUT), the SDK checks the download against it.
	out, err := o.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &o.bucket, Key: &key, ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		if missing(err) {
			return nil, ObjectInfo{}, ErrNoObject
		}
		return nil, ObjectInfo{}, o.describe(key, err)
	}
	return out.Body, ObjectInfo{ETag: aws.ToString(out.ETag), Meta: out.Metadata, Modified: aws.ToTime(out.LastModified)}, nil
}

func (o *s3Objects) Head(ctx context.Context, key string) (ObjectInfo, error) {
	out, err := o.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &o.bucket, Key: &key})
	if err != nil {
		if missing(err) {
			return ObjectInfo{}, ErrNoObject
		}
		return ObjectInfo{}, o.describe(key, err)
	}
	return ObjectInfo{ETag: aws.ToString(out.ETag), Meta: out.Metadata, Modified: aws.ToTime(out.LastModified)}, nil
}

func (o *s3Objects) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, opt PutOptions) (string, error) {
	contentType := opt.ContentType
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	in := &s3.PutObjectInput{Bucket: &o.bucket, Key: &key, Body: body,
		ContentLength: aws.Int64(size), ContentType: aws.String(contentType), Metadata: opt.Meta}
	switch {
	case opt.IfMatch != "":
		in.IfMatch = aws.String(opt.IfMatch)
	case opt.IfAbsent:
		in.IfNoneMatch = aws.String("*")
	}
	out, err := o.client.PutObject(ctx, in)
	if err != nil {
		conditional := in.IfMatch != nil || in.IfNoneMatch != nil
		switch status(err) {
		// 412: the condition failed; 409: a concurrent conditional write
		// (AWS asks to retry); 404: If-Match on an object that vanished.
		case http.StatusPreconditionFailed, http.StatusConflict:
			if conditional {
				return "", ErrPreconditionFailed
			}
		case http.StatusNotFound:
			if conditional && missing(err) {
				return "", ErrPreconditionFailed
			}
		}
		return "", o.describe(key, err)
	}
	return aws.ToString(out.ETag), nil
}

func (o *s3Objects) Copy(ctx context.Context, src, srcETag, dst string) error {
	_, err := o.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &o.bucket, Key: &dst,
		CopySource: aws.String(o.bucket + "/" + src), CopySourceIfMatch: aws.String(srcETag)})
	if err != nil {
		return o.describe(src, err)
	}
	return nil
}

func (o *s3Objects) List(ctx context.Context, prefix string) ([]Listed, error) {
	return o.ListAfter(ctx, prefix, "")
}

func (o *s3Objects) First(ctx context.Context, prefix string) (Listed, bool, error) {
	out, err := o.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &o.bucket, Prefix: &prefix, MaxKeys: aws.Int32(1)})
	if err != nil {
		return Listed{}, false, o.describe(prefix, err)
	}
	if len(out.Contents) == 0 {
		return Listed{}, false, nil
	}
	c := out.Contents[0]
	return Listed{Key: aws.ToString(c.Key), Size: aws.ToInt64(c.Size), Modified: aws.ToTime(c.LastModified)}, true, nil
}

func (o *s3Objects) ListPage(ctx context.Context, prefix, startAfter string) ([]Listed, bool, error) {
	in := &s3.ListObjectsV2Input{Bucket: &o.bucket, Prefix: &prefix}
	if startAfter != "" {
		in.StartAfter = &startAfter
	}
	page, err := o.client.ListObjectsV2(ctx, in)
	if err != nil {
		return nil, false, o.describe(prefix, err)
	}
	out := make([]Listed, 0, len(page.Contents))
	for _, c := range page.Contents {
		out = append(out, Listed{Key: aws.ToString(c.Key), Size: aws.ToInt64(c.Size), Modified: aws.ToTime(c.LastModified)})
	}
	return out, aws.ToBool(page.IsTruncated), nil
}

func (o *s3Objects) ListAfter(ctx context.Context, prefix, startAfter string) ([]Listed, error) {
	var out []Listed
	in := &s3.ListObjectsV2Input{Bucket: &o.bucket, Prefix: &prefix}
	if startAfter != "" {
		in.StartAfter = &startAfter
	}
	p := s3.NewListObjectsV2Paginator(o.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, o.describe(prefix, err)
		}
		for _, c := range page.Contents {
			out = append(out, Listed{Key: aws.ToString(c.Key), Size: aws.ToInt64(c.Size), Modified: aws.ToTime(c.LastModified)})
		}
	}
	return out, nil
}

func (o *s3Objects) Remove(ctx context.Context, keys []string) error {
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		ids := make([]types.ObjectIdentifier, n)
		for i, k := range keys[:n] {
			ids[i] = types.ObjectIdentifier{Key: aws.String(k)}
		}
		out, err := o.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &o.bucket, Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
		if err != nil {
			return o.describe(keys[0], err)
		}
		if len(out.Errors) > 0 {
			return fmt.Errorf("deleting %s: %s", aws.ToString(out.Errors[0].Key), aws.ToString(out.Errors[0].Message))
		}
		keys = keys[n:]
	}
	return nil
}

func (o *s3Objects) PresignGet(ctx context.Context, key string, ttl time.Duration) (string, error) {
	req, err := s3.NewPresignClient(o.client).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &o.bucket, Key: &key},
		s3.WithPresignExpires(ttl))
	if err != nil {
		return "", err
	}
	return req.URL, nil
}

// isChecksumMismatch reports a download that does not match the checksum S3
// stored with the object: damage in storage, not a transport failure. The
// SDK's error type for it is unexported; its message is what it gives.
func isChecksumMismatch(err error) bool {
	return err != nil && strings.Contains(err.Error(), "checksum did not match")
}

func status(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// describe turns S3 errors that configuration causes into a ConfigError;
// anything else stays a transport error (unknown outcome).
func (o *s3Objects) describe(key string, err error) error {
	switch c := code(err); {
	case c == "NoSuchBucket":
		return &ConfigError{Reason: ErrNoBucket, Bucket: o.bucket, Key: key, Code: c, Err: err}
	// Before access denied: rejected credentials come with a 403 too, and
	// the fix is the credentials, not the policy.
	case rejected(err):
		return &ConfigError{Reason: ErrCredentialsRejected, Bucket: o.bucket, Key: key, Code: c, Err: err}
	case c == "AccessDenied" || status(err) == http.StatusForbidden:
		return &ConfigError{Reason: ErrAccessDenied, Bucket: o.bucket, Key: key, Code: c, Err: err}
	}
	return err
}

// missing: the object (not the bucket) does not exist. A 404 says so only
// with S3's codes for it, or with none (a HEAD has no body): versitygw
// answers an unknown access key with a 404 of its own code, which must not
// read as an empty database.
func missing(err error) bool {
	if status(err) != http.StatusNotFound {
		return false
	}
	switch code(err) {
	case "", "NoSuchKey", "NotFound":
		return true
	}
	return false
}

// rejected: S3 (or an S3-compatible server) did not accept the credentials
// themselves: unknown, wrongly signed with, or expired.
func rejected(err error) bool {
	switch code(err) {
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "XAdminUserNotFound":
		return true
	}
	return false
}
