// Package s3test runs real S3 servers for tests: a versitygw process (a
// signature-checking S3 gateway on a temp directory) and the in-process
// s3local, behind one type, plus a fault-injecting proxy to put between
// ferry and either.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	ferry "github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/internal/s3local"
	"github.com/ferry-migrate/ferry/internal/testenv"
)

// Server is a running S3 server with one key pair.
type Server struct {
	Kind            string // "versitygw" or "s3local"
	Endpoint        string
	Region          string
	AccessKeyID     string
	SecretAccessKey string
	Dir             string // versitygw's backing directory
}

// Store returns a path-style ferry.ObjectStore for bucket on this server.
func (s *Server) Store(bucket string) ferry.ObjectStore {
	return ferry.ObjectStore{Endpoint: s.Endpoint, Bucket: bucket, Region: s.Region, PathStyle: true}
}

// Client returns a plain S3 client for the server, for test set-up and raw
// PUT/GET baselines.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKeyID, s.SecretAccessKey, ""),
		HTTPClient:   &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}},
		// Checksums in trailers (aws-chunked) are not what litestream sends.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// CreateBucket creates a bucket (random name when empty) and returns its
// name.
func (s *Server) CreateBucket(t testing.TB, name string) string {
	t.Helper()
	if name == "" {
		name = "b" + randHex(6)
	}
	_, err := s.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)})
	if err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	return name
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Versitygw starts a versitygw process on a free loopback port with a temp
// directory backend and random credentials, stopped when t ends. It skips
// t (testenv.Skip) when versitygw is not installed.
func Versitygw(t testing.TB) *Server {
	t.Helper()
	bin := testenv.LookPath(t, "versitygw")
	s := &Server{
		Kind:            "versitygw",
		Region:          "us-east-1",
		AccessKeyID:     "AK" + strings.ToUpper(randHex(8)),
		SecretAccessKey: randHex(20),
		Dir:             t.TempDir(),
	}
	for attempt := 0; ; attempt++ {
		addr := freeAddr(t)
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, bin, "--port", addr, "--access", s.AccessKeyID, "--secret", s.SecretAccessKey, "--region", s.Region, "posix", s.Dir)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatalf("start versitygw: %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		s.Endpoint = "http://" + addr
		if err := waitHTTP(s.Endpoint, exited, 20*time.Second); err != nil {
			cancel()
			<-exited
			if attempt < 2 {
				continue // the port may have been taken meanwhile
			}
			t.Fatalf("versitygw did not come up: %v\n%s", err, out.String())
		}
		t.Cleanup(func() { cancel(); <-exited })
		return s
	}
}

// Local starts an s3local server, stopped when t ends.
func Local(t testing.TB) *Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := s3local.Start(ctx, s3local.Options{})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); srv.Close() })
	return &Server{Kind: "s3local", Endpoint: srv.Endpoint, Region: srv.Region, AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey}
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitHTTP polls url until it answers any HTTP status, the process exits,
// or the deadline passes.
func waitHTTP(url string, exited <-chan struct{}, d time.Duration) error {
	deadline := time.Now().Add(d)
	c := &http.Client{Timeout: time.Second}
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-exited:
			return errors.New("process exited")
		case <-time.After(delay):
		}
	}
}
