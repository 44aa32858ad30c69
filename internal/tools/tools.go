// Package tools finds the programs ferry runs beside itself (busybox, the
// pinned litestream CLI), as scripts/install-tools.sh installs them.
package tools

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// ErrNotFound is a program that is neither installed nor on PATH.
var ErrNotFound = exec.ErrNotFound

// Find returns the absolute path of a program: first in $GOPATH/bin and
// ~/go/bin, where the set-up script installs the pinned versions (so an
// older litestream elsewhere on PATH is not picked by mistake), then on
// PATH.
func Find(name string) (string, error) {
	var dirs []string
	if gp := os.Getenv("GOPATH"); gp != "" {
		dirs = append(dirs, filepath.Join(gp, "bin"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return filepath.Abs(p)
	}
	return "", fmt.Errorf("%s: %w (scripts/install-tools.sh installs it)", name, ErrNotFound)
}
