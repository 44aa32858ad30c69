package render_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/config"
	"github.com/ferry-migrate/ferry/internal/testenv"
	"github.com/ferry-migrate/ferry/internal/testenv/s3test"
	"github.com/ferry-migrate/ferry/render"
)

// These tests run the rendered restore script for real: busybox sh with
// only busybox applets and the litestream v0.5.18 CLI on PATH (like a
// minimal image), against a versitygw S3 server, in temp dirs standing in
// for the allocation. AWS_CA_BUNDLE is deliberately set in the script's
// environment: litestream v0.5 fails with it, and the script must cope.

// scriptEnv is what the tests need to run a rendered script.
type scriptEnv struct {
	t      *testing.T
	bin    string // PATH for the script: busybox applets + litestream
	sh     string // busybox
	s3     *s3test.Server
	health string // a URL answering 200, standing in for /minio/health/live
}

func newScriptEnv(t *testing.T) *scriptEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("runs litestream against an S3 server; skipped with -short")
	}
	busybox := testenv.LookPath(t, "busybox")
	litestream := testenv.LookPath(t, "litestream")
	if out, err := exec.Command(litestream, "version").Output(); err != nil || !strings.HasPrefix(string(out), "v0.5.18") {
		testenv.Skip(t, fmt.Sprintf("litestream on PATH is %q (%v), want v0.5.18", out, err))
	}
	bin := t.TempDir()
	for _, applet := range []string{"sh", "wget", "timeout", "date", "sleep", "mkdir", "rm", "dirname", "sed", "sort", "tail", "head", "printf", "cat"} {
		if err := os.Symlink(busybox, filepath.Join(bin, applet)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(litestream, filepath.Join(bin, "litestream")); err != nil {
		t.Fatal(err)
	}
	health := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(health.Close)
	return &scriptEnv{t: t, bin: bin, sh: busybox, s3: s3test.Versitygw(t), health: health.URL}
}

// spec returns a validated spec for a service storing db.sqlite3 in
// bucket on the test server (or on endpoint, when not empty).
func (e *scriptEnv) spec(bucket, endpoint string, noPriorData bool) *ferry.Service {
	e.t.Helper()
	if endpoint == "" {
		endpoint = e.s3.Endpoint
	}
	src := fmt.Sprintf(`service "app" {
  image = "example/app:1.2.3"
  port = 8080
  config_dir = "/config"
  no_prior_data = %t
  source { service = "app" }
  database "db" { path = "/data/my db/db.sqlite3" }
  object_store {
    endpoint = %q
    bucket = %q
    region = %q
  }
  litestream { wait_timeout = "3s" }
}`, noPriorData, endpoint, bucket, e.s3.Region)
	s, err := config.Parse([]byte(src), "test.hcl")
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// alloc is a temp allocation: alloc dir, task dir with litestream.yml.
type alloc struct {
	dir, task string
}

func (e *scriptEnv) alloc(s *ferry.Service) alloc {
	e.t.Helper()
	root := e.t.TempDir()
	a := alloc{dir: filepath.Join(root, "alloc dir"), task: filepath.Join(root, "task")}
	for _, d := range []string{a.dir, a.task} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(a.task, "litestream.yml"), []byte(render.LitestreamConfig(s)), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return a
}

func (a alloc) db(s *ferry.Service) string {
	return filepath.Join(a.dir, filepath.FromSlash(render.AllocDBPath(s, s.Databases[0])))
}

func (e *scriptEnv) environ(a alloc, health string) []string {
	return []string{
		"PATH=" + e.bin,
		"NOMAD_ALLOC_DIR=" + a.dir,
		"NOMAD_TASK_DIR=" + a.task,
		"NOMAD_TASK_NAME=" + ferry.TaskRestore,
		"LITESTREAM_ACCESS_KEY_ID=" + e.s3.AccessKeyID,
		"LITESTREAM_SECRET_ACCESS_KEY=" + e.s3.SecretAccessKey,
		"FERRY_HEALTH_URL=" + health,
		"AWS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt",
	}
}

// run runs script with busybox sh and returns its exit code and output.
func (e *scriptEnv) run(script string, a alloc, health string) (int, string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.sh, "sh", "-c", script, "restore.sh")
	cmd.Env = e.environ(a, health)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		e.t.Fatalf("script did not finish:\n%s", out.String())
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return 0, out.String()
}

// seed creates a WAL-mode database with rows in a's alloc dir and
// replicates it with the real `litestream replicate` and the rendered
// config until an LTX file is in the bucket.
func (e *scriptEnv) seed(s *ferry.Service, a alloc, rows int) {
	e.t.Helper()
	path := a.db(s)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		e.t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	stmts := []string{`PRAGMA journal_mode=WAL`, `CREATE TABLE user (id INTEGER PRIMARY KEY, name TEXT)`}
	for i := range rows {
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO user (name) VALUES ('user %d')`, i))
	}
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			e.t.Fatalf("%s: %v", q, err)
		}
	}

	cmd := exec.Command(filepath.Join(e.bin, "litestream"), "replicate", "-config", filepath.Join(a.task, "litestream.yml"))
	// Two transactions, so the replica holds more than one file (the
	// broken-replica case removes the first).
	cmd.Env = e.environ(a, "")[:6] // no AWS_CA_BUNDLE: this is litestream itself, not the script
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	waitLTX := func(n int) {
		deadline := time.Now().Add(30 * time.Second)
		for e.countLTX(s) < n {
			if time.Now().After(deadline) {
				e.t.Fatalf("litestream replicate with the rendered config wrote fewer than %d LTX files in 30s:\n%s\nconfig:\n%s", n, out.String(), render.LitestreamConfig(s))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitLTX(1)
	if _, err := db.Exec(`INSERT INTO user (name) VALUES ('late user')`); err != nil {
		e.t.Fatal(err)
	}
	waitLTX(2)
}

// countLTX counts the LTX files of the database in the bucket.
func (e *scriptEnv) countLTX(s *ferry.Service) int {
	n := 0
	filepath.WalkDir(filepath.Join(e.s3.Dir, s.ObjectStore.Bucket, s.Databases[0].ReplicaPath), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".ltx") {
			n++
		}
		return nil
	})
	return n
}

func rowCount(t *testing.T, path string) (int, string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM user`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n, check
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

func closedEndpoint(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestRestoreScript(t *testing.T) {
	e := newScriptEnv(t)

	t.Run("existing database is kept without touching the store", func(t *testing.T) {
		s := e.spec("nobucket", closedEndpoint(t), false)
		a := e.alloc(s)
		db := a.db(s)
		os.MkdirAll(filepath.Dir(db), 0o755)
		os.WriteFile(db, []byte("live data"), 0o644)
		code, out := e.run(render.RestoreScript(s), a, "")
		if code != 0 || !strings.Contains(out, "keeping it") {
			t.Fatalf("exit %d, want 0 with a keep message:\n%s", code, out)
		}
		if b, _ := os.ReadFile(db); string(b) != "live data" {
			t.Errorf("database changed to %q", b)
		}
	})

	t.Run("no replica and prior data fails without creating a database", func(t *testing.T) {
		s := e.spec(e.s3.CreateBucket(t, ""), "", false)
		a := e.alloc(s)
		code, out := e.run(render.RestoreScript(s), a, e.health)
		if code != 1 || !strings.Contains(out, "no replica at") {
			t.Fatalf("exit %d, want 1 naming the missing replica:\n%s", code, out)
		}
		if exists(a.db(s)) {
			t.Error("a database file was created")
		}
	})

	t.Run("no replica and no prior data starts empty", func(t *testing.T) {
		s := e.spec(e.s3.CreateBucket(t, ""), "", true)
		a := e.alloc(s)
		code, out := e.run(render.RestoreScript(s), a, e.health)
		if code != 0 || !strings.Contains(out, "starting on an empty database") {
			t.Fatalf("exit %d, want 0 starting empty:\n%s", code, out)
		}
		if exists(a.db(s)) {
			t.Error("the script created a database file; the app should")
		}
	})

	t.Run("unreachable store fails within the bound", func(t *testing.T) {
		endpoint := closedEndpoint(t)
		s := e.spec("somebucket", endpoint, true) // even a new service must not start empty
		a := e.alloc(s)
		start := time.Now()
		code, out := e.run(render.RestoreScript(s), a, endpoint+"/minio/health/live")
		took := time.Since(start)
		if code != 1 || !strings.Contains(out, "did not answer within 3s") {
			t.Fatalf("exit %d, want 1 after waiting:\n%s", code, out)
		}
		if took > 3*time.Second+20*time.Second {
			t.Errorf("took %s, bound is 3s plus one probe", took)
		}
		if exists(a.db(s)) {
			t.Error("a database file was created")
		}
	})

	t.Run("unreachable store behind a healthy proxy fails within the bound", func(t *testing.T) {
		// The health URL answers, the store does not: litestream's own
		// probe must still hold the restore back.
		s := e.spec("somebucket", closedEndpoint(t), true)
		a := e.alloc(s)
		start := time.Now()
		code, out := e.run(render.RestoreScript(s), a, e.health)
		if code != 1 || time.Since(start) > 40*time.Second {
			t.Fatalf("exit %d after %s, want 1 within the bound:\n%s", code, time.Since(start), out)
		}
	})

	t.Run("replica is restored with integrity check and rows", func(t *testing.T) {
		s := e.spec(e.s3.CreateBucket(t, ""), "", false)
		e.seed(s, e.alloc(s), 100)
		a := e.alloc(s)
		db := a.db(s)
		os.MkdirAll(filepath.Dir(db), 0o755)
		os.WriteFile(db+"-wal", []byte("stray wal from another database"), 0o644)
		code, out := e.run(render.RestoreScript(s), a, e.health)
		if code != 0 || !strings.Contains(out, "restored; integrity check passed") {
			t.Fatalf("exit %d, want 0 restored:\n%s", code, out)
		}
		if !strings.Contains(out, "removing stray") {
			t.Errorf("stray -wal not reported:\n%s", out)
		}
		n, check := rowCount(t, db)
		if check != "ok" || n != 101 {
			t.Errorf("restored database: integrity %q, %d rows; want ok, 101", check, n)
		}
	})

	t.Run("drill restores the replica and fails when it is stale", func(t *testing.T) {
		s := e.spec(e.s3.CreateBucket(t, ""), "", false)
		e.seed(s, e.alloc(s), 5)
		a := e.alloc(s)
		code, out := e.run(render.DrillScript(s), a, e.health)
		if code != 0 || !strings.Contains(out, "drill passed") {
			t.Fatalf("fresh replica: exit %d, want 0:\n%s", code, out)
		}
		if exists(a.db(s)) {
			t.Error("the drill wrote the live database path")
		}
		time.Sleep(2 * time.Second)
		s.Drill.MaxReplicaAge = time.Second
		code, out = e.run(render.DrillScript(s), a, e.health)
		if code != 1 || !strings.Contains(out, "replication has stopped") {
			t.Fatalf("stale replica: exit %d, want 1:\n%s", code, out)
		}
	})

	t.Run("replica with files that do not restore fails even for a new service", func(t *testing.T) {
		// The production incident: litestream says "no matching backup
		// files" for a broken replica too. The script must not start empty.
		s := e.spec(e.s3.CreateBucket(t, ""), "", true)
		e.seed(s, e.alloc(s), 10)
		var removed int
		filepath.WalkDir(filepath.Join(e.s3.Dir, s.ObjectStore.Bucket), func(p string, d os.DirEntry, err error) error {
			if err == nil && strings.HasSuffix(p, ".ltx") && strings.Contains(filepath.Base(p), "0000000000000001-") {
				os.RemoveAll(p)
				removed++
			}
			return nil
		})
		if removed == 0 || e.countLTX(s) == 0 {
			t.Fatalf("could not break the replica (removed %d files)", removed)
		}
		a := e.alloc(s)
		code, out := e.run(render.RestoreScript(s), a, e.health)
		if code != 1 || !strings.Contains(out, "holds files but none restore") {
			t.Fatalf("exit %d, want 1 for a broken replica:\n%s", code, out)
		}
		t.Logf("broken replica:\n%s", out)
		if exists(a.db(s)) {
			t.Error("a database file was left behind")
		}
	})
}
