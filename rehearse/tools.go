package rehearse

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// toolDir builds the tasks' PATH: every busybox applet (as in the
// litestream image, which is Alpine-based) and the litestream CLI, and
// nothing else from this machine, so the restore script cannot lean on a
// tool the image lacks.
func toolDir(root string, search []string) (string, error) {
	busybox, err := findTool("busybox", search)
	if err != nil {
		return "", err
	}
	ls, err := findTool("litestream", search)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", err
	}
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return "", fmt.Errorf("busybox --list: %w", err)
	}
	for _, applet := range strings.Fields(string(bytes.TrimSpace(out))) {
		if err := os.Symlink(busybox, filepath.Join(bin, applet)); err != nil && !errors.Is(err, os.ErrExist) {
			return "", err
		}
	}
	if err := os.Symlink(ls, filepath.Join(bin, "litestream")); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	return bin, nil
}

// ErrToolMissing is a tool the rehearsal needs and cannot find.
var ErrToolMissing = errors.New("tool not found")

func findTool(name string, search []string) (string, error) {
	dirs := append([]string{}, search...)
	if gp := os.Getenv("GOPATH"); gp != "" {
		dirs = append(dirs, filepath.Join(gp, "bin"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return filepath.Abs(p)
	}
	return "", fmt.Errorf("%s: %w (scripts/install-tools.sh installs it)", name, ErrToolMissing)
}
