package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
	"github.com/caio-licensing/caio-licensing/shared/sqlitestore"
)

// Outcomes of object operations that the protocol acts on.
var (
	errNoObject  = errors.New("object does not exist")
	errCondition = errors.New("conditional write lost: the object changed")
)

// objInfo is what a GET or HEAD says about an object.
type objInfo struct {
	etag     string
	meta     map[string]string
	modified time.Time
}

// listed is one object of a listing.
type listed struct {
	key      string
	modified time.Time
}

// objects is the part of S3 the store uses, on keys in one bucket.
type objects interface {
	// get returns key, or errNoObject. The caller closes body.
	get(ctx context.Context, key string) (body io.ReadCloser, info objInfo, err error)
	head(ctx context.Context, key string) (objInfo, error)
	// put writes key if its ETag is still ifMatch, or, with ifMatch "",
	// if it does not exist; errCondition otherwise.
	put(ctx context.Context, key string, body io.ReadSeeker, size int64, ifMatch string, meta map[string]string) (etag string, err error)
	// copy copies src, if its ETag is srcETag, to dst (server side).
	copy(ctx context.Context, src, srcETag, dst string) error
	list(ctx context.Context, prefix string) ([]listed, error)
	remove(ctx context.Context, keys []string) error
	bucketName() string
}

// s3Objects is objects on the AWS SDK.
type s3Objects struct {
	client *s3.Client
	bucket string
}

func newS3Objects(ctx context.Context, bucket string) (*s3Objects, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, licensing.Wrap(licensing.CodeConfig, err, "AWS configuration: %v", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1" // S3-compatible servers ignore it; AWS needs one to sign
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return nil, licensing.Wrap(licensing.CodeConfig, err,
			"no AWS credentials for s3://%s: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an IAM role", bucket)
	}
	// The SDK's own log lines would land in the CLI's output.
	cfg.Logger = logging.Nop{}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		// Validate downloads where the GET asks for it (ChecksumMode).
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		// S3-compatible servers (AWS_ENDPOINT_URL_S3) address buckets by path.
		if os.Getenv("AWS_ENDPOINT_URL_S3") != "" || os.Getenv("AWS_ENDPOINT_URL") != "" {
			o.UsePathStyle = true
		}
	})
	return &s3Objects{client: client, bucket: bucket}, nil
}

func (o *s3Objects) bucketName() string { return o.bucket }

func (o *s3Objects) get(ctx context.Context, key string) (io.ReadCloser, objInfo, error) {
	// ChecksumMode: where S3 holds a checksum of the object (the SDK sends
	// one with every PUT), the SDK checks the download against it.
	out, err := o.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &o.bucket, Key: &key, ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		if status(err) == http.StatusNotFound && code(err) != "NoSuchBucket" {
			return nil, objInfo{}, errNoObject
		}
		return nil, objInfo{}, o.describe(key, err)
	}
	return out.Body, objInfo{etag: aws.ToString(out.ETag), meta: out.Metadata, modified: aws.ToTime(out.LastModified)}, nil
}

func (o *s3Objects) head(ctx context.Context, key string) (objInfo, error) {
	out, err := o.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &o.bucket, Key: &key})
	if err != nil {
		if status(err) == http.StatusNotFound && code(err) != "NoSuchBucket" {
			return objInfo{}, errNoObject
		}
		return objInfo{}, o.describe(key, err)
	}
	return objInfo{etag: aws.ToString(out.ETag), meta: out.Metadata, modified: aws.ToTime(out.LastModified)}, nil
}

func (o *s3Objects) put(ctx context.Context, key string, body io.ReadSeeker, size int64, ifMatch string, meta map[string]string) (string, error) {
	in := &s3.PutObjectInput{Bucket: &o.bucket, Key: &key, Body: body,
		ContentLength: aws.Int64(size), ContentType: aws.String("application/octet-stream"), Metadata: meta}
	if ifMatch == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(ifMatch)
	}
	out, err := o.client.PutObject(ctx, in)
	if err != nil {
		switch status(err) {
		// 412: the condition failed; 409: a concurrent conditional write
		// (AWS asks to retry); 404: If-Match on an object that vanished.
		case http.StatusPreconditionFailed, http.StatusConflict, http.StatusNotFound:
			if code(err) != "NoSuchBucket" {
				return "", errCondition
			}
		}
		return "", o.describe(key, err)
	}
	return aws.ToString(out.ETag), nil
}

func (o *s3Objects) copy(ctx context.Context, src, srcETag, dst string) error {
	_, err := o.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &o.bucket, Key: &dst,
		CopySource: aws.String(o.bucket + "/" + src), CopySourceIfMatch: aws.String(srcETag)})
	if err != nil {
		return o.describe(src, err)
	}
	return nil
}

func (o *s3Objects) list(ctx context.Context, prefix string) ([]listed, error) {
	var out []listed
	p := s3.NewListObjectsV2Paginator(o.client, &s3.ListObjectsV2Input{Bucket: &o.bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, o.describe(prefix, err)
		}
		for _, c := range page.Contents {
			out = append(out, listed{key: aws.ToString(c.Key), modified: aws.ToTime(c.LastModified)})
		}
	}
	return out, nil
}

func (o *s3Objects) remove(ctx context.Context, keys []string) error {
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

// describe turns S3 errors that configuration causes into one line that
// says what to fix; anything else stays a transport error (unknown outcome).
func (o *s3Objects) describe(key string, err error) error {
	where := fmt.Sprintf("s3://%s/%s", o.bucket, key)
	switch c := code(err); {
	case c == "NoSuchBucket":
		return licensing.Wrap(licensing.CodeConfig, errors.Join(sqlitestore.ErrWrongFile, err), "bucket %s does not exist", o.bucket)
	case c == "AccessDenied" || status(err) == http.StatusForbidden:
		return licensing.Wrap(licensing.CodeConfig, err, "access denied to %s: grant s3:GetObject and s3:PutObject on it (and s3:ListBucket on the bucket)", where)
	case c == "InvalidAccessKeyId" || c == "SignatureDoesNotMatch":
		return licensing.Wrap(licensing.CodeConfig, err, "AWS credentials rejected for %s (%s): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", where, c)
	}
	return err
}
