package nomad_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/nomad"
	"github.com/ferry-migrate/ferry/nomad/nomadtest"
)

// The tests run against the double by default. With FERRY_NOMAD_BIN
// naming a Nomad binary (v1.6+; must run as root for raw_exec in -dev),
//
//	FERRY_NOMAD_BIN=$(command -v nomad) go test ./nomad/
//
// the tests that can run on a real agent start one `nomad agent -dev`
// on loopback (ports from a free port, data in a temp dir) and run against
// it instead; tests that need the double's scripting (several nodes, CSI
// plugins, ACL tokens, injected faults) skip. The jobspecs use raw_exec
// tasks whose shell scripts really fail or succeed, so the same
// assertions hold on both; scripting calls are no-ops on the real agent.

var (
	realOnce sync.Once
	realAddr string
	realErr  error
	realStop func()
)

func TestMain(m *testing.M) {
	code := m.Run()
	if realStop != nil {
		realStop()
	}
	os.Exit(code)
}

// cluster is what a test talks to.
type cluster struct {
	addr   string
	double *nomadtest.Server // nil against a real agent
}

// real reports whether tests run against a real Nomad agent.
func real() bool { return os.Getenv("FERRY_NOMAD_BIN") != "" }

// newCluster returns the double configured with opts, or the shared real
// agent (opts are then ignored; tests needing them call doubleOnly).
func newCluster(t *testing.T, opts nomadtest.Options) *cluster {
	t.Helper()
	if !real() {
		d := nomadtest.New(t, opts)
		return &cluster{addr: d.URL, double: d}
	}
	realOnce.Do(startReal)
	if realErr != nil {
		t.Fatalf("start nomad agent -dev: %v", realErr)
	}
	return &cluster{addr: realAddr}
}

// doubleOnly skips a test that needs the double's scripting (several
// nodes, CSI plugins, ACLs, faults) when running against a real agent.
func doubleOnly(t *testing.T) {
	t.Helper()
	if real() {
		t.Skip("needs the double's scripting (nodes, plugins, ACLs or faults); not available on nomad agent -dev")
	}
}

func (c *cluster) script(job string, b nomadtest.Behavior) {
	if c.double != nil {
		c.double.Script(job, b)
	}
}

func startReal() {
	bin := os.Getenv("FERRY_NOMAD_BIN")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		realErr = err
		return
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, err := os.MkdirTemp("", "ferry-nomad-dev")
	if err != nil {
		realErr = err
		return
	}
	cfg := filepath.Join(dir, "ports.hcl")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("ports {\n  http = %d\n  rpc = %d\n  serf = %d\n}\n", port, port+1, port+2)), 0o644); err != nil {
		realErr = err
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "agent", "-dev", "-bind", "127.0.0.1", "-data-dir", filepath.Join(dir, "data"), "-config", cfg)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		realErr = err
		return
	}
	realStop = func() { cancel(); cmd.Wait(); os.RemoveAll(dir) }
	realAddr = fmt.Sprintf("http://127.0.0.1:%d", port)
	// Ready when the agent has a leader and one ready node (poll with a deadline).
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(realAddr + "/v1/nodes")
		if err == nil {
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && bytes.Contains(b.Bytes(), []byte(`"Status":"ready"`)) {
				return
			}
		}
		t := time.NewTimer(250 * time.Millisecond)
		<-t.C
	}
	realErr = fmt.Errorf("agent not ready after 60s; output:\n%s", out.String())
}

// logBuffer captures everything a client logs, at debug level.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (c *cluster) client(t *testing.T, cfg nomad.Config) (*nomad.Client, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	cfg.Address = c.addr
	cl, err := nomad.New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return cl, logs
}

// timeout is generous against a real agent, whose deployments take
// seconds to minutes.
func timeout() time.Duration {
	if real() {
		return 5 * time.Minute
	}
	return 20 * time.Second
}

// webHCL is a service job shaped like ferry's (prestart restore, main app,
// poststart sidecar, service, update with auto_revert), with raw_exec
// tasks so it runs on `nomad agent -dev`. appScript is the app's shell.
func webHCL(name, restoreScript, appScript string) string {
	return fmt.Sprintf(`job %[1]q {
  datacenters = ["dc1"]
  type        = "service"

  update {
    max_parallel      = 1
    min_healthy_time  = "1s"
    healthy_deadline  = "20s"
    progress_deadline = "30s"
    auto_revert       = true
  }

  group "web" {
    count = 1

    network {
      mode = "host"
      port "http" {}
    }

    ephemeral_disk {
      sticky  = true
      migrate = true
      size    = 200
    }

    restart {
      attempts = 0
      mode     = "fail"
    }

    reschedule {
      attempts  = 0
      unlimited = false
    }

    service {
      name     = %[1]q
      provider = "nomad"
      port     = "http"
    }

    task "restore" {
      driver = "raw_exec"
      lifecycle {
        hook    = "prestart"
        sidecar = false
      }
      config {
        command = "/bin/sh"
        args    = ["-c", %[2]q]
      }
    }

    task "app" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", %[3]q]
      }
      env {
        PORT = "${NOMAD_PORT_http}"
      }
      resources {
        cpu        = 100
        memory     = 64
        memory_max = 128
      }
    }

    task "replicate" {
      driver = "raw_exec"
      lifecycle {
        hook    = "poststart"
        sidecar = true
      }
      config {
        command = "/bin/sh"
        args    = ["-c", "while true; do echo syncing; sleep 5; done"]
      }
    }
  }
}
`, name, restoreScript, appScript)
}

const (
	restoreOK   = "echo restoring; echo restored"
	restoreFail = "echo restoring; echo 'restore: replica unreachable' >&2; exit 1"
	appOK       = "echo app up; while true; do sleep 1; done"
	appFail     = "echo 'app: fatal: config missing' >&2; exit 1"
)

func slogTo(l *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
