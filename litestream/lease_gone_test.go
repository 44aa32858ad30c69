package litestream

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// A lease left by a process of this host that is gone (ferry killed
// mid-seed) does not block the resumed migration; a live one does.
func TestLeaseOfDeadProcessIsTakenOver(t *testing.T) {
	host, _ := os.Hostname()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		pid  int
		want bool // acquired
	}{
		{"dead holder", dead.Process.Pid, true},
		{"live holder", os.Getppid(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			held := Lease{Holder: "ferry migrate overseerr", Hostname: host, PID: tc.pid, Token: "other", Expires: time.Now().Add(time.Hour)}
			data, _ := json.Marshal(held)
			if err := os.WriteFile(filepath.Join(dir, LeaseFile), data, 0o600); err != nil {
				t.Fatal(err)
			}
			err := newLeaser(dirLeaseStore{dir}, "me", time.Minute, time.Millisecond).acquire(context.Background())
			var he *LeaseHeldError
			switch {
			case tc.want && err != nil:
				t.Fatalf("acquire = %v, want the dead holder's lease taken over", err)
			case !tc.want && !errors.As(err, &he):
				t.Fatalf("acquire = %v, want *LeaseHeldError for a live holder", err)
			}
		})
	}
}
