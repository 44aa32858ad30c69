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
	"github.com/ferry-migrate/ferry/internal/standin"
	"github.com/ferry-migrate/ferry/internal/testenv"
	"github.com/ferry-migrate/ferry/sqlite"
)

// TestDockerCompose runs the stand-in with the real docker-compose binary
// (so the labels are the ones compose itself sets) and finds, maps, stops
// and backs it up.
func TestDockerCompose(t *testing.T) {
	if testing.Short() {
		t.Skip("builds images and runs containers")
	}
	compose := testenv.LookPath(t, "docker-compose")
	ctx := context.Background()
	h := dockertest.Connect(t, docker.Options{})
	img := dockertest.StandinImage(t, h)
	project := "downloads" + dockertest.Suffix()
	dir := t.TempDir()
	file := filepath.Join(dir, "docker-compose.yml")
	yml := `version: "3.8"
services:
  overseerr:
    image: ` + img + `
    environment:
      - WRITE_INTERVAL=100ms
    volumes:
      - config-overseerr:/app/config
volumes:
  config-overseerr:
`
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(compose, append([]string{"-p", project, "-f", file}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("docker-compose %v: %v\n%s", args, err, out)
		}
	}
	t.Cleanup(func() {
		out, err := exec.Command(compose, "-p", project, "-f", file, "down", "-v").CombinedOutput()
		if err != nil {
			t.Errorf("docker-compose down: %v\n%s", err, out)
		}
	})
	run("up", "-d")

	c, err := h.Find(ctx, project, "overseerr")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + dockertest.IP(t, h, c.ID) + ":5055"
	dockertest.WaitHTTP(t, base+"/api/v1/status", 30*time.Second)
	located, err := c.Map(spec(project))
	if err != nil {
		t.Fatal(err)
	}
	if m := located[0].Mount; m.Type != "volume" || m.Name != project+"_config-overseerr" {
		t.Fatalf("database located in %+v, want volume %s_config-overseerr", m, project)
	}
	if err := h.Stop(ctx, c.ID, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	bdir := filepath.Join(t.TempDir(), "backup")
	m, err := h.Backup(ctx, c, bdir, backup.Request{Databases: []string{dbPath}, Files: []string{settings}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := sqlite.FingerprintFile(ctx, m.Files[0].Local(bdir))
	if err != nil {
		t.Fatal(err)
	}
	users, _ := fp.Table("user")
	reqs, _ := fp.Table("media_request")
	if users.Rows != standin.SeedUsers || reqs.Rows < standin.SeedRequests {
		t.Fatalf("backup holds %d users, %d requests; want %d, >= %d", users.Rows, reqs.Rows, standin.SeedUsers, standin.SeedRequests)
	}
}
