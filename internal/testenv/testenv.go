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
	"testing"

	"github.com/ferry-migrate/ferry/internal/tools"
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

// LookPath finds a program as tools.Find does (the pinned install first,
// then PATH), or skips t.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	if p, err := tools.Find(name); err == nil {
		return p
	}
	Skip(t, name+" not found on PATH or in $(go env GOPATH)/bin; run scripts/install-tools.sh")
	return ""
}
