package s3test

import (
	"bytes"
	"context"
	"encoding/base64"
	"hash/crc32"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Client returns an SDK client for the server.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.URL),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		// gofakes3 keeps a checksum header as the client states it but does
		// not read a trailing one (the SDK's default): PutObject states it.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
	})
}

func getObject(t testing.TB, s *Server, key string) []byte {
	t.Helper()
	out, err := s.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(Bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get s3://%s/%s: %v", Bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// PutObject writes an object directly (to plant a bad one).
func (s *Server) PutObject(t testing.TB, key string, body []byte) {
	t.Helper()
	sum := crc32.ChecksumIEEE(body)
	crc := base64.StdEncoding.EncodeToString([]byte{byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)})
	_, err := s.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(Bucket), Key: aws.String(key),
		Body: bytes.NewReader(body), ChecksumCRC32: aws.String(crc)})
	if err != nil {
		t.Fatal(err)
	}
}

// PutObjectMeta writes an object with user metadata (a forged snapshot).
func (s *Server) PutObjectMeta(t testing.TB, key string, body []byte, meta map[string]string) {
	t.Helper()
	sum := crc32.ChecksumIEEE(body)
	crc := base64.StdEncoding.EncodeToString([]byte{byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)})
	_, err := s.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(Bucket), Key: aws.String(key),
		Body: bytes.NewReader(body), ChecksumCRC32: aws.String(crc), Metadata: meta})
	if err != nil {
		t.Fatal(err)
	}
}
