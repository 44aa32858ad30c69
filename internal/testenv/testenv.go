// Package testenv finds the real parts that ferry's tests run against
// (S3 server processes, the litestream CLI, busybox, the Docker engine) and
// decides what happens when one is missing.
//
// A test that needs a real part calls Skip when it cannot find it. Locally
// that skips with the reason; with FERRY_REQUIRE_REAL=1 (set by .ci/run) it
// fails instead, so CI cannot pass by skipping what it was meant to check.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RequireRealEnv is the variable that turns skips for missing real parts
// into failures.
const RequireRealEnv = "FERRY_REQUIRE_REAL"

// Skip skips t, or fails it when RequireRealEnv is set.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(RequireRealEnv) != "" {
		t.Fatalf("missing real part (and %s is set): %s", RequireRealEnv, reason)
	}
	t.Skip(reason)
}

// LookPath finds a program on PATH or in GOPATH/bin (where the set-up
// script installs pinned tools), or skips t.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	if p, err := Find(name); err == nil {
		return p
	}
	Skip(t, name+" not found on PATH or in $(go env GOPATH)/bin; run scripts/install-tools.sh")
	return ""
}

// Find looks for a program on PATH, then in GOPATH/bin and ~/go/bin.
func Find(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	var dirs []string
	if gp := os.Getenv("GOPATH"); gp != "" {
		dirs = append(dirs, filepath.Join(gp, "bin"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}
