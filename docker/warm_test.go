package docker_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/containerd/errdefs"

	"github.com/ferry-migrate/ferry/backup"
	"github.com/ferry-migrate/ferry/docker"
	"github.com/ferry-migrate/ferry/docker/dockertest"
	"github.com/ferry-migrate/ferry/internal/testenv"
	"github.com/ferry-migrate/ferry/internal/testenv/s3test"
	"github.com/ferry-migrate/ferry/sqlite"
)

// TestWarmReplication replicates the stand-in's database with litestream
// in a helper container while the app writes, stops the app, makes the
// final sync, and proves that a restore of the replica equals the stopped
// app's database as backed up, rows written during replication included.
func TestWarmReplication(t *testing.T) {
	if testing.Short() {
		t.Skip("builds images and runs containers")
	}
	ctx := context.Background()
	litestreamCLI := testenv.LookPath(t, "litestream")
	store := s3test.Versitygw(t)
	bucket := store.CreateBucket(t, "")

	log, logs := newLogger()
	h := dockertest.Connect(t, docker.Options{Logger: log})
	svc, base := overseerr(t, h, "WRITE_INTERVAL=50ms")
	c, err := h.Find(ctx, svc.Project, "overseerr")
	if err != nil {
		t.Fatal(err)
	}

	env := []string{
		"DB_PATH=" + dbPath,
		"REPLICA_BUCKET=" + bucket,
		"REPLICA_PATH=db",
		"REPLICA_ENDPOINT=" + store.Endpoint,
		"LITESTREAM_ACCESS_KEY_ID=" + store.AccessKeyID,
		"LITESTREAM_SECRET_ACCESS_KEY=" + store.SecretAccessKey,
	}
	w, err := h.StartWarm(ctx, c, docker.WarmOptions{
		Image:   dockertest.LitestreamImage(t, h),
		Cmd:     []string{"replicate", "-config", "/etc/litestream.yml"},
		Env:     env,
		Network: "host", // the S3 server listens on the host's loopback
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Remove(context.Background()) })

	// Replication is running while the app keeps writing: wait for LTX
	// files in the bucket and for rows written after the helper started.
	before := counts(t, base)["media_request"]
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := w.Running(ctx); err != nil {
			t.Fatal(err)
		}
		out, err := store.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("db/")})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Contents) > 0 && counts(t, base)["media_request"] >= before+20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no replica objects or no writes within a minute; helper output:\n%s", dockertest.Logs(t, h, w.ID()))
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}

	// The stopped app's database, as a backup, is what the replica must equal.
	if err := h.Stop(ctx, c.ID, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "backup")
	m, err := h.Backup(ctx, c, dir, backup.Request{Databases: []string{dbPath}, Files: []string{settings}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	helperLog := dockertest.Logs(t, h, w.ID())
	if err := w.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := h.API().ContainerInspect(ctx, w.ID()); !errdefs.IsNotFound(err) {
		t.Errorf("helper still exists after Finish: %v", err)
	}

	restored := filepath.Join(t.TempDir(), "restored.db")
	cfg := filepath.Join(t.TempDir(), "litestream.yml")
	if err := os.WriteFile(cfg, []byte(dockertest.LitestreamConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, litestreamCLI, "restore", "-config", cfg, "-o", restored, dbPath)
	// AWS_CA_BUNDLE breaks litestream v0.5's S3 client (REFERENCE.md).
	cmd.Env = append(withoutEnv(os.Environ(), "AWS_CA_BUNDLE"), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("litestream restore: %v\n%s", err, out)
	}

	src, err := sqlite.FingerprintFile(ctx, m.Files[0].Local(dir))
	if err != nil {
		t.Fatal(err)
	}
	got, err := sqlite.FingerprintFile(ctx, restored)
	if err != nil {
		t.Fatal(err)
	}
	if d := sqlite.Diff(src, got); len(d) > 0 || !got.OK() {
		t.Fatalf("restored replica differs from the stopped app's database (integrity %s): %v", got.Integrity, d)
	}
	reqs, _ := got.Table("media_request")
	if reqs.Rows < int64(before+20) {
		t.Fatalf("restored %d requests; want the %d seen during replication", reqs.Rows, before+20)
	}
	t.Logf("restored %d requests (%d before replication started); fingerprint %s", reqs.Rows, before, got)

	sec := secrets(t, m.Files[3].Local(dir))
	assertNoSecrets(t, sec, "ferry's log", logs.String())
	assertNoSecrets(t, sec, "the helper's log", helperLog)
	if strings.Contains(logs.String(), store.SecretAccessKey) {
		t.Error("the S3 secret key appears in ferry's log")
	}
}

func counts(t *testing.T, base string) map[string]int {
	t.Helper()
	var c map[string]int
	if err := json.Unmarshal(dockertest.WaitHTTP(t, base+"/standin/counts", 10*time.Second), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func withoutEnv(env []string, key string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// TestWarmHelperFails: a replicator that exits non-zero fails Finish with
// its output (Env values redacted), and the helper is removed anyway.
func TestWarmHelperFails(t *testing.T) {
	if testing.Short() {
		t.Skip("builds images and runs containers")
	}
	ctx := context.Background()
	h := dockertest.Connect(t, docker.Options{})
	img := dockertest.StandinImage(t, h)
	svc := dockertest.ComposeService(t, h, "downloads"+dockertest.Suffix(), "overseerr", img, "config-overseerr", configDir, nil)
	c, err := h.Find(ctx, svc.Project, "overseerr")
	if err != nil {
		t.Fatal(err)
	}
	const secret = "s3cr3t-value-never-shown"
	// The config path is the secret, so the replicator prints it.
	w, err := h.StartWarm(ctx, c, docker.WarmOptions{
		Image: dockertest.LitestreamImage(t, h),
		Cmd:   []string{"replicate", "-config", "/" + secret},
		Env:   []string{"LITESTREAM_SECRET_ACCESS_KEY=" + secret},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Remove(context.Background()) })
	// Let the replicator fail on its own first: stopping it before it ran
	// would test the stop, not the failure.
	deadline := time.Now().Add(30 * time.Second)
	for w.Running(ctx) == nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	err = w.Finish(ctx)
	var he *docker.HelperExitError
	if !errors.As(err, &he) || he.ExitCode == 0 {
		t.Fatalf("Finish = %v, want *HelperExitError with a non-zero exit", err)
	}
	if strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("helper output not redacted: %v", err)
	}
	if _, err := h.API().ContainerInspect(ctx, w.ID()); !errdefs.IsNotFound(err) {
		t.Errorf("helper still exists after a failed Finish: %v", err)
	}
}
