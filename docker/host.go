// Package docker is the compose host as ferry sees it, through the Docker
// Engine API: find the container of a compose service, map its data paths
// to mounts, back them up, stop and start it, and run a helper container
// that replicates its database while it serves.
//
// The engine is reached over a unix socket, tcp, or ssh:// (as Docker's
// own CLI does), with the remote host key checked against known_hosts and
// no way around that check.
//
// Nothing in this package removes a user's volume or image, and the only
// user container it removes is through Remove, which `ferry finish` calls
// after a verified migration and its hold period; otherwise it removes
// only helper containers it created itself (labelled HelperLabel).
package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/docker/docker/client"
	"golang.org/x/crypto/ssh"
)

// DefaultRemoteSocket is the engine socket on an ssh:// host.
const DefaultRemoteSocket = "/var/run/docker.sock"

// Options says how to reach the engine.
type Options struct {
	// Host is unix:///path, tcp://host:port or ssh://[user@]host[:port].
	// Empty means DOCKER_HOST, then the platform's default socket.
	Host string

	// KnownHosts are the known_hosts files an ssh:// host key must be in.
	// Empty means ~/.ssh/known_hosts. A missing file holds no keys.
	KnownHosts []string
	// SSHAuth are the ways to authenticate to an ssh:// host. Empty means
	// the agent at SSH_AUTH_SOCK and the unencrypted default identities
	// in ~/.ssh.
	SSHAuth []ssh.AuthMethod
	// RemoteSocket is the engine socket on an ssh:// host;
	// DefaultRemoteSocket when empty.
	RemoteSocket string

	Logger *slog.Logger
}

// Host is a connected Docker engine. Its methods are safe for concurrent use.
type Host struct {
	addr string // as given, for messages; never holds credentials
	api  *client.Client
	ssh  *ssh.Client // nil unless ssh://
	log  *slog.Logger
}

// UnreachableError is returned by Connect when the engine does not answer.
type UnreachableError struct {
	Host string
	Err  error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("docker engine at %s unreachable: %v", e.Host, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Connect reaches the engine and checks that it answers, negotiating the
// API version. The caller must Close the Host.
func Connect(ctx context.Context, o Options) (*Host, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	addr := o.Host
	if addr == "" {
		addr = os.Getenv("DOCKER_HOST")
	}
	h := &Host{addr: addr, log: log}
	if h.addr == "" {
		h.addr = client.DefaultDockerHost
	}

	opts := []client.Opt{client.WithAPIVersionNegotiation()}
	switch {
	case strings.HasPrefix(addr, "ssh://"):
		sc, err := dialSSH(ctx, addr, o)
		if err != nil {
			return nil, err
		}
		h.ssh = sc
		sock := o.RemoteSocket
		if sock == "" {
			sock = DefaultRemoteSocket
		}
		opts = append(opts,
			// The host name is never resolved: every connection is a
			// direct-streamlocal channel to the remote socket.
			client.WithHost("http://docker.invalid"),
			client.WithDialContext(func(ctx context.Context, _, _ string) (net.Conn, error) {
				return sc.DialContext(ctx, "unix", sock)
			}))
	case addr == "":
		opts = append(opts, client.FromEnv)
	default:
		// FromEnv first, for DOCKER_TLS_VERIFY and DOCKER_CERT_PATH; the
		// explicit host wins.
		opts = append(opts, client.FromEnv, client.WithHost(addr))
	}
	api, err := client.NewClientWithOpts(opts...)
	if err != nil {
		h.closeSSH()
		return nil, fmt.Errorf("docker: connect %s: %w", h.addr, err)
	}
	h.api = api
	if _, err := api.Ping(ctx); err != nil {
		h.Close()
		return nil, &UnreachableError{Host: h.addr, Err: err}
	}
	log.Debug("connected to docker engine", "host", h.addr, "api", api.ClientVersion())
	return h, nil
}

// Addr is the engine address as given (or the default).
func (h *Host) Addr() string { return h.addr }

// API is the Engine API client, for what this package does not wrap.
func (h *Host) API() *client.Client { return h.api }

// Close releases the connection to the engine.
func (h *Host) Close() error {
	var err error
	if h.api != nil {
		err = h.api.Close()
	}
	return errors.Join(err, h.closeSSH())
}

func (h *Host) closeSSH() error {
	if h.ssh == nil {
		return nil
	}
	return h.ssh.Close()
}

// redactURL drops a password from an address before it reaches a message.
func redactURL(addr string) string {
	u, err := url.Parse(addr)
	if err != nil || u.User == nil {
		return addr
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
