package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"

	"github.com/caio-licensing/caio-licensing/shared/licensing"
)

// Outcomes of object operations that the protocol acts on.
var (
	errNoObject  = errors.New("object does not exist")
	errCondition = errors.New("conditional write lost: the object changed")
)

// objects is the part of S3 the store uses: one object, read with a
// conditional GET and written with a conditional PUT.
type objects interface {
	// get returns the object unless its ETag is ifNoneMatch (then
	// notModified). The caller closes body.
	get(ctx context.Context, ifNoneMatch string) (body io.ReadCloser, etag string, notModified bool, err error)
	// put writes the object if its ETag is still ifMatch ("" : if it does
	// not exist) and returns the new ETag; errCondition if it changed.
	put(ctx context.Context, body io.ReadSeeker, size int64, ifMatch string) (etag string, err error)
}

// s3Objects is objects on the AWS SDK.
type s3Objects struct {
	client      *s3.Client
	bucket, key string
}

func newS3Objects(ctx context.Context, bucket, key string) (*s3Objects, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, licensing.Wrap(licensing.CodeConfig, err, "AWS configuration: %v", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1" // S3-compatible servers ignore it; AWS needs one to sign
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return nil, licensing.Wrap(licensing.CodeConfig, err,
			"no AWS credentials for s3://%s/%s: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an IAM role", bucket, key)
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
	return &s3Objects{client: client, bucket: bucket, key: key}, nil
}

func (o *s3Objects) get(ctx context.Context, ifNoneMatch string) (io.ReadCloser, string, bool, error) {
	// ChecksumMode: where S3 holds a checksum of the object (the SDK sends
	// one with every PUT), the SDK checks the download against it.
	in := &s3.GetObjectInput{Bucket: &o.bucket, Key: &o.key, ChecksumMode: types.ChecksumModeEnabled}
	if ifNoneMatch != "" {
		in.IfNoneMatch = aws.String(ifNoneMatch)
	}
	out, err := o.client.GetObject(ctx, in)
	if err != nil {
		switch status(err) {
		case http.StatusNotModified:
			return nil, ifNoneMatch, true, nil
		case http.StatusNotFound:
			if code(err) == "NoSuchBucket" {
				return nil, "", false, o.describe(err)
			}
			return nil, "", false, errNoObject
		}
		return nil, "", false, o.describe(err)
	}
	return out.Body, aws.ToString(out.ETag), false, nil
}

func (o *s3Objects) put(ctx context.Context, body io.ReadSeeker, size int64, ifMatch string) (string, error) {
	in := &s3.PutObjectInput{Bucket: &o.bucket, Key: &o.key, Body: body,
		ContentLength: aws.Int64(size), ContentType: aws.String("application/vnd.sqlite3")}
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
		return "", o.describe(err)
	}
	return aws.ToString(out.ETag), nil
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
func (o *s3Objects) describe(err error) error {
	where := fmt.Sprintf("s3://%s/%s", o.bucket, o.key)
	switch c := code(err); {
	case c == "NoSuchBucket":
		return licensing.Wrap(licensing.CodeConfig, err, "bucket %s does not exist: check CAIO_LICENSE_DB_PATH", o.bucket)
	case c == "AccessDenied" || status(err) == http.StatusForbidden:
		return licensing.Wrap(licensing.CodeConfig, err, "access denied to %s: grant s3:GetObject and s3:PutObject on it (and s3:ListBucket on the bucket)", where)
	case c == "InvalidAccessKeyId" || c == "SignatureDoesNotMatch":
		return licensing.Wrap(licensing.CodeConfig, err, "AWS credentials rejected for %s (%s): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", where, c)
	}
	return err
}
