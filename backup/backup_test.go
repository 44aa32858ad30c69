package backup

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fixture(t *testing.T) (string, Fetcher) {
	t.Helper()
	src := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(src, "db"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "db", "db.sqlite3"), []byte("main"), 0o644))
	must(t, os.WriteFile(filepath.Join(src, "db", "db.sqlite3-wal"), []byte("every row"), 0o644))
	must(t, os.WriteFile(filepath.Join(src, "settings.json"), []byte(`{"apiKey":"s3cret"}`), 0o644))
	fetch := DirFetcher(func(p string) (string, error) {
		return filepath.Join(src, strings.TrimPrefix(p, "/app/config/")), nil
	})
	return src, fetch
}

var req = Request{
	Databases: []string{"/app/config/db/db.sqlite3"},
	Files:     []string{"/app/config/settings.json", "/app/config/absent.json"},
}

func TestWriteVerifyAndRerunIsIdentical(t *testing.T) {
	ctx := context.Background()
	_, fetch := fixture(t)
	dir := filepath.Join(t.TempDir(), "backup")
	m1, err := Write(ctx, dir, fetch, req, Options{})
	must(t, err)
	var paths []string
	for _, f := range m1.Files {
		paths = append(paths, f.Path)
	}
	want := "/app/config/db/db.sqlite3 /app/config/db/db.sqlite3-wal /app/config/settings.json"
	if got := strings.Join(paths, " "); got != want {
		t.Fatalf("files %q, want %q (the -wal must come along)", got, want)
	}
	fi, err := os.Stat(m1.Files[2].Local(dir))
	must(t, err)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("copied file mode %v, want 0600", fi.Mode().Perm())
	}
	before, _ := os.ReadFile(filepath.Join(dir, manifestFile))
	_, err = Write(ctx, dir, fetch, req, Options{})
	must(t, err)
	after, _ := os.ReadFile(filepath.Join(dir, manifestFile))
	if string(before) != string(after) {
		t.Fatalf("re-running changed the manifest")
	}
	if _, err := Verify(dir); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyRejectsTamperedAndIncomplete(t *testing.T) {
	ctx := context.Background()
	_, fetch := fixture(t)
	dir := filepath.Join(t.TempDir(), "backup")
	m, err := Write(ctx, dir, fetch, req, Options{})
	must(t, err)
	must(t, os.WriteFile(m.Files[1].Local(dir), []byte("torn"), 0o600))
	var ve *VerifyError
	if _, err := Verify(dir); !errors.As(err, &ve) || ve.Path != "/app/config/db/db.sqlite3-wal" {
		t.Fatalf("Verify after tampering = %v, want a VerifyError naming the -wal", err)
	}
	must(t, os.Remove(filepath.Join(dir, completeFile)))
	if _, err := Verify(dir); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Verify without COMPLETE = %v, want ErrIncomplete", err)
	}
}

func TestWriteFailureLeavesNoCompleteBackup(t *testing.T) {
	ctx := context.Background()
	_, fetch := fixture(t)
	dir := filepath.Join(t.TempDir(), "backup")
	_, err := Write(ctx, dir, fetch, req, Options{})
	must(t, err)
	broken := func(ctx context.Context, p string) (io.ReadCloser, error) {
		if strings.HasSuffix(p, "settings.json") {
			return nil, errors.New("engine went away")
		}
		return fetch(ctx, p)
	}
	if _, err := Write(ctx, dir, Fetcher(broken), req, Options{}); err == nil {
		t.Fatal("Write with a failing fetch succeeded")
	}
	if _, err := Verify(dir); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("after a failed rerun Verify = %v, want ErrIncomplete: an interrupted backup is never complete", err)
	}
}

func TestWriteRefusesForeignDirectory(t *testing.T) {
	_, fetch := fixture(t)
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "precious"), []byte("x"), 0o600))
	if _, err := Write(context.Background(), dir, fetch, req, Options{}); err == nil {
		t.Fatal("wrote a backup into a non-empty directory that is not one")
	}
	if _, err := os.Stat(filepath.Join(dir, "precious")); err != nil {
		t.Fatal("the directory's file was touched")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
