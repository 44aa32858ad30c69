package s3local_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/ferry-migrate/ferry/internal/s3local"
)

func client(srv *s3local.Server, id, secret string) *s3.Client {
	return s3.New(s3.Options{
		Region:                     srv.Region,
		BaseEndpoint:               aws.String(srv.Endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(id, secret, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		RetryMaxAttempts:           1,
	})
}

// The right key pair reads and writes; a wrong secret or unknown key is
// refused with S3's codes, as MinIO would.
func TestCredentialsEnforced(t *testing.T) {
	ctx := context.Background()
	srv, err := s3local.Start(ctx, s3local.Options{Buckets: []string{"b"}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	good := client(srv, srv.AccessKeyID, srv.SecretAccessKey)
	if _, err := good.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k/v"), Body: bytes.NewReader([]byte("hello"))}); err != nil {
		t.Fatal(err)
	}
	out, err := good.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k/v")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(out.Body)
	if string(body) != "hello" {
		t.Fatalf("got %q", body)
	}

	for _, tc := range []struct{ id, secret, code string }{
		{srv.AccessKeyID, "wrong", "SignatureDoesNotMatch"},
		{"nobody", srv.SecretAccessKey, "InvalidAccessKeyId"},
	} {
		_, err := client(srv, tc.id, tc.secret).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k/v")})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != tc.code {
			t.Errorf("%s/%s: err = %v, want %s", tc.id, tc.secret, err, tc.code)
		}
	}

	// Conditional create: the second If-None-Match: * write fails.
	put := func() error {
		_, err := good.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("lease"), Body: bytes.NewReader([]byte("x")), IfNoneMatch: aws.String("*")})
		return err
	}
	if err := put(); err != nil {
		t.Fatal(err)
	}
	if err := put(); err == nil {
		t.Fatal("second conditional create succeeded")
	}
}

// Start ends with its context.
func TestStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := s3local.Start(ctx, s3local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	srv.Close() // waits for the server to stop; must not hang
	_, err = client(srv, srv.AccessKeyID, srv.SecretAccessKey).ListBuckets(context.Background(), &s3.ListBucketsInput{})
	if err == nil {
		t.Fatal("server still answers after its context ended")
	}
}
