package docker_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/backup"
	"github.com/ferry-migrate/ferry/docker"
	"github.com/ferry-migrate/ferry/docker/dockertest"
)

const blobSize = 256 << 20

// TestBackupHelperProcess is not a test: it is the ferry process that
// TestBackupInterrupted kills mid-stream.
func TestBackupHelperProcess(t *testing.T) {
	args := os.Getenv("FERRY_TEST_BACKUP_HELPER")
	if args == "" {
		t.Skip("helper process for TestBackupInterrupted")
	}
	project, dir, _ := strings.Cut(args, ",")
	ctx := context.Background()
	h, err := docker.Connect(ctx, docker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := h.Find(ctx, project, "overseerr")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Backup(ctx, c, dir, backup.Request{Files: []string{configDir}}, nil); err != nil {
		t.Fatal(err)
	}
}

// TestBackupInterrupted kills a ferry process in the middle of streaming
// a backup, over a directory that held a complete backup: what is left
// must not verify, and a re-run completes with the original manifest.
func TestBackupInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("builds images and runs containers")
	}
	ctx := context.Background()
	h := dockertest.Connect(t, docker.Options{})
	img := dockertest.StandinImage(t, h)
	svc := dockertest.ComposeService(t, h, "downloads"+dockertest.Suffix(), "overseerr", img, "config-overseerr", configDir, nil)
	dockertest.PutFile(t, h, svc.ContainerID, configDir+"/blob", blobSize)
	dockertest.PutFile(t, h, svc.ContainerID, configDir+"/settings.json", 1024)
	c, err := h.Find(ctx, svc.Project, "overseerr")
	if err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "backup")
	req := backup.Request{Files: []string{configDir}}
	first, err := h.Backup(ctx, c, dir, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Files) != 2 || first.Files[0].Path != configDir+"/blob" || first.Files[0].Size != blobSize {
		t.Fatalf("manifest %+v, want blob (%d bytes) and settings.json", first.Files, blobSize)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestBackupHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FERRY_TEST_BACKUP_HELPER="+svc.Project+","+dir)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Kill once the blob is partly rewritten: mid-stream.
	blob := first.Files[0].Local(dir)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if fi, err := os.Stat(blob); err == nil && fi.Size() > 1<<20 && fi.Size() < blobSize {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("backup process exited (%v) before it could be killed mid-stream:\n%s", err, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("backup process did not start streaming within a minute")
		}
		time.Sleep(time.Millisecond) // poll interval
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited

	if _, err := backup.Verify(dir); !errors.Is(err, backup.ErrIncomplete) {
		t.Fatalf("VerifyBackup after a killed run = %v, want ErrIncomplete", err)
	}

	again, err := h.Backup(ctx, c, dir, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	verified, err := backup.Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !equalManifests(first, again) || !equalManifests(first, verified) {
		t.Fatalf("manifests differ:\nfirst    %+v\nre-run   %+v\nverified %+v", first, again, verified)
	}

	// A file changed after completion is caught.
	if err := os.WriteFile(blob, []byte("tampered"), 0o600); err != nil {
		t.Fatal(err)
	}
	var ve *backup.VerifyError
	if _, err := backup.Verify(dir); !errors.As(err, &ve) || ve.Path != configDir+"/blob" {
		t.Fatalf("VerifyBackup of a tampered backup = %v, want *VerifyError for the blob", err)
	}
}

// TestBackupRefusesForeignDir: Backup never writes into (or clears) a
// non-empty directory that is not a ferry backup.
func TestBackupRefusesForeignDir(t *testing.T) {
	if testing.Short() {
		t.Skip("runs containers")
	}
	h := dockertest.Connect(t, docker.Options{})
	dir := t.TempDir()
	keep := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(keep, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := h.Backup(context.Background(), &docker.Container{ID: "none", Name: "none"}, dir, backup.Request{Files: []string{"/x"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "holds no ferry backup") {
		t.Fatalf("Backup into a foreign dir = %v, want a refusal", err)
	}
	if b, err := os.ReadFile(keep); err != nil || string(b) != "mine" {
		t.Fatalf("foreign file changed: %q, %v", b, err)
	}
}
