package litestream

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/testenv/s3test"
	"github.com/ferry-migrate/ferry/sqlite"
	"github.com/ferry-migrate/ferry/sqlite/sqlitetest"
)

func TestMain(m *testing.M) {
	sqlitetest.HelperMain()
	childRestoreMain()
	os.Exit(m.Run())
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("FERRY_TEST_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// eachServer runs f against the in-process server and versitygw.
func eachServer(t *testing.T, f func(t *testing.T, srv *s3test.Server)) {
	t.Run("s3local", func(t *testing.T) { f(t, s3test.Local(t)) })
	t.Run("versitygw", func(t *testing.T) { f(t, s3test.Versitygw(t)) })
}

func openReplica(t testing.TB, srv *s3test.Server, bucket, path string) *Replica {
	t.Helper()
	r, err := Open(context.Background(), srv.Store(bucket), path, Credentials{srv.AccessKeyID, srv.SecretAccessKey}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	r.LeaseSettle = 100 * time.Millisecond
	return r
}

func fingerprint(t testing.TB, path string) *sqlite.Fingerprint {
	t.Helper()
	fp, err := sqlite.FingerprintFile(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if !fp.OK() {
		t.Fatalf("%s: integrity %s", path, fp.Integrity)
	}
	return fp
}

func emptyDB(t testing.TB, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "empty.db")
	db, err := sql.Open("sqlite", "file:"+p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA journal_mode=wal`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	return p
}

func sameFingerprint(t testing.TB, want *sqlite.Fingerprint, path string) {
	t.Helper()
	if d := sqlite.Diff(want, fingerprint(t, path)); d != nil {
		t.Fatalf("restored %s differs: %v", path, d)
	}
}

// Seed -> restore to a temp dir -> equal fingerprints, for an empty
// database, the WAL-only fixture and a random one (64 MiB unless -short).
// The source's bytes stay untouched by the seed.
func TestSeedRestoreRoundTrip(t *testing.T) {
	mib := 64
	if testing.Short() {
		mib = 4
	}
	eachServer(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.CreateBucket(t, "")
		fixtures := map[string]func(dir string) string{
			"empty":   func(dir string) string { return emptyDB(t, dir) },
			"walonly": func(dir string) string { return sqlitetest.WALOnly(t, dir) },
			fmt.Sprintf("random%dMiB", mib): func(dir string) string {
				p := filepath.Join(dir, "r.db")
				sqlitetest.Random(t, p, mib)
				return p
			},
		}
		for name, mk := range fixtures {
			t.Run(name, func(t *testing.T) {
				ctx := context.Background()
				src := mk(t.TempDir())
				before := fileBytes(t, src)
				want := fingerprint(t, src)
				r := openReplica(t, srv, bucket, "db-"+name)

				var progressed int64
				pos, err := r.Seed(ctx, src, SeedOptions{Holder: "test", Progress: func(done, total int64) { progressed = done }})
				if err != nil {
					t.Fatal(err)
				}
				if pos.TXID == 0 || progressed == 0 {
					t.Fatalf("seed position %+v, progress %d", pos, progressed)
				}
				if after := fileBytes(t, src); after != before {
					t.Fatal("seed modified the source database or its -wal")
				}
				info, err := r.Inspect(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if info.Version != 5 || info.TXID != pos.TXID || info.Lease != nil {
					t.Fatalf("inspect after seed: %+v (lease %+v)", info, info.Lease)
				}

				dst := filepath.Join(t.TempDir(), "restored.db")
				rpos, err := r.Restore(ctx, dst, RestoreOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if rpos.TXID != pos.TXID {
					t.Fatalf("restored txid %d, seeded %d", rpos.TXID, pos.TXID)
				}
				sameFingerprint(t, want, dst)

				// Never overwrites.
				if _, err := r.Restore(ctx, dst, RestoreOptions{}); err == nil {
					t.Fatal("restore over an existing file succeeded")
				}
				// A second seed into the same path is refused with details.
				_, err = r.Seed(ctx, src, SeedOptions{})
				var exists *ReplicaExistsError
				if !errors.As(err, &exists) || exists.TXID != pos.TXID || exists.Size == 0 {
					t.Fatalf("reseed: %v", err)
				}
			})
		}
	})
}

func fileBytes(t testing.TB, p string) string {
	t.Helper()
	var b strings.Builder
	for _, f := range []string{p, p + "-wal"} {
		data, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		b.Write(data)
		b.WriteByte(0)
	}
	return b.String()
}

// Force replaces a replica of another database; point-in-time restore by
// TXID returns the earlier state.
func TestSeedForceAndRestoreTXID(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Local(t)
	bucket := srv.CreateBucket(t, "")
	dir := t.TempDir()
	a := filepath.Join(dir, "a.db")
	sqlitetest.Random(t, a, 1)
	b := sqlitetest.WALOnly(t, t.TempDir())
	r := openReplica(t, srv, bucket, "db")
	if _, err := r.Seed(ctx, a, SeedOptions{}); err != nil {
		t.Fatal(err)
	}
	pos, err := r.Seed(ctx, b, SeedOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "b.db")
	if _, err := r.Restore(ctx, dst, RestoreOptions{TXID: pos.TXID}); err != nil {
		t.Fatal(err)
	}
	sameFingerprint(t, fingerprint(t, b), dst)
}

// A wrong secret fails at once, clearly, and without the secret in the
// error.
func TestWrongSecret(t *testing.T) {
	eachServer(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.CreateBucket(t, "")
		src := emptyDB(t, t.TempDir())
		bad := "wrong-" + srv.SecretAccessKey
		r, err := Open(context.Background(), srv.Store(bucket), "db", Credentials{srv.AccessKeyID, bad}, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = r.Seed(context.Background(), src, SeedOptions{})
		if !errors.Is(err, ErrAccessDenied) {
			t.Fatalf("err = %v, want ErrAccessDenied", err)
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("took %s: permanent error was retried", time.Since(start))
		}
		if strings.Contains(err.Error(), bad) || strings.Contains(fmt.Sprintf("%+v", err), srv.SecretAccessKey) {
			t.Fatal("error holds the secret")
		}
		r2 := openReplica(t, srv, "nosuchbucket", "db")
		if _, err := r2.Inspect(context.Background()); !errors.Is(err, ErrNoSuchBucket) {
			t.Fatalf("missing bucket: %v", err)
		}
	})
}

// Two seeders racing on one path: exactly one proceeds; the other names
// the holder.
func TestConcurrentSeeders(t *testing.T) {
	eachServer(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.CreateBucket(t, "")
		src := sqlitetest.WALOnly(t, t.TempDir())
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			r := openReplica(t, srv, bucket, "db")
			wg.Go(func() {
				_, errs[i] = r.Seed(context.Background(), src, SeedOptions{Holder: fmt.Sprintf("seeder-%d", i)})
			})
		}
		wg.Wait()
		var ok, held int
		for _, err := range errs {
			var lh *LeaseHeldError
			var ex *ReplicaExistsError
			switch {
			case err == nil:
				ok++
			case errors.As(err, &lh) && strings.HasPrefix(lh.Lease.Holder, "seeder-"):
				held++
			case errors.As(err, &ex):
				held++ // lost the race after the winner finished
			default:
				t.Errorf("unexpected: %v", err)
			}
		}
		if ok != 1 || held != 1 {
			t.Fatalf("ok=%d refused=%d errs=%v", ok, held, errs)
		}
	})
}

// A live lease blocks; an expired one is taken over.
func TestLeaseExpiry(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Local(t)
	bucket := srv.CreateBucket(t, "")
	r := openReplica(t, srv, bucket, "db")
	r.LeaseTTL = 500 * time.Millisecond
	l := r.leaser("crashed-seeder")
	if err := l.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	src := emptyDB(t, t.TempDir())
	_, err := r.Seed(ctx, src, SeedOptions{})
	var lh *LeaseHeldError
	if !errors.As(err, &lh) || lh.Lease.Holder != "crashed-seeder" || !strings.Contains(err.Error(), "crashed-seeder") {
		t.Fatalf("err = %v", err)
	}
	time.Sleep(600 * time.Millisecond) // let the lease expire; no renewal runs
	if _, err := r.Seed(ctx, src, SeedOptions{}); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
}

func TestCredentialsRedacted(t *testing.T) {
	c := Credentials{AccessKeyID: "AKID", SecretAccessKey: "s3cr3t"}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "creds", c)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c), logged.String(), mustJSON(t, c)} {
		if strings.Contains(s, "s3cr3t") || !strings.Contains(s, "AKID") {
			t.Errorf("leaks or lacks id: %s", s)
		}
	}
	t.Setenv("LITESTREAM_ACCESS_KEY_ID", "")
	t.Setenv("AWS_ACCESS_KEY_ID", "A")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "B")
	if c, ok := CredentialsFromEnv(); !ok || c.AccessKeyID != "A" || c.SecretAccessKey != "B" {
		t.Fatalf("from env: %v %v", c, ok)
	}
}

func mustJSON(t testing.TB, v any) string {
	b, err := jsonMarshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var jsonMarshal = json.Marshal
