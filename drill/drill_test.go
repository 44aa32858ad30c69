package drill_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/config"
	"github.com/ferry-migrate/ferry/drill"
	"github.com/ferry-migrate/ferry/internal/testenv/s3test"
	"github.com/ferry-migrate/ferry/litestream"
	"github.com/ferry-migrate/ferry/sqlite/sqlitetest"
)

func TestMain(m *testing.M) {
	sqlitetest.HelperMain()
	os.Exit(m.Run())
}

func service(srv *s3test.Server, bucket string) *ferry.Service {
	svc := &ferry.Service{
		Name:      "overseerr",
		ConfigDir: "/app/config",
		Databases: []ferry.Database{{Name: "db", Path: "/app/config/db/db.sqlite3", ReplicaPath: "db", UserTables: []string{"user", "media_request"}}},
	}
	config.ApplyDefaults(svc)
	svc.ObjectStore = srv.Store(bucket)
	return svc
}

func open(t testing.TB, svc *ferry.Service, creds litestream.Credentials) map[string]*litestream.Replica {
	t.Helper()
	r, err := litestream.Open(context.Background(), svc.ObjectStore, "db", creds, nil)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]*litestream.Replica{"db": r}
}

func creds(srv *s3test.Server) litestream.Credentials {
	return litestream.Credentials{AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey}
}

// seeded returns a replica seeded from the Overseerr-like WAL-only fixture.
func seeded(t *testing.T, srv *s3test.Server, bucket string) (*ferry.Service, map[string]*litestream.Replica) {
	t.Helper()
	svc := service(srv, srv.CreateBucket(t, bucket))
	reps := open(t, svc, creds(srv))
	db := sqlitetest.WALOnly(t, t.TempDir())
	if _, err := reps["db"].Seed(context.Background(), db, litestream.SeedOptions{}); err != nil {
		t.Fatal(err)
	}
	return svc, reps
}

func TestRestoreDrillPasses(t *testing.T) {
	srv := s3test.Versitygw(t)
	svc, reps := seeded(t, srv, "drill-ok")
	results, err := drill.Restore(context.Background(), svc, reps, t.TempDir(), time.Now)
	if err != nil {
		t.Fatalf("drill: %v (%+v)", err, results[0].Problems)
	}
	r := results[0]
	if r.TXID == 0 || r.Size == 0 || r.RestoreTime <= 0 || r.Age < 0 || r.Age > time.Minute {
		t.Errorf("result %+v: want a txid, a size, a restore time and a fresh age", r)
	}
	if u, ok := r.Fingerprint.Table("user"); !ok || u.Rows == 0 {
		t.Errorf("restored database has no users: %+v", r.Fingerprint)
	}
}

// TestRestoreDrillFailsLoudly: every way a backup can be useless fails
// the drill with a problem naming it.
func TestRestoreDrillFailsLoudly(t *testing.T) {
	srv := s3test.Versitygw(t)
	ctx := context.Background()

	t.Run("empty bucket", func(t *testing.T) {
		svc := service(srv, srv.CreateBucket(t, "empty"))
		results, err := drill.Restore(ctx, svc, open(t, svc, creds(srv)), t.TempDir(), time.Now)
		wantFailure(t, results, err, "empty")
	})
	t.Run("older than the bound", func(t *testing.T) {
		svc, reps := seeded(t, srv, "drill-old")
		later := func() time.Time { return time.Now().Add(svc.Drill.MaxReplicaAge + time.Hour) }
		results, err := drill.Restore(ctx, svc, reps, t.TempDir(), later)
		wantFailure(t, results, err, "over max_replica_age")
	})
	t.Run("corrupted LTX file", func(t *testing.T) {
		svc, reps := seeded(t, srv, "drill-corrupt")
		corruptOneLTX(t, srv, svc.ObjectStore.Bucket)
		results, err := drill.Restore(ctx, svc, reps, t.TempDir(), time.Now)
		wantFailure(t, results, err, "restore")
	})
	t.Run("wrong credentials", func(t *testing.T) {
		svc, _ := seeded(t, srv, "drill-creds")
		bad := creds(srv)
		bad.SecretAccessKey = "not-the-secret-" + bad.SecretAccessKey[:4]
		results, err := drill.Restore(ctx, svc, open(t, svc, bad), t.TempDir(), time.Now)
		wantFailure(t, results, err, "access denied")
		if strings.Contains(strings.Join(results[0].Problems, " "), bad.SecretAccessKey) {
			t.Error("the problem quotes the secret")
		}
	})
}

func wantFailure(t *testing.T, results []*drill.RestoreResult, err error, problem string) {
	t.Helper()
	if !errors.Is(err, drill.ErrFailed) {
		t.Fatalf("drill error = %v, want ErrFailed", err)
	}
	if len(results) != 1 || !strings.Contains(strings.Join(results[0].Problems, "; "), problem) {
		t.Fatalf("problems %q do not mention %q", results[0].Problems, problem)
	}
}

// corruptOneLTX flips bytes in the middle of the largest LTX object.
func corruptOneLTX(t *testing.T, srv *s3test.Server, bucket string) {
	t.Helper()
	ctx := context.Background()
	c := srv.Client()
	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var key string
	var size int64
	for _, o := range out.Contents {
		if strings.HasSuffix(*o.Key, ".ltx") && *o.Size > size {
			key, size = *o.Key, *o.Size
		}
	}
	if key == "" {
		t.Fatal("no LTX file in the replica")
	}
	obj, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(obj.Body)
	obj.Body.Close()
	b := buf.Bytes()
	for i := len(b) / 2; i < len(b)/2+64 && i < len(b); i++ {
		b[i] ^= 0xff
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(b)}); err != nil {
		t.Fatal(err)
	}
}

// TestPointInTimeRestore: restoring at a time between two known writes
// yields exactly the rows written before that time.
func TestPointInTimeRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for distinct object timestamps")
	}
	ctx := context.Background()
	srv := s3test.Versitygw(t)
	svc := service(srv, srv.CreateBucket(t, "pitr"))
	r := open(t, svc, creds(srv))["db"]
	path := filepath.Join(t.TempDir(), "app.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(wal)&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(q string) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	exec(`CREATE TABLE media_request (id INTEGER PRIMARY KEY, note TEXT)`)
	exec(`INSERT INTO media_request (note) VALUES ('before-1'), ('before-2')`)
	rep, err := r.Replicate(ctx, path, litestream.ReplicateOptions{SyncInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer rep.Close(ctx)
	if _, err := rep.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// Object stores keep whole seconds: leave room on both sides of T.
	time.Sleep(1500 * time.Millisecond)
	between := time.Now()
	time.Sleep(1500 * time.Millisecond)
	exec(`INSERT INTO media_request (note) VALUES ('after-1')`)
	if _, err := rep.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	dst := filepath.Join(t.TempDir(), "pitr.db")
	if _, err := r.Restore(ctx, dst, litestream.RestoreOptions{Timestamp: between}); err != nil {
		t.Fatal(err)
	}
	got := notes(t, dst)
	if strings.Join(got, ",") != "before-1,before-2" {
		t.Fatalf("restored at %s: rows %v, want exactly the two written before", between.Format(time.RFC3339Nano), got)
	}
	latest := filepath.Join(t.TempDir(), "latest.db")
	if _, err := r.Restore(ctx, latest, litestream.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := notes(t, latest); strings.Join(got, ",") != "before-1,before-2,after-1" {
		t.Fatalf("latest: rows %v", got)
	}
}

func notes(t *testing.T, path string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT note FROM media_request ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		out = append(out, n)
	}
	return out
}
