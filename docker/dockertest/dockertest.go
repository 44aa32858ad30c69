// Package dockertest builds what ferry's tests run against a real Docker
// engine: images FROM scratch made of static Go binaries (no registry is
// needed), and compose services created with the labels docker compose
// sets. Everything it creates is removed in t.Cleanup, and every name
// carries a random suffix so parallel runs do not collide.
package dockertest

import (
	"github.com/containerd/errdefs"

	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/volume"

	"github.com/ferry-migrate/ferry/docker"
	"github.com/ferry-migrate/ferry/internal/testenv"
)

// Connect connects to the local engine (DOCKER_HOST or the default
// socket) with o, or skips t when there is none. It is closed in t.Cleanup.
func Connect(t testing.TB, o docker.Options) *docker.Host {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := docker.Connect(ctx, o)
	if err != nil {
		testenv.Skip(t, "no docker engine: "+err.Error())
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// Suffix is a random name suffix: lowercase hex, valid in compose project,
// container, volume and image names.
func Suffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// File is one file of an image build context.
type File struct {
	Body []byte
	Mode int64 // 0 means 0644
	Dir  bool
}

// BuildImage builds an image from a Dockerfile and files, tags it
// ferry-test-<name>:<suffix>, and removes it in t.Cleanup.
func BuildImage(t testing.TB, h *docker.Host, name, dockerfile string, files map[string]File) string {
	t.Helper()
	ctx := context.Background()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files["Dockerfile"] = File{Body: []byte(dockerfile)}
	for n, f := range files {
		hdr := &tar.Header{Name: n, Mode: f.Mode, Size: int64(len(f.Body)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
		}
		if f.Dir {
			hdr.Typeflag, hdr.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.Body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	tag := "ferry-test-" + name + ":" + Suffix()
	resp, err := h.API().ImageBuild(ctx, &buf, build.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true})
	if err != nil {
		t.Fatalf("build %s: %v", tag, err)
	}
	defer resp.Body.Close()
	t.Cleanup(func() {
		if _, err := h.API().ImageRemove(context.Background(), tag, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
			t.Errorf("remove image %s: %v", tag, err)
		}
	})
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Stream, Error string
		}
		if err := dec.Decode(&msg); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("build %s: %v", tag, err)
		}
		if msg.Error != "" {
			t.Fatalf("build %s: %s", tag, msg.Error)
		}
	}
	return tag
}

// GoBinary builds a static binary of a package of this module.
func GoBinary(t testing.TB, pkg string) []byte {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go") // the toolchain running the test
	out := filepath.Join(t.TempDir(), "bin")
	cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// StandinImage builds the Overseerr stand-in (internal/standin) into an
// image FROM scratch. Its config root is /app/config and it listens on
// 5055, as Overseerr's image does.
func StandinImage(t testing.TB, h *docker.Host) string {
	t.Helper()
	bin := GoBinary(t, "github.com/ferry-migrate/ferry/internal/standin/cmd/standin")
	return BuildImage(t, h, "standin", `FROM scratch
COPY standin /standin
COPY tmp /tmp
ENV CONFIG_DIRECTORY=/app/config PORT=5055
EXPOSE 5055
ENTRYPOINT ["/standin"]
`, map[string]File{
		"standin": {Body: bin, Mode: 0o755},
		"tmp":     {Dir: true, Mode: 0o1777},
	})
}

// LitestreamConfig is the litestream.yml baked into LitestreamImage. Every
// value comes from the environment, so credentials travel only in Env.
const LitestreamConfig = `dbs:
  - path: ${DB_PATH}
    replica:
      type: s3
      bucket: ${REPLICA_BUCKET}
      path: ${REPLICA_PATH}
      endpoint: ${REPLICA_ENDPOINT}
      region: us-east-1
      force-path-style: true
      sync-interval: 200ms
      access-key-id: ${LITESTREAM_ACCESS_KEY_ID}
      secret-access-key: ${LITESTREAM_SECRET_ACCESS_KEY}
`

// LitestreamImage builds an image FROM scratch of the litestream v0.5.18
// static CLI (scripts/install-tools.sh) with LitestreamConfig at
// /etc/litestream.yml, or skips t without the CLI.
func LitestreamImage(t testing.TB, h *docker.Host) string {
	t.Helper()
	path := testenv.LookPath(t, "litestream")
	bin, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return BuildImage(t, h, "litestream", `FROM scratch
COPY litestream /litestream
COPY litestream.yml /etc/litestream.yml
COPY tmp /tmp
ENTRYPOINT ["/litestream"]
`, map[string]File{
		"litestream":     {Body: bin, Mode: 0o755},
		"litestream.yml": {Body: []byte(LitestreamConfig)},
		"tmp":            {Dir: true, Mode: 0o1777},
	})
}

// Service is a compose service created by ComposeService.
type Service struct {
	Project, Name string
	Volume        string // the named volume's full name: <project>_<volume>
	ContainerID   string
	ContainerName string
}

// ComposeService creates what `docker compose up` creates for
//
//	services:
//	  <service>:
//	    image: <image>
//	    environment: <env>
//	    volumes: [<volume>:<mountPath>]
//	volumes:
//	  <volume>:
//
// in project <project>: a labelled volume and a labelled container named
// <project>-<service>-1 on the default bridge. It does not start the
// container. Both are removed in t.Cleanup.
func ComposeService(t testing.TB, h *docker.Host, project, service, img, vol, mountPath string, env []string) *Service {
	t.Helper()
	ctx := context.Background()
	s := &Service{Project: project, Name: service, Volume: project + "_" + vol, ContainerName: project + "-" + service + "-1"}
	if _, err := h.API().VolumeCreate(ctx, volume.CreateOptions{Name: s.Volume, Labels: map[string]string{
		docker.LabelProject:          project,
		"com.docker.compose.volume":  vol,
		"com.docker.compose.version": "2.24.0",
	}}); err != nil {
		t.Fatalf("create volume: %v", err)
	}
	t.Cleanup(func() {
		if err := h.API().VolumeRemove(context.Background(), s.Volume, true); err != nil {
			t.Errorf("remove volume %s: %v", s.Volume, err)
		}
	})
	created, err := h.API().ContainerCreate(ctx, &container.Config{
		Image: img,
		Env:   env,
		Labels: map[string]string{
			docker.LabelProject:                      project,
			docker.LabelService:                      service,
			docker.LabelOneOff:                       "False",
			"com.docker.compose.container-number":    "1",
			"com.docker.compose.version":             "2.24.0",
			"com.docker.compose.config-hash":         Suffix(),
			"com.docker.compose.project.working_dir": "/srv/" + project,
		},
	}, &container.HostConfig{
		Binds: []string{s.Volume + ":" + mountPath},
	}, nil, nil, s.ContainerName)
	if err != nil {
		t.Fatalf("create container: %v", err)
	}
	s.ContainerID = created.ID
	t.Cleanup(func() {
		// The test may have removed it (ferry finish does).
		if err := h.API().ContainerRemove(context.Background(), created.ID, container.RemoveOptions{Force: true}); err != nil && !errdefs.IsNotFound(err) {
			t.Errorf("remove container %s: %v", s.ContainerName, err)
		}
	})
	return s
}

// IP is the container's address on the default bridge (it must run).
func IP(t testing.TB, h *docker.Host, id string) string {
	t.Helper()
	in, err := h.API().ContainerInspect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range in.NetworkSettings.Networks {
		if n.IPAddress != "" {
			return n.IPAddress
		}
	}
	t.Fatalf("container %s has no IP address", id)
	return ""
}

// WaitHTTP polls url until it answers 200, failing t after timeout.
func WaitHTTP(t testing.TB, url string, timeout time.Duration) []byte {
	t.Helper()
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: 2 * time.Second}
	var last string
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return b
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond) // poll interval, not readiness
	}
	t.Fatalf("%s did not answer 200 within %s: %s", url, timeout, last)
	return nil
}

// Logs is what the container printed.
func Logs(t testing.TB, h *docker.Host, id string) string {
	t.Helper()
	rc, err := h.API().ContainerLogs(context.Background(), id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return strings.ToValidUTF8(string(b), "?")
}

// PutFile writes size bytes of random data at dst inside the container
// (running or not) through the archive API.
func PutFile(t testing.TB, h *docker.Host, id, dst string, size int64) {
	t.Helper()
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{Name: filepath.Base(dst), Mode: 0o644, Size: size, Typeflag: tar.TypeReg, ModTime: time.Now()})
		if err == nil {
			_, err = io.CopyN(tw, rand.Reader, size)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	if err := h.API().CopyToContainer(context.Background(), id, filepath.Dir(dst), pr, container.CopyToContainerOptions{}); err != nil {
		t.Fatalf("put %s: %v", dst, err)
	}
}
