// Package s3local runs an in-process, in-memory S3 server on loopback.
//
// It is the object store of `ferry rehearse` (no network, nothing to
// install) and of fast unit tests. It checks AWS Signature V4 on every
// request against the one key pair it was started with, so a wrong secret
// fails as it would against MinIO. The litestream CLI works against it.
package s3local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Options configures Start. Zero values pick defaults.
type Options struct {
	// Addr to listen on; default 127.0.0.1:0 (a free loopback port).
	Addr string
	// AccessKeyID and SecretAccessKey are the only accepted credentials;
	// random when empty.
	AccessKeyID     string
	SecretAccessKey string
	// Region the signatures are checked against; default us-east-1.
	Region string
	// Buckets to create.
	Buckets []string
	Logger  *slog.Logger
}

// Server is a running in-memory S3 server.
type Server struct {
	Endpoint        string // http://127.0.0.1:port
	Region          string
	AccessKeyID     string
	SecretAccessKey string

	backend *s3mem.Backend
	srv     *http.Server
	done    chan struct{}
}

// Start listens and serves until ctx ends or Close is called.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.AccessKeyID == "" {
		opts.AccessKeyID = "ferry" + randHex(8)
	}
	if opts.SecretAccessKey == "" {
		opts.SecretAccessKey = randHex(20)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("s3local: %w", err)
	}
	s := &Server{
		Endpoint:        "http://" + ln.Addr().String(),
		Region:          opts.Region,
		AccessKeyID:     opts.AccessKeyID,
		SecretAccessKey: opts.SecretAccessKey,
		backend:         s3mem.New(),
		done:            make(chan struct{}),
	}
	for _, b := range opts.Buckets {
		if err := s.CreateBucket(b); err != nil {
			ln.Close()
			return nil, err
		}
	}
	fake := gofakes3.New(s.backend, gofakes3.WithoutVersioning(), gofakes3.WithLogger(gofakes3.DiscardLog()))
	s.srv = &http.Server{
		Handler:           s.authenticate(fake.Server(), opts.Logger),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			opts.Logger.Error("s3local serve", "err", err)
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-s.done:
		}
	}()
	return s, nil
}

// CreateBucket creates a bucket; an existing one is not an error.
func (s *Server) CreateBucket(name string) error {
	if err := s.backend.CreateBucket(name); err != nil && !gofakes3.HasErrorCode(err, gofakes3.ErrBucketAlreadyExists) {
		return fmt.Errorf("s3local: create bucket %s: %w", name, err)
	}
	return nil
}

// Close stops the server.
func (s *Server) Close() error {
	err := s.srv.Close()
	<-s.done
	return err
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// authenticate verifies a request's SigV4 header signature by signing a
// copy of it, holding only the headers the client signed, with the
// server's secret, and comparing.
func (s *Server) authenticate(next http.Handler, logger *slog.Logger) http.Handler {
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	creds := aws.Credentials{AccessKeyID: s.AccessKeyID, SecretAccessKey: s.SecretAccessKey}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		cred, signed, sig, ok := parseAuth(auth)
		if !ok {
			deny(w, "AccessDenied", "request is not signed with AWS Signature V4")
			return
		}
		if !strings.HasPrefix(cred, s.AccessKeyID+"/") {
			deny(w, "InvalidAccessKeyId", "the access key id does not exist")
			return
		}
		date, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
		if err != nil {
			deny(w, "AccessDenied", "missing X-Amz-Date")
			return
		}
		payload := r.Header.Get("X-Amz-Content-Sha256")
		if payload == "" {
			payload = "UNSIGNED-PAYLOAD"
		}
		c := &http.Request{Method: r.Method, URL: r.URL, Host: r.Host, Header: http.Header{}, ContentLength: r.ContentLength, Body: http.NoBody}
		for _, h := range signed {
			if h == "host" {
				continue
			}
			if h == "content-length" {
				continue // from ContentLength
			}
			if v, ok := r.Header[http.CanonicalHeaderKey(h)]; ok {
				c.Header[http.CanonicalHeaderKey(h)] = v
			}
		}
		region := s.Region
		if parts := strings.Split(cred, "/"); len(parts) >= 3 {
			region = parts[2]
		}
		if err := signer.SignHTTP(r.Context(), creds, c, payload, "s3", region, date); err != nil {
			deny(w, "AccessDenied", "cannot check signature")
			return
		}
		if _, _, want, _ := parseAuth(c.Header.Get("Authorization")); want != sig {
			logger.Debug("s3local: signature mismatch", "method", r.Method, "path", r.URL.Path)
			deny(w, "SignatureDoesNotMatch", "the request signature we calculated does not match the signature you provided")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// parseAuth splits "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...".
func parseAuth(h string) (cred string, signed []string, sig string, ok bool) {
	rest, found := strings.CutPrefix(h, "AWS4-HMAC-SHA256 ")
	if !found {
		return "", nil, "", false
	}
	for _, kv := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			signed = strings.Split(v, ";")
		case "Signature":
			sig = v
		}
	}
	return cred, signed, sig, cred != "" && sig != ""
}

func deny(w http.ResponseWriter, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusForbidden)
	io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>`+code+`</Code><Message>`+msg+`</Message></Error>`)
}
