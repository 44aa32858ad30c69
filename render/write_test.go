package render_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferry-migrate/ferry/render"
)

func TestWriteIsAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "keep.txt"), []byte("old"), 0o644)
	// A directory where a file must go makes the last file fail.
	os.MkdirAll(filepath.Join(dir, "z", "blocked"), 0o755)
	os.WriteFile(filepath.Join(dir, "z", "blocked", "x"), nil, 0o644)
	err := render.Write(context.Background(), dir, render.Files{
		"keep.txt":  []byte("new"),
		"a/b.tf":    []byte("b"),
		"z/blocked": []byte("cannot replace a non-empty directory"),
	})
	if err == nil {
		t.Fatal("no error")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "keep.txt")); string(b) != "old" {
		t.Errorf("keep.txt = %q after a failed write", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "a", "b.tf")); err == nil {
		t.Error("a/b.tf written although the write failed")
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, "*", ".*tmp*"))
	more, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if len(leftovers)+len(more) > 0 {
		t.Errorf("temp files left: %v %v", leftovers, more)
	}
}

func TestWriteRefusesEscapingPaths(t *testing.T) {
	for _, p := range []string{"../x", "/etc/x"} {
		if err := render.Write(context.Background(), t.TempDir(), render.Files{p: nil}); err == nil {
			t.Errorf("wrote %s", p)
		}
	}
}

func TestWriteHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	if err := render.Write(ctx, dir, render.Files{"a": []byte("x")}); err == nil {
		t.Fatal("no error from a cancelled context")
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); err == nil {
		t.Error("file written under a cancelled context")
	}
}
