package rehearse

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/ferry-migrate/ferry/internal/tools"
)

// toolDir builds the tasks' PATH: every busybox applet (as in the
// litestream image, which is Alpine-based) and the litestream CLI, and
// nothing else from this machine, so the restore script cannot lean on a
// tool the image lacks.
func toolDir(root string) (string, error) {
	busybox, err := tools.Find("busybox")
	if err != nil {
		return "", err
	}
	ls, err := tools.Find("litestream")
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
