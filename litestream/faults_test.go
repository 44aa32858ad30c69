package litestream

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/superfly/ltx"

	ls "github.com/benbjohnson/litestream"
	"github.com/ferry-migrate/ferry/internal/testenv/s3test"
	"github.com/ferry-migrate/ferry/sqlite/sqlitetest"
)

// Faults between ferry and a signature-checking S3 server: 503 bursts,
// connection resets and a stall are retried with backoff, and the seed
// still restores to the source's fingerprint.
func TestFaultsRetried(t *testing.T) {
	srv := s3test.Versitygw(t)
	cases := []struct {
		name  string
		fault s3test.Fault
	}{
		{"503 on PUT", s3test.Fault{Kind: s3test.Status503, Count: 4, Method: "PUT"}},
		{"503 on GET", s3test.Fault{Kind: s3test.Status503, Count: 3, Method: "GET"}},
		{"resets", s3test.Fault{Kind: s3test.Reset, Count: 3}},
		{"stall", s3test.Fault{Kind: s3test.Stall, Count: 1, Method: "PUT", Stall: time.Minute}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			bucket := srv.CreateBucket(t, "")
			proxy := s3test.NewProxy(t, srv.Endpoint)
			store := srv.Store(bucket)
			store.Endpoint = proxy.URL
			r, err := open(store, "db", Credentials{srv.AccessKeyID, srv.SecretAccessKey}, clientOptions{RequestTimeout: time.Second}, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			r.LeaseSettle = 10 * time.Millisecond
			src := filepath.Join(t.TempDir(), "r.db")
			sqlitetest.Random(t, src, 2)
			want := fingerprint(t, src)

			proxy.Inject(tc.fault)
			start := time.Now()
			if _, err := r.Seed(ctx, src, SeedOptions{}); err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(t.TempDir(), "out.db")
			if _, err := r.Restore(ctx, dst, RestoreOptions{}); err != nil {
				t.Fatal(err)
			}
			if got := proxy.Injected(tc.fault.Kind); got != tc.fault.Count {
				t.Fatalf("injected %d of %d faults", got, tc.fault.Count)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Fatalf("took %s", d)
			}
			sameFingerprint(t, want, dst)
		})
	}
}

// A store that keeps failing makes the seed fail, not succeed.
func TestPersistentFailureFailsSeed(t *testing.T) {
	srv := s3test.Local(t)
	bucket := srv.CreateBucket(t, "")
	proxy := s3test.NewProxy(t, srv.Endpoint)
	store := srv.Store(bucket)
	store.Endpoint = proxy.URL
	r, err := open(store, "db", Credentials{srv.AccessKeyID, srv.SecretAccessKey}, clientOptions{MaxAttempts: 3}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	r.LeaseSettle = 10 * time.Millisecond
	src := sqlitetest.WALOnly(t, t.TempDir())
	proxy.Inject(s3test.Fault{Kind: s3test.Status503, Count: 1 << 30, Method: "PUT", Path: ".ltx"})
	_, err = r.Seed(context.Background(), src, SeedOptions{})
	var se *StoreError
	if !errors.As(err, &se) || se.Code != "SlowDown" {
		t.Fatalf("seed with every LTX upload failing: %v", err)
	}
	// 3 attempts per request; litestream may retry the sync once more.
	if n := proxy.Injected(s3test.Status503); n < 3 || n > 12 {
		t.Fatalf("%d attempts", n)
	}
}

// dropClient pretends to upload LTX files but stores nothing: the seed
// must notice that the replica does not cover the source.
type dropClient struct{ ls.ReplicaClient }

func (dropClient) WriteLTXFile(ctx context.Context, level int, lo, hi ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	n, err := io.Copy(io.Discard, r)
	return &ltx.FileInfo{Level: level, MinTXID: lo, MaxTXID: hi, Size: n, CreatedAt: time.Now()}, err
}

func TestSeedNotCoveredFails(t *testing.T) {
	srv := s3test.Local(t)
	r := openReplica(t, srv, srv.CreateBucket(t, ""), "db")
	r.client = dropClient{r.client}
	src := sqlitetest.WALOnly(t, t.TempDir())
	_, err := r.Seed(context.Background(), src, SeedOptions{})
	if !errors.Is(err, ErrNotCovered) {
		t.Fatalf("err = %v, want ErrNotCovered", err)
	}
}
