package litestream

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	ls "github.com/benbjohnson/litestream"
	"github.com/pierrec/lz4/v4"
	"github.com/superfly/ltx"

	ferry "github.com/ferry-migrate/ferry"
)

// s3Client is a litestream.ReplicaClient (and ReplicaClientV3) that lays
// objects out exactly as litestream's own s3 client does
// (<path>/<level %04x>/<min>-<max>.ltx with the litestream-timestamp
// metadata, and v0.3's <path>/generations/...), so replicas are
// interchangeable with the litestream CLI.
//
// It exists instead of litestream's s3.ReplicaClient because that one
// loads the AWS shared config, which fails when AWS_CA_BUNDLE is set
// ("has no WithTransportOptions"); here the HTTP client is built once,
// with the bundle in its root CAs, per-request timeouts and retries that
// stop at once on permanent errors.
type s3Client struct {
	s3       *s3.Client
	uploader *manager.Uploader
	bucket   string
	prefix   string // replica path without trailing slash
	logger   *slog.Logger
	counter  func(n int64)
}

var (
	_ ls.ReplicaClient   = (*s3Client)(nil)
	_ ls.ReplicaClientV3 = (*s3Client)(nil)
)

// metaTimestamp is litestream's metadata key for an LTX file's time.
const metaTimestamp = "litestream-timestamp"

// clientOptions are the knobs tests turn; zero means default.
type clientOptions struct {
	RequestTimeout time.Duration // time to response headers; default 30s
	MaxAttempts    int           // per request; default 8
}

func newS3Client(store ferry.ObjectStore, prefix string, creds Credentials, opt clientOptions, logger *slog.Logger) (*s3Client, error) {
	if store.Bucket == "" {
		return nil, errors.New("bucket required")
	}
	if opt.RequestTimeout == 0 {
		opt.RequestTimeout = 30 * time.Second
	}
	if opt.MaxAttempts == 0 {
		opt.MaxAttempts = 8
	}
	hc, err := httpClient(opt.RequestTimeout)
	if err != nil {
		return nil, err
	}
	region := store.Region
	if region == "" {
		region = "us-east-1"
	}
	o := s3.Options{
		Region:       region,
		UsePathStyle: store.PathStyle,
		HTTPClient:   hc,
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = opt.MaxAttempts
			o.MaxBackoff = time.Second
			o.RateLimiter = ratelimit.None
			// A certificate the client does not trust stays untrusted.
			o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(notCertError)}, o.Retryables...)
			o.Retryables = append(o.Retryables, retry.RetryableHTTPStatusCode{Codes: map[int]struct{}{
				http.StatusRequestTimeout: {}, http.StatusTooManyRequests: {},
			}})
		}),
		// S3-compatible servers do not all speak aws-chunked trailers.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if creds.AccessKeyID != "" {
		o.Credentials = credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, "")
	} else {
		o.Credentials = aws.AnonymousCredentials{}
	}
	if store.Endpoint != "" {
		ep := store.Endpoint
		if !strings.Contains(ep, "://") {
			ep = "https://" + ep
		}
		o.BaseEndpoint = aws.String(ep)
	}
	c := s3.New(o)
	return &s3Client{
		s3: c,
		uploader: manager.NewUploader(c, func(u *manager.Uploader) {
			u.PartSize = 16 << 20
			u.Concurrency = 4
			u.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		}),
		bucket: store.Bucket,
		prefix: strings.Trim(prefix, "/"),
		logger: logger,
	}, nil
}

// httpClient trusts the system roots plus AWS_CA_BUNDLE when set, and
// bounds the wait for response headers so a stalled server is retried
// rather than waited on forever.
func httpClient(timeout time.Duration) (*http.Client, error) {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: timeout,
		ForceAttemptHTTP2:     true,
	}
	if bundle := os.Getenv("AWS_CA_BUNDLE"); bundle != "" {
		pem, err := os.ReadFile(bundle)
		if err != nil {
			return nil, fmt.Errorf("read AWS_CA_BUNDLE: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("AWS_CA_BUNDLE %s holds no PEM certificates", bundle)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr}, nil
}

func (c *s3Client) Type() string                   { return "s3" }
func (c *s3Client) Init(ctx context.Context) error { return nil }
func (c *s3Client) SetLogger(logger *slog.Logger)  { c.logger = logger }
func (c *s3Client) key(elem ...string) string {
	return path.Join(append([]string{c.prefix}, elem...)...)
}
func (c *s3Client) levelPrefix(level int) string { return c.key(fmt.Sprintf("%04x", level)) + "/" }
func (c *s3Client) ltxKey(level int, lo, hi ltx.TXID) string {
	return c.levelPrefix(level) + ltx.FormatFilename(lo, hi)
}

// list returns every object under prefix.
func (c *s3Client) list(ctx context.Context, prefix string) ([]object, error) {
	p := s3.NewListObjectsV2Paginator(c.s3, &s3.ListObjectsV2Input{Bucket: aws.String(c.bucket), Prefix: aws.String(prefix)})
	var out []object
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify("list "+prefix, err)
		}
		for _, o := range page.Contents {
			out = append(out, object{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size), Modified: aws.ToTime(o.LastModified).UTC()})
		}
	}
	return out, nil
}

type object struct {
	Key      string
	Size     int64
	Modified time.Time
}

func (c *s3Client) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	objs, err := c.list(ctx, c.levelPrefix(level))
	if err != nil {
		return nil, err
	}
	var infos []*ltx.FileInfo
	for _, o := range objs {
		lo, hi, err := ltx.ParseFilename(path.Base(o.Key))
		if err != nil || lo < seek {
			continue
		}
		infos = append(infos, &ltx.FileInfo{Level: level, MinTXID: lo, MaxTXID: hi, Size: o.Size, CreatedAt: o.Modified})
	}
	if useMetadata {
		if err := c.fetchTimestamps(ctx, infos); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(infos, func(a, b *ltx.FileInfo) int { return cmp.Compare(a.MinTXID, b.MinTXID) })
	return ltx.NewFileInfoSliceIterator(infos), nil
}

// fetchTimestamps reads each file's litestream-timestamp metadata (the
// time of the transaction, which LastModified is not).
func (c *s3Client) fetchTimestamps(ctx context.Context, infos []*ltx.FileInfo) error {
	sem := make(chan struct{}, 16)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for _, info := range infos {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out, err := c.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(c.ltxKey(info.Level, info.MinTXID, info.MaxTXID))})
			if err != nil {
				mu.Lock()
				first = cmpErr(first, classify("head ltx", err))
				mu.Unlock()
				return
			}
			if ts, err := time.Parse(time.RFC3339Nano, out.Metadata[metaTimestamp]); err == nil {
				info.CreatedAt = ts
			}
		}()
	}
	wg.Wait()
	return first
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func (c *s3Client) get(ctx context.Context, key, rng string) (io.ReadCloser, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(key)}
	if rng != "" {
		in.Range = aws.String(rng)
	}
	out, err := c.s3.GetObject(ctx, in)
	if err != nil {
		if isNotFound(err) {
			return nil, os.ErrNotExist
		}
		return nil, classify("get "+key, err)
	}
	return &countingReader{ReadCloser: out.Body, count: c.counter}, nil
}

func (c *s3Client) OpenLTXFile(ctx context.Context, level int, lo, hi ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	rng := ""
	switch {
	case size > 0:
		rng = fmt.Sprintf("bytes=%d-%d", offset, offset+size-1)
	case offset > 0:
		rng = fmt.Sprintf("bytes=%d-", offset)
	}
	return c.get(ctx, c.ltxKey(level, lo, hi), rng)
}

func (c *s3Client) WriteLTXFile(ctx context.Context, level int, lo, hi ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	key := c.ltxKey(level, lo, hi)
	// The header carries the transaction time that litestream stores as
	// metadata for point-in-time restore.
	var head bytes.Buffer
	hdr, _, err := ltx.PeekHeader(io.TeeReader(r, &head))
	if err != nil {
		return nil, fmt.Errorf("write %s: read ltx header: %w", key, err)
	}
	ts := time.UnixMilli(hdr.Timestamp).UTC()
	body := &countingReader{ReadCloser: io.NopCloser(io.MultiReader(&head, r)), count: c.counter}
	_, err = c.uploader.Upload(ctx, &s3.PutObjectInput{
		Bucket:   aws.String(c.bucket),
		Key:      aws.String(key),
		Body:     body,
		Metadata: map[string]string{metaTimestamp: ts.Format(time.RFC3339Nano)},
	})
	if err != nil {
		return nil, classify("put "+key, err)
	}
	return &ltx.FileInfo{Level: level, MinTXID: lo, MaxTXID: hi, Size: body.n, CreatedAt: ts}, nil
}

func (c *s3Client) DeleteLTXFiles(ctx context.Context, a []*ltx.FileInfo) error {
	for _, info := range a {
		if err := c.delete(ctx, c.ltxKey(info.Level, info.MinTXID, info.MaxTXID)); err != nil {
			return err
		}
	}
	return nil
}

func (c *s3Client) delete(ctx context.Context, key string) error {
	_, err := c.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(key)})
	if err != nil && !isNotFound(err) {
		return classify("delete "+key, err)
	}
	return nil
}

// DeleteAll deletes every object under the replica path, lease included.
func (c *s3Client) DeleteAll(ctx context.Context) error {
	objs, err := c.list(ctx, c.prefix+"/")
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := c.delete(ctx, o.Key); err != nil {
			return err
		}
	}
	return nil
}

// v0.3 layout, read only.

func (c *s3Client) GenerationsV3(ctx context.Context) ([]string, error) {
	root := ls.GenerationsPathV3(c.prefix) + "/"
	objs, err := c.list(ctx, root)
	if err != nil {
		return nil, err
	}
	var gens []string
	for _, o := range objs {
		g, _, _ := strings.Cut(strings.TrimPrefix(o.Key, root), "/")
		if ls.IsGenerationIDV3(g) {
			gens = append(gens, g)
		}
	}
	slices.Sort(gens)
	return slices.Compact(gens), nil
}

func (c *s3Client) SnapshotsV3(ctx context.Context, gen string) ([]ls.SnapshotInfoV3, error) {
	objs, err := c.list(ctx, ls.SnapshotsPathV3(c.prefix, gen)+"/")
	if err != nil {
		return nil, err
	}
	var out []ls.SnapshotInfoV3
	for _, o := range objs {
		idx, err := ls.ParseSnapshotFilenameV3(path.Base(o.Key))
		if err != nil {
			continue
		}
		out = append(out, ls.SnapshotInfoV3{Generation: gen, Index: idx, Size: o.Size, CreatedAt: o.Modified})
	}
	slices.SortFunc(out, func(a, b ls.SnapshotInfoV3) int { return a.Index - b.Index })
	return out, nil
}

func (c *s3Client) WALSegmentsV3(ctx context.Context, gen string) ([]ls.WALSegmentInfoV3, error) {
	objs, err := c.list(ctx, ls.WALPathV3(c.prefix, gen)+"/")
	if err != nil {
		return nil, err
	}
	var out []ls.WALSegmentInfoV3
	for _, o := range objs {
		idx, off, err := ls.ParseWALSegmentFilenameV3(path.Base(o.Key))
		if err != nil {
			continue
		}
		out = append(out, ls.WALSegmentInfoV3{Generation: gen, Index: idx, Offset: off, Size: o.Size, CreatedAt: o.Modified})
	}
	slices.SortFunc(out, func(a, b ls.WALSegmentInfoV3) int {
		if a.Index != b.Index {
			return a.Index - b.Index
		}
		return int(a.Offset - b.Offset)
	})
	return out, nil
}

func (c *s3Client) OpenSnapshotV3(ctx context.Context, gen string, index int) (io.ReadCloser, error) {
	rc, err := c.get(ctx, ls.SnapshotPathV3(c.prefix, gen, index), "")
	if err != nil {
		return nil, err
	}
	return lz4ReadCloser{lz4.NewReader(rc), rc}, nil
}

func (c *s3Client) OpenWALSegmentV3(ctx context.Context, gen string, index int, offset int64) (io.ReadCloser, error) {
	rc, err := c.get(ctx, ls.WALSegmentPathV3(c.prefix, gen, index, offset), "")
	if err != nil {
		return nil, err
	}
	return lz4ReadCloser{lz4.NewReader(rc), rc}, nil
}

type lz4ReadCloser struct {
	io.Reader
	io.Closer
}

type countingReader struct {
	io.ReadCloser
	n     int64
	count func(int64)
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.n += int64(n)
	if r.count != nil && n > 0 {
		r.count(int64(n))
	}
	return n, err
}

func isNotFound(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		}
	}
	var re interface{ HTTPStatusCode() int }
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound && !isCode(err, "NoSuchBucket")
}

func isCode(err error, codes ...string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && slices.Contains(codes, ae.ErrorCode())
}

func notCertError(err error) aws.Ternary {
	var (
		unknown *x509.UnknownAuthorityError
		verify  *tls.CertificateVerificationError
		host    x509.HostnameError
	)
	if errors.As(err, &unknown) || errors.As(err, &verify) || errors.As(err, &host) {
		return aws.FalseTernary
	}
	return aws.UnknownTernary
}
