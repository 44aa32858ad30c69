package rehearse

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/internal/standin"
	"github.com/ferry-migrate/ferry/migrate"
	"github.com/ferry-migrate/ferry/render"
)

// localCluster plays Nomad on this machine: the volume is a directory,
// the allocation is a directory laid out as Nomad lays one out, the
// restore task is the rendered script run by busybox sh with the real
// litestream CLI, the sidecar is `litestream replicate` with the rendered
// config, and the app is the stand-in when the service is one it can
// stand in for.
type localCluster struct {
	svc        *ferry.Service // the spec, its object store pointed at the local one
	root       string
	bin        string   // PATH for the tasks: busybox applets and litestream
	env        []string // credentials, as the rendered env template provides them
	log        *slog.Logger
	healthWait time.Duration

	mu         sync.Mutex
	restoreLog bytes.Buffer
	sidecar    *exec.Cmd
	sidecarLog bytes.Buffer
	stopApp    context.CancelFunc
	appDone    chan error
	appURL     string
	deployed   bool
}

var _ migrate.Cluster = (*localCluster)(nil)

func (c *localCluster) volumeDir() string { return filepath.Join(c.root, "volume") }
func (c *localCluster) allocDir() string  { return filepath.Join(c.root, "alloc") }

func (c *localCluster) Preflight(ctx context.Context) error {
	for _, tool := range []string{"sh", "litestream"} {
		if _, err := os.Stat(filepath.Join(c.bin, tool)); err != nil {
			return fmt.Errorf("preflight: %s: %w", tool, err)
		}
	}
	return nil
}

func (c *localCluster) VolumeReady(ctx context.Context) (bool, error) {
	fi, err := os.Stat(c.volumeDir())
	return err == nil && fi.IsDir(), nil
}

func (c *localCluster) EnsureVolume(ctx context.Context) error {
	return os.MkdirAll(c.volumeDir(), 0o700)
}

// onVolume maps a container path below the config dir onto the volume.
func (c *localCluster) onVolume(p string) (string, error) {
	rel, ok := strings.CutPrefix(p, c.svc.ConfigDir+"/")
	if !ok {
		return "", fmt.Errorf("%s is not below the config dir %s", p, c.svc.ConfigDir)
	}
	return filepath.Join(c.volumeDir(), filepath.FromSlash(rel)), nil
}

func (c *localCluster) WriteConfig(ctx context.Context, files map[string][]byte) (map[string]string, error) {
	sums := map[string]string{}
	for p, data := range files {
		local, err := c.onVolume(p)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(local), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(local, data, 0o600); err != nil {
			return nil, err
		}
		back, err := os.ReadFile(local)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(back)
		sums[p] = hex.EncodeToString(sum[:])
	}
	return sums, nil
}

// Deploy runs the allocation's tasks in Nomad's order: the restore
// prestart task to completion, then the app and the replicate sidecar.
func (c *localCluster) Deploy(ctx context.Context, progress func(string)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deployed {
		return nil
	}
	for _, d := range []string{"data", "logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(c.allocDir(), d), 0o755); err != nil {
			return err
		}
	}
	progress("task " + ferry.TaskRestore + " started")
	if err := c.runRestore(ctx); err != nil {
		return fmt.Errorf("task %s failed: %w\n%s", ferry.TaskRestore, err, tail(c.restoreLog.String(), 20))
	}
	progress("task " + ferry.TaskRestore + " finished")
	if err := c.startApp(ctx); err != nil {
		return err
	}
	progress("task " + c.svc.Name + " started")
	if err := c.startSidecar(); err != nil {
		return err
	}
	progress("task " + ferry.TaskReplicate + " started")
	if err := c.waitHealthy(ctx); err != nil {
		return err
	}
	progress("allocation healthy")
	c.deployed = true
	return nil
}

func (c *localCluster) taskEnv(task string) ([]string, error) {
	taskDir := filepath.Join(c.root, "tasks", task)
	for _, d := range []string{"local", "secrets"} {
		if err := os.MkdirAll(filepath.Join(taskDir, d), 0o700); err != nil {
			return nil, err
		}
	}
	env := []string{
		"PATH=" + c.bin,
		"HOME=" + taskDir,
		"NOMAD_ALLOC_DIR=" + c.allocDir(),
		"NOMAD_TASK_DIR=" + filepath.Join(taskDir, "local"),
		"NOMAD_SECRETS_DIR=" + filepath.Join(taskDir, "secrets"),
		"NOMAD_TASK_NAME=" + task,
	}
	return append(env, c.env...), nil
}

func (c *localCluster) runRestore(ctx context.Context) error {
	env, err := c.taskEnv(ferry.TaskRestore)
	if err != nil {
		return err
	}
	local := filepath.Join(c.root, "tasks", ferry.TaskRestore, "local")
	script := filepath.Join(local, "restore.sh")
	if err := os.WriteFile(script, []byte(render.RestoreScript(c.svc)), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(local, "litestream.yml"), []byte(render.LitestreamConfig(c.svc)), 0o600); err != nil {
		return err
	}
	// The restore script bounds its own waits; this bounds a hung one.
	ctx, cancel := context.WithTimeout(ctx, c.svc.Litestream.WaitTimeout+5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, "sh"), script)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &c.restoreLog, &c.restoreLog
	return cmd.Run()
}

func (c *localCluster) startSidecar() error {
	env, err := c.taskEnv(ferry.TaskReplicate)
	if err != nil {
		return err
	}
	cfg := filepath.Join(c.root, "tasks", ferry.TaskReplicate, "local", "litestream.yml")
	if err := os.WriteFile(cfg, []byte(render.LitestreamConfig(c.svc)), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(c.bin, "litestream"), "replicate", "-config", cfg)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &c.sidecarLog, &c.sidecarLog
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("task %s: %w", ferry.TaskReplicate, err)
	}
	c.sidecar = cmd
	return nil
}

// startApp runs the stand-in on the volume with each database directory
// bound from the allocation's data directory, as the jobspec's mounts do.
func (c *localCluster) startApp(ctx context.Context) error {
	if !standsIn(c.svc) {
		c.log.Info("the app cannot run on this machine; verifying its restored databases without it", "image", c.svc.Image)
		return nil
	}
	view := filepath.Join(c.root, "app-config")
	if err := os.MkdirAll(view, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(c.volumeDir())
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.Symlink(filepath.Join(c.volumeDir(), e.Name()), filepath.Join(view, e.Name())); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	dir := render.DBDirs(c.svc)[0]
	if err := os.Symlink(filepath.Join(c.allocDir(), filepath.FromSlash(dir.Alloc)), filepath.Join(view, "db")); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close()
	appCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		done <- standin.Run(appCtx, standin.Options{Addr: addr, ConfigDir: view, Ready: ready, Logger: c.log.With("task", c.svc.Name)})
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		return fmt.Errorf("task %s: %w", c.svc.Name, err)
	case <-ctx.Done():
		cancel()
		return ctx.Err()
	}
	c.stopApp, c.appDone, c.appURL = cancel, done, "http://"+addr
	return nil
}

// standsIn reports whether the stand-in app can play the service: it
// keeps Overseerr's layout (one database at <config>/db/db.sqlite3).
func standsIn(s *ferry.Service) bool {
	return len(s.Databases) == 1 && s.Databases[0].Path == s.ConfigDir+"/db/db.sqlite3"
}

func (c *localCluster) waitHealthy(ctx context.Context) error {
	if c.appURL == "" {
		return nil
	}
	deadline := time.Now().Add(c.healthWait)
	for {
		if code, err := httpGet(ctx, c.appURL+c.svc.Health.Path); err == nil && code == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("task %s: %s did not answer 200 within %s", c.svc.Name, c.svc.Health.Path, c.healthWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *localCluster) Status(ctx context.Context) (*migrate.JobStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := &migrate.JobStatus{Running: c.deployed, Node: "localhost", URL: c.appURL, RestoreLog: c.restoreLog.String()}
	if !c.deployed {
		return st, nil
	}
	st.Healthy = c.sidecar != nil && c.sidecar.ProcessState == nil
	if c.appURL != "" {
		code, err := httpGet(ctx, c.appURL+c.svc.Health.Path)
		st.Healthy = st.Healthy && err == nil && code == http.StatusOK
	}
	return st, nil
}

// Stop stops the app and then the sidecar, which syncs what is left
// before it exits (SIGTERM), as Nomad's kill order does.
func (c *localCluster) Stop(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopApp != nil {
		c.stopApp()
		<-c.appDone
		c.stopApp = nil
	}
	if c.sidecar != nil && c.sidecar.ProcessState == nil {
		c.sidecar.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- c.sidecar.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			c.sidecar.Process.Kill()
			<-done
		}
	}
	c.deployed = false
	return nil
}

func httpGet(ctx context.Context, url string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
