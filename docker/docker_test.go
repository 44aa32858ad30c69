package docker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/backup"
	"github.com/ferry-migrate/ferry/docker"
	"github.com/ferry-migrate/ferry/docker/dockertest"
	"github.com/ferry-migrate/ferry/internal/standin"
	"github.com/ferry-migrate/ferry/sqlite"
)

const (
	configDir = "/app/config"
	dbPath    = "/app/config/db/db.sqlite3"
	settings  = "/app/config/settings.json"
)

// logBuffer is an slog destination safe for concurrent use, so tests can
// assert on everything ferry logged.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// overseerr starts the stand-in as compose service "overseerr" of a fresh
// project downloads<suffix>, with volume config-overseerr at /app/config,
// and waits until it serves.
func overseerr(t *testing.T, h *docker.Host, env ...string) (*dockertest.Service, string) {
	t.Helper()
	img := dockertest.StandinImage(t, h)
	svc := dockertest.ComposeService(t, h, "downloads"+dockertest.Suffix(), "overseerr", img, "config-overseerr", configDir, env)
	if err := h.Start(context.Background(), svc.ContainerID); err != nil {
		t.Fatal(err)
	}
	base := "http://" + dockertest.IP(t, h, svc.ContainerID) + ":5055"
	body := dockertest.WaitHTTP(t, base+"/api/v1/status", 30*time.Second)
	var st struct{ Version string }
	if err := json.Unmarshal(body, &st); err != nil || st.Version != standin.Version {
		t.Fatalf("status = %s (%v), want version %s", body, err, standin.Version)
	}
	return svc, base
}

func spec(project string) *ferry.Service {
	return &ferry.Service{
		Source:      ferry.Source{Project: project, Service: "overseerr"},
		Databases:   []ferry.Database{{Name: "db", Path: dbPath, ReplicaPath: "db"}},
		ConfigFiles: []string{settings},
	}
}

// secrets are every secret value in a settings.json.
func secrets(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s standin.Settings
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	out := []string{s.ClientID, s.Main.APIKey}
	for _, i := range append(s.Sonarr, s.Radarr...) {
		out = append(out, i.APIKey, i.URL)
	}
	for _, v := range out {
		if len(v) < 8 {
			t.Fatalf("settings.json secret %q too short to search for", v)
		}
	}
	return out
}

func assertNoSecrets(t *testing.T, secrets []string, where string, texts ...string) {
	t.Helper()
	for _, text := range texts {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("a settings.json secret appears in %s", where)
			}
		}
	}
}

// TestComposeService runs find, map, stop, backup and start against the
// stand-in running as a compose service on the real engine.
func TestComposeService(t *testing.T) {
	if testing.Short() {
		t.Skip("builds images and runs containers")
	}
	ctx := context.Background()
	log, logs := newLogger()
	h := dockertest.Connect(t, docker.Options{Logger: log})
	svc, base := overseerr(t, h)

	c, err := h.Find(ctx, svc.Project, "overseerr")
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != svc.ContainerID || c.Name != svc.ContainerName || c.Project != svc.Project {
		t.Fatalf("Find = %+v, want container %s (%s)", c, svc.ContainerID, svc.ContainerName)
	}

	// Not found: the error names what the host runs.
	var errs []string
	_, err = h.Find(ctx, svc.Project, "sonarr")
	var nf *docker.NotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("Find(sonarr) = %v, want *NotFoundError", err)
	}
	if !strings.Contains(err.Error(), svc.Project+"/overseerr ("+svc.ContainerName+", running)") {
		t.Errorf("not-found error does not list the service present: %v", err)
	}
	errs = append(errs, err.Error())

	// Map: both paths live in the named volume.
	located, err := c.Map(spec(svc.Project))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range located {
		if l.Mount.Type != "volume" || l.Mount.Name != svc.Volume || l.Mount.Destination != configDir {
			t.Errorf("%s located in %+v, want volume %s at %s", l.Path, l.Mount, svc.Volume, configDir)
		}
	}
	if located[0].Rel != "db/db.sqlite3" {
		t.Errorf("Rel = %q, want db/db.sqlite3", located[0].Rel)
	}
	bad := spec(svc.Project)
	bad.Databases[0].Path = "/app/data/db.sqlite3"
	_, err = c.Map(bad)
	var nim *docker.NotInMountError
	if !errors.As(err, &nim) || nim.Path != "/app/data/db.sqlite3" {
		t.Fatalf("Map(outside) = %v, want *NotInMountError for /app/data/db.sqlite3", err)
	}
	if !strings.Contains(err.Error(), "/app/config <- volume "+svc.Volume) {
		t.Errorf("not-in-mount error does not list the mounts: %v", err)
	}
	errs = append(errs, err.Error())

	// Stop like docker stop: the stand-in leaves every row in the -wal.
	if err := h.Stop(ctx, c.ID, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if st, err := h.State(ctx, c.ID); err != nil || st.Running || st.Status != "exited" {
		t.Fatalf("State after Stop = %+v, %v; want exited", st, err)
	}

	dir := filepath.Join(t.TempDir(), "backup")
	req := backup.Request{Databases: []string{dbPath}, Files: []string{settings}}
	m, err := h.Backup(ctx, c, dir, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range m.Files {
		got = append(got, f.Path)
	}
	want := []string{dbPath, dbPath + "-shm", dbPath + "-wal", settings}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("manifest files = %v, want %v", got, want)
	}
	if _, err := backup.Verify(dir); err != nil {
		t.Fatal(err)
	}
	assertModes(t, dir)

	// The Overseerr hazard is really there: the main file alone is empty.
	main, wal := m.Files[0], m.Files[2]
	if main.Size != 4096 || wal.Size == 0 {
		t.Errorf("db %d bytes, -wal %d bytes; want a 4096-byte main file and rows in the -wal", main.Size, wal.Size)
	}
	fp, err := sqlite.FingerprintFile(ctx, main.Local(dir))
	if err != nil {
		t.Fatal(err)
	}
	if users, _ := fp.Table("user"); users.Rows != standin.SeedUsers || !fp.OK() {
		t.Errorf("backup has %d users (integrity %s), want %d", users.Rows, fp.Integrity, standin.SeedUsers)
	}

	// Re-running gives the same manifest.
	m2, err := h.Backup(ctx, c, dir, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !equalManifests(m, m2) {
		t.Errorf("re-run manifest differs:\n%+v\n%+v", m, m2)
	}

	// Start again (the rollback path): the app still has its users.
	if err := h.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	base = "http://" + dockertest.IP(t, h, c.ID) + ":5055"
	dockertest.WaitHTTP(t, base+"/api/v1/status", 30*time.Second)
	var counts map[string]int
	if err := json.Unmarshal(dockertest.WaitHTTP(t, base+"/standin/counts", 10*time.Second), &counts); err != nil {
		t.Fatal(err)
	}
	if counts["user"] != standin.SeedUsers {
		t.Errorf("after restart the app has %d users, want %d", counts["user"], standin.SeedUsers)
	}

	sec := secrets(t, filepath.Join(dir, "data", strings.TrimPrefix(settings, "/")))
	assertNoSecrets(t, sec, "ferry's log", logs.String())
	assertNoSecrets(t, sec, "an error", errs...)
	assertNoSecrets(t, sec, "the app's log", dockertest.Logs(t, h, c.ID))
}

func assertModes(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(filepath.Join(dir, "data"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", p, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func equalManifests(a, b *backup.Manifest) bool {
	if len(a.Files) != len(b.Files) {
		return false
	}
	for i := range a.Files {
		if a.Files[i] != b.Files[i] {
			return false
		}
	}
	return true
}
