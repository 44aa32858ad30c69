package litestream

import (
	"context"
	"database/sql"
	"encoding/pem"
	"fmt"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	lss3 "github.com/benbjohnson/litestream/s3"

	ferry "github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/internal/testenv"
	"github.com/ferry-migrate/ferry/internal/testenv/s3test"
	"github.com/ferry-migrate/ferry/sqlite/sqlitetest"
)

// cliEnv is the environment for the litestream CLI: the server's keys,
// and without AWS_CA_BUNDLE, which breaks litestream v0.5's own S3 client
// (the bug ferry's client works around; see TestCABundle).
func cliEnv(srv *s3test.Server) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_CA_BUNDLE=") {
			env = append(env, kv)
		}
	}
	return append(env,
		"LITESTREAM_ACCESS_KEY_ID="+srv.AccessKeyID, "LITESTREAM_SECRET_ACCESS_KEY="+srv.SecretAccessKey,
		"AWS_ACCESS_KEY_ID="+srv.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+srv.SecretAccessKey)
}

func replicaURL(srv *s3test.Server, bucket, path string) string {
	return fmt.Sprintf("s3://%s/%s?endpoint=%s&region=%s&forcePathStyle=true", bucket, path, url.QueryEscape(srv.Endpoint), srv.Region)
}

// A replica ferry seeded restores with `litestream restore` (v0.5.18) to
// an identical fingerprint.
func TestCLIRestoresFerrySeed(t *testing.T) {
	cli := testenv.LookPath(t, "litestream")
	eachServer(t, func(t *testing.T, srv *s3test.Server) {
		ctx := context.Background()
		bucket := srv.CreateBucket(t, "")
		src := sqlitetest.WALOnly(t, t.TempDir())
		want := fingerprint(t, src)
		r := openReplica(t, srv, bucket, "db")
		if _, err := r.Seed(ctx, src, SeedOptions{}); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(t.TempDir(), "cli.db")
		cmd := exec.Command(cli, "restore", "-o", dst, replicaURL(srv, bucket, "db"))
		cmd.Env = cliEnv(srv)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("litestream restore: %v\n%s", err, out)
		}
		sameFingerprint(t, want, dst)
	})
}

// startCLI runs `replicate` of a litestream CLI on db with a config file.
func startCLI(t *testing.T, bin string, srv *s3test.Server, cfg string) *exec.Cmd {
	t.Helper()
	p := filepath.Join(t.TempDir(), "litestream.yml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "replicate", "-config", p)
	cmd.Env = cliEnv(srv)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("litestream output:\n%s", out)
		}
	})
	return cmd
}

// stopCLI sends SIGTERM (litestream syncs before exiting) and waits.
func stopCLI(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("litestream did not stop")
	}
}

// waitFor polls cond until it holds (bounded).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeRows appends rows to the fixture's media table through SQLite.
func writeRows(t *testing.T, path string, n int) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := range n {
		if _, err := db.Exec(`INSERT INTO media(mediaType, tmdbId) VALUES ('movie', ?)`, 900000+i); err != nil {
			t.Fatal(err)
		}
	}
}

func cliConfig(srv *s3test.Server, db, bucket, path string, v3 bool) string {
	replica := fmt.Sprintf(`type: s3
bucket: %s
path: %s
endpoint: %s
region: %s
force-path-style: true
sync-interval: 100ms`, bucket, path, srv.Endpoint, srv.Region)
	if v3 { // v0.3 has a list of replicas; v0.5 one replica
		return "dbs:\n  - path: " + db + "\n    replicas:\n      - " + strings.ReplaceAll(replica, "\n", "\n        ") + "\n"
	}
	return "dbs:\n  - path: " + db + "\n    replica:\n      " + strings.ReplaceAll(replica, "\n", "\n      ") + "\n"
}

// A replica written by `litestream replicate` (v0.5.18), snapshot plus
// incremental LTX files, restores with ferry to the source's fingerprint.
func TestFerryRestoresCLIReplica(t *testing.T) {
	cli := testenv.LookPath(t, "litestream")
	eachServer(t, func(t *testing.T, srv *s3test.Server) {
		ctx := context.Background()
		bucket := srv.CreateBucket(t, "")
		src := sqlitetest.WALOnly(t, t.TempDir())
		cmd := startCLI(t, cli, srv, cliConfig(srv, src, bucket, "db", false))
		r := openReplica(t, srv, bucket, "db")
		waitFor(t, "first sync", func() bool { i, err := r.Inspect(ctx); return err == nil && i.TXID > 0 })
		writeRows(t, src, 20)
		first, _ := r.Inspect(ctx)
		waitFor(t, "incremental sync", func() bool { i, err := r.Inspect(ctx); return err == nil && i.TXID > first.TXID })
		stopCLI(t, cmd)

		want := fingerprint(t, src)
		if tb, _ := want.Table("media"); tb.Rows != sqlitetest.OverseerrTables["media"]+20 {
			t.Fatalf("source media rows = %d", tb.Rows)
		}
		dst := filepath.Join(t.TempDir(), "ferry.db")
		if _, err := r.Restore(ctx, dst, RestoreOptions{}); err != nil {
			t.Fatal(err)
		}
		sameFingerprint(t, want, dst)
	})
}

// A v0.3.13 replica (generations/<id>/{snapshots,wal}) lists in Inspect
// and restores with ferry.
func TestFerryRestoresV3Replica(t *testing.T) {
	cli := testenv.LookPath(t, "litestream-v0.3.13")
	eachServer(t, func(t *testing.T, srv *s3test.Server) {
		ctx := context.Background()
		bucket := srv.CreateBucket(t, "")
		src := sqlitetest.WALOnly(t, t.TempDir())
		cmd := startCLI(t, cli, srv, cliConfig(srv, src, bucket, "db", true))
		r := openReplica(t, srv, bucket, "db")
		waitFor(t, "v0.3 snapshot", func() bool {
			i, err := r.Inspect(ctx)
			return err == nil && len(i.Generations) > 0 && i.Generations[0].Snapshots > 0
		})
		writeRows(t, src, 20)
		time.Sleep(500 * time.Millisecond) // several sync intervals
		stopCLI(t, cmd)

		info, err := r.Inspect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Version != 3 || info.Generations[0].WALSegments == 0 {
			t.Fatalf("inspect: %+v", info)
		}
		want := fingerprint(t, src)
		dst := filepath.Join(t.TempDir(), "ferry.db")
		pos, err := r.Restore(ctx, dst, RestoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if pos.Generation != info.Generations[0].ID {
			t.Fatalf("position %+v", pos)
		}
		sameFingerprint(t, want, dst)
	})
}

// With AWS_CA_BUNDLE set, litestream's own S3 client cannot even start;
// ferry's loads the bundle and trusts it: a seed and restore through a
// TLS endpoint whose certificate only the bundle vouches for succeed.
func TestCABundle(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Local(t)
	bucket := srv.CreateBucket(t, "")

	target, _ := url.Parse(srv.Endpoint)
	tlsSrv := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(target))
	defer tlsSrv.Close()
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	cert := tlsSrv.TLS.Certificates[0].Certificate[0]
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CA_BUNDLE", bundle)

	upstream := lss3.NewReplicaClient()
	upstream.Bucket, upstream.Endpoint, upstream.Region, upstream.ForcePathStyle = bucket, tlsSrv.URL, "us-east-1", true
	upstream.AccessKeyID, upstream.SecretAccessKey = srv.AccessKeyID, srv.SecretAccessKey
	if err := upstream.Init(ctx); err == nil || !strings.Contains(err.Error(), "WithTransportOptions") {
		t.Logf("litestream's client no longer fails with AWS_CA_BUNDLE: %v", err)
	}

	store := ferry.ObjectStore{Endpoint: tlsSrv.URL, Bucket: bucket, Region: "us-east-1", PathStyle: true}
	r, err := Open(ctx, store, "db", Credentials{srv.AccessKeyID, srv.SecretAccessKey}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	r.LeaseSettle = 10 * time.Millisecond
	src := sqlitetest.WALOnly(t, t.TempDir())
	if _, err := r.Seed(ctx, src, SeedOptions{}); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "r.db")
	if _, err := r.Restore(ctx, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	sameFingerprint(t, fingerprint(t, src), dst)

	// Without the bundle the same endpoint is not trusted.
	t.Setenv("AWS_CA_BUNDLE", "")
	r2, err := Open(ctx, store, "db", Credentials{srv.AccessKeyID, srv.SecretAccessKey}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Inspect(ctx); err == nil {
		t.Fatal("untrusted certificate accepted")
	}
}
