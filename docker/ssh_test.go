package docker_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"
	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/ferry-migrate/ferry/docker"
	"github.com/ferry-migrate/ferry/docker/dockertest"
)

func newSigner(t *testing.T) gossh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sshServer is an in-process SSH server that accepts one client key and
// forwards direct-streamlocal channels (what `ssh -L` to a unix socket and
// ferry's ssh:// use) to the local engine's socket, whatever path the
// client asks for: it stands in for a remote compose host.
func sshServer(t *testing.T, hostKey gossh.Signer, clientKey gossh.PublicKey, socket string) string {
	t.Helper()
	srv := &gliderssh.Server{
		PublicKeyHandler: func(ctx gliderssh.Context, key gliderssh.PublicKey) bool {
			return gliderssh.KeysEqual(key, clientKey)
		},
		ChannelHandlers: map[string]gliderssh.ChannelHandler{
			"direct-streamlocal@openssh.com": func(_ *gliderssh.Server, _ *gossh.ServerConn, nc gossh.NewChannel, _ gliderssh.Context) {
				var req struct {
					Path      string
					Reserved0 string
					Reserved1 uint32
				}
				if err := gossh.Unmarshal(nc.ExtraData(), &req); err != nil || req.Path != docker.DefaultRemoteSocket {
					nc.Reject(gossh.Prohibited, "only "+docker.DefaultRemoteSocket)
					return
				}
				up, err := net.Dial("unix", socket)
				if err != nil {
					nc.Reject(gossh.ConnectionFailed, err.Error())
					return
				}
				ch, reqs, err := nc.Accept()
				if err != nil {
					up.Close()
					return
				}
				go gossh.DiscardRequests(reqs)
				go func() { io.Copy(ch, up); ch.CloseWrite() }()
				io.Copy(up, ch)
				up.(*net.UnixConn).CloseWrite()
			},
		},
	}
	srv.AddHostKey(hostKey)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func localSocket(t *testing.T) string {
	t.Helper()
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = client.DefaultDockerHost
	}
	p, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		t.Skipf("DOCKER_HOST %s is not a unix socket", host)
	}
	return p
}

// TestSSH reaches the engine over ssh:// through an in-process SSH server
// and checks the host key handling: known key works; unknown, changed or
// no known_hosts file is refused, showing the presented fingerprint.
func TestSSH(t *testing.T) {
	dockertest.Connect(t, docker.Options{}) // skips without an engine
	hostKey, clientKey := newSigner(t), newSigner(t)
	addr := sshServer(t, hostKey, clientKey.PublicKey(), localSocket(t))
	host := "ssh://ferry@" + addr
	dir := t.TempDir()
	known := filepath.Join(dir, "known_hosts")
	write := func(key gossh.PublicKey) {
		if err := os.WriteFile(known, []byte(docker.KnownHostsLine(addr, key)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	connect := func(files ...string) (*docker.Host, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return docker.Connect(ctx, docker.Options{Host: host, KnownHosts: files, SSHAuth: []gossh.AuthMethod{gossh.PublicKeys(clientKey)}})
	}
	fingerprint := gossh.FingerprintSHA256(hostKey.PublicKey())

	t.Run("known", func(t *testing.T) {
		write(hostKey.PublicKey())
		h, err := connect(known)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		// A real round trip through the tunnel: the not-found error
		// lists what the host runs, read over ssh.
		_, err = h.Find(context.Background(), "ferry-none-"+dockertest.Suffix(), "overseerr")
		var nf *docker.NotFoundError
		if !errors.As(err, &nf) || !strings.Contains(err.Error(), host) {
			t.Fatalf("Find over ssh = %v, want *NotFoundError naming %s", err, host)
		}
	})
	for _, tc := range []struct {
		name    string
		setup   func() []string
		changed bool
	}{
		{"unknown", func() []string {
			// known_hosts vouches only for another host.
			line := docker.KnownHostsLine("other.example:22", hostKey.PublicKey())
			if err := os.WriteFile(known, []byte(line+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return []string{known}
		}, false},
		{"no known_hosts file", func() []string { return []string{filepath.Join(dir, "absent")} }, false},
		{"changed", func() []string { write(newSigner(t).PublicKey()); return []string{known} }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := connect(tc.setup()...)
			if err == nil {
				h.Close()
				t.Fatal("Connect accepted a host key that known_hosts does not vouch for")
			}
			var ke *docker.HostKeyError
			if !errors.As(err, &ke) || ke.Changed != tc.changed || ke.Fingerprint != fingerprint {
				t.Fatalf("Connect = %v, want *HostKeyError{Changed: %v, Fingerprint: %s}", err, tc.changed, fingerprint)
			}
			if !strings.Contains(err.Error(), fingerprint) {
				t.Errorf("error does not show the fingerprint: %v", err)
			}
		})
	}
}

// TestUnreachable: an engine that does not answer is a typed error that
// names the address.
func TestUnreachable(t *testing.T) {
	for _, host := range []string{"unix://" + filepath.Join(t.TempDir(), "docker.sock"), "tcp://127.0.0.1:1"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := docker.Connect(ctx, docker.Options{Host: host})
		cancel()
		var ue *docker.UnreachableError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), host) {
			t.Errorf("Connect(%s) = %v, want *UnreachableError naming the host", host, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := docker.Connect(ctx, docker.Options{Host: "ssh://ferry@127.0.0.1:1"})
	var ue *docker.UnreachableError
	if !errors.As(err, &ue) {
		t.Errorf("Connect(ssh to a closed port) = %v, want *UnreachableError", err)
	}
}
