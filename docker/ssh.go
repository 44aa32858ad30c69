package docker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyError is returned when an ssh:// host presents a key that is not
// in known_hosts (Changed false) or differs from the one recorded there
// (Changed true). There is no option to accept it anyway.
type HostKeyError struct {
	Host        string   // host:port as dialed
	KeyType     string   // e.g. ssh-ed25519
	Fingerprint string   // SHA256:... of the presented key
	Changed     bool     // a different key is recorded for Host
	KnownHosts  []string // the files searched
	Err         error    // from knownhosts
}

func (e *HostKeyError) Error() string {
	if e.Changed {
		return fmt.Sprintf("ssh host key of %s changed: it presents %s %s, which does not match %s",
			e.Host, e.KeyType, e.Fingerprint, strings.Join(e.KnownHosts, ", "))
	}
	return fmt.Sprintf("ssh host key of %s is unknown: it presents %s %s, which is not in %s",
		e.Host, e.KeyType, e.Fingerprint, strings.Join(e.KnownHosts, ", "))
}

func (e *HostKeyError) Unwrap() error { return e.Err }

// dialSSH connects to an ssh://[user@]host[:port] address, verifying the
// host key against o.KnownHosts.
func dialSSH(ctx context.Context, addr string, o Options) (*ssh.Client, error) {
	u, err := url.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("docker: parse %s: %w", redactURL(addr), err)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("docker: %s: an ssh:// host takes no path or query", redactURL(addr))
	}
	hostport := u.Host
	if u.Port() == "" {
		hostport = net.JoinHostPort(u.Hostname(), "22")
	}
	name := u.User.Username()
	if name == "" {
		cu, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("docker: ssh user: %w", err)
		}
		name = cu.Username
	}

	files := o.KnownHosts
	if len(files) == 0 {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("docker: known_hosts: %w", err)
		}
		files = []string{filepath.Join(home, ".ssh", "known_hosts")}
	}
	check, err := hostKeyCallback(files)
	if err != nil {
		return nil, err
	}
	var keyErr *HostKeyError
	callback := func(host string, remote net.Addr, key ssh.PublicKey) error {
		err := check(host, remote, key)
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) {
			keyErr = &HostKeyError{
				Host: host, KeyType: key.Type(), Fingerprint: ssh.FingerprintSHA256(key),
				Changed: len(ke.Want) > 0, KnownHosts: files, Err: err,
			}
			return keyErr
		}
		return err
	}

	auth := o.SSHAuth
	if len(auth) == 0 {
		auth = defaultAuth()
	}
	cfg := &ssh.ClientConfig{User: name, Auth: auth, HostKeyCallback: callback}
	// Offer only key types known_hosts can vouch for would be stricter,
	// but the callback already refuses everything it cannot verify.

	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return nil, &UnreachableError{Host: redactURL(addr), Err: err}
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, hostport, cfg)
	if !stop() {
		// ctx ended during the handshake and closed conn.
		if err == nil {
			c.Close()
		}
		return nil, fmt.Errorf("docker: ssh %s: %w", hostport, ctx.Err())
	}
	if err != nil {
		conn.Close()
		if keyErr != nil {
			return nil, keyErr
		}
		return nil, fmt.Errorf("docker: ssh %s: %w", hostport, err)
	}
	return ssh.NewClient(c, chans, reqs), nil
}

// hostKeyCallback reads the known_hosts files that exist; a missing file
// contributes no keys, so every host is unknown rather than trusted.
func hostKeyCallback(files []string) (ssh.HostKeyCallback, error) {
	var present []string
	for _, f := range files {
		if _, err := os.Stat(f); err == nil {
			present = append(present, f)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("docker: known_hosts: %w", err)
		}
	}
	if len(present) == 0 {
		return func(host string, _ net.Addr, _ ssh.PublicKey) error {
			return &knownhosts.KeyError{}
		}, nil
	}
	cb, err := knownhosts.New(present...)
	if err != nil {
		return nil, fmt.Errorf("docker: known_hosts: %w", err)
	}
	return cb, nil
}

// defaultAuth is the agent at SSH_AUTH_SOCK and the unencrypted default
// identities, the way ssh(1) tries them.
func defaultAuth() []ssh.AuthMethod {
	var methods []ssh.AuthMethod
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if conn, err := net.Dial("unix", sock); err == nil {
			methods = append(methods, ssh.PublicKeysCallback(agent.NewClient(conn).Signers))
		}
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return methods
	}
	var signers []ssh.Signer
	for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
		b, err := os.ReadFile(filepath.Join(home, ".ssh", name))
		if err != nil {
			continue
		}
		if s, err := ssh.ParsePrivateKey(b); err == nil {
			signers = append(signers, s)
		}
	}
	if len(signers) > 0 {
		methods = append(methods, ssh.PublicKeys(signers...))
	}
	return methods
}

// KnownHostsLine is the known_hosts line that records key for host
// ("host" or "host:port"), for tests and for showing an operator what to
// verify.
func KnownHostsLine(host string, key ssh.PublicKey) string {
	return knownhosts.Line([]string{knownhosts.Normalize(host)}, key)
}
