package docker_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/backup"
	"github.com/ferry-migrate/ferry/docker"
	"github.com/ferry-migrate/ferry/docker/dockertest"
	"github.com/ferry-migrate/ferry/internal/testenv"
)

// BenchmarkBackupVsDockerCp backs up a 512 MiB file from a compose
// volume with Backup (stream, sha256, fsync, re-verify from disk) and
// with `docker cp` of the same path, alternating, in the same run. It
// reports both throughputs and ferry's ratio to docker cp (goal >= 0.8).
//
//	go test ./docker/ -run '^$' -bench BackupVsDockerCp -benchtime 3x
func BenchmarkBackupVsDockerCp(b *testing.B) {
	const size = 512 << 20
	dockerCLI := testenv.LookPath(b, "docker")
	ctx := context.Background()
	h := dockertest.Connect(b, docker.Options{})
	img := dockertest.StandinImage(b, h)
	svc := dockertest.ComposeService(b, h, "downloads"+dockertest.Suffix(), "overseerr", img, "config-overseerr", configDir, nil)
	dockertest.PutFile(b, h, svc.ContainerID, configDir+"/blob", size)
	c, err := h.Find(ctx, svc.Project, "overseerr")
	if err != nil {
		b.Fatal(err)
	}
	req := backup.Request{Files: []string{configDir + "/blob"}}
	// Warm the page cache and the engine for both.
	if _, err := h.Backup(ctx, c, filepath.Join(b.TempDir(), "warm"), req, nil); err != nil {
		b.Fatal(err)
	}

	var ferryTime, cpTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		start := time.Now()
		if _, err := h.Backup(ctx, c, filepath.Join(dir, "ferry"), req, nil); err != nil {
			b.Fatal(err)
		}
		ferryTime += time.Since(start)

		start = time.Now()
		out, err := exec.Command(dockerCLI, "cp", c.ID+":"+configDir+"/blob", filepath.Join(dir, "cp")).CombinedOutput()
		if err != nil {
			b.Fatalf("docker cp: %v\n%s", err, out)
		}
		cpTime += time.Since(start)
		if fi, err := os.Stat(filepath.Join(dir, "cp")); err != nil || fi.Size() != size {
			b.Fatalf("docker cp wrote %v, %v; want %d bytes", fi, err, size)
		}
		os.RemoveAll(dir) // keep at most one copy on disk
	}
	b.StopTimer()
	mbps := func(d time.Duration) float64 { return float64(size) * float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(ferryTime), "ferry-MB/s")
	b.ReportMetric(mbps(cpTime), "dockercp-MB/s")
	b.ReportMetric(cpTime.Seconds()/ferryTime.Seconds(), "ratio")
	b.ReportMetric(0, "ns/op")
}
