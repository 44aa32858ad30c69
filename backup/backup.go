// Package backup writes and verifies ferry's backup directories: a copy
// of a service's files taken from wherever they live (a container through
// the Docker archive API, a local directory), with a sha256 manifest, and
// marked complete only once every file re-verified from disk.
//
// A backup directory holds:
//
//	.ferry-backup      marks the directory as ferry's; Write writes into no
//	                   other non-empty directory
//	data/<path>        each file at its path inside the container; files
//	                   0600, directories 0700
//	MANIFEST.sha256    "<sha256>  data/<path>" per file, sorted by path, so
//	                   `sha256sum -c MANIFEST.sha256` checks it too
//	COMPLETE           "sha256:<hex of MANIFEST.sha256>", written atomically
//	                   only after every file re-verified from disk
//
// A directory without COMPLETE, or whose COMPLETE does not match its
// manifest, is not a backup.
package backup

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ferry-migrate/ferry/internal/atomicfile"
)

const (
	marker       = ".ferry-backup"
	dataDir      = "data"
	manifestFile = "MANIFEST.sha256"
	completeFile = "COMPLETE"
)

// ErrIncomplete is returned by Verify for a directory that holds no
// complete backup (never finished, interrupted, or being rewritten).
var ErrIncomplete = errors.New("backup is not complete")

// ErrNotFound is returned by a Fetcher for a path that does not exist.
var ErrNotFound = fs.ErrNotExist

// VerifyError is a file in a backup that does not match its manifest.
type VerifyError struct {
	Dir, Path string // Path is inside the container
	Want, Got string // sha256 hex; Got is empty for a missing file
}

func (e *VerifyError) Error() string {
	if e.Got == "" {
		return fmt.Sprintf("backup %s: %s is missing", e.Dir, e.Path)
	}
	return fmt.Sprintf("backup %s: %s has sha256 %s, manifest says %s", e.Dir, e.Path, e.Got, e.Want)
}

// Manifest lists the files of a backup, sorted by Path.
type Manifest struct {
	Files []FileSum
}

// Lookup returns the file at a container path.
func (m *Manifest) Lookup(path string) (FileSum, bool) {
	for _, f := range m.Files {
		if f.Path == path {
			return f, true
		}
	}
	return FileSum{}, false
}

// Size is the total size of the files.
func (m *Manifest) Size() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// FileSum is one file of a backup.
type FileSum struct {
	Path   string // inside the container, absolute
	Size   int64
	SHA256 string // hex
}

// Local is where the file is stored below a backup directory.
func (f FileSum) Local(dir string) string {
	return filepath.Join(dir, dataDir, filepath.FromSlash(strings.TrimPrefix(f.Path, "/")))
}

// Request says what to back up: paths inside the container.
type Request struct {
	// Databases are SQLite database files. Each is copied with its -wal
	// and -shm when they exist: an app that never checkpoints (Overseerr)
	// keeps every row in the -wal.
	Databases []string
	// Files are other files or directories, copied recursively. A file
	// that does not exist is skipped (an app may not have written it yet).
	Files []string
}

// Options are Write's optional settings.
type Options struct {
	// Progress, if set, hears the bytes copied so far.
	Progress func(done, total int64)
	// Log hears about files that are not copied (symlinks, devices).
	Log *slog.Logger
}

// Fetcher streams one path as a tar archive whose entry names are
// relative to the path's parent directory, as the Docker archive API
// does. It returns an error wrapping ErrNotFound for a missing path.
type Fetcher func(ctx context.Context, p string) (io.ReadCloser, error)

// Write copies the requested paths into dir, writes the manifest,
// re-verifies it from disk and only then marks the backup complete.
//
// Write is idempotent: re-running it over the same data produces the same
// manifest. It first removes any COMPLETE marker in dir, so a run that is
// interrupted (or fails) leaves a directory Verify rejects. dir must be
// absent, empty, or an earlier backup.
func Write(ctx context.Context, dir string, fetch Fetcher, req Request, opt Options) (*Manifest, error) {
	if err := prepare(dir); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &writer{dir: dir, fetch: fetch, sums: map[string]FileSum{}, buf: make([]byte, 1<<20), progress: opt.Progress, log: log}
	for _, db := range req.Databases {
		if err := b.copy(ctx, db, true); err != nil {
			return nil, err
		}
		for _, suffix := range []string{"-wal", "-shm"} {
			if err := b.copy(ctx, db+suffix, false); err != nil {
				return nil, err
			}
		}
	}
	for _, f := range req.Files {
		if err := b.copy(ctx, f, false); err != nil {
			return nil, err
		}
	}
	if err := b.syncDirs(); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}

	m := &Manifest{}
	for _, p := range slices.Sorted(maps.Keys(b.sums)) {
		m.Files = append(m.Files, b.sums[p])
	}
	manifest := m.encode()
	if err := atomicfile.WriteFile(filepath.Join(dir, manifestFile), manifest, 0o600); err != nil {
		return nil, fmt.Errorf("backup: write manifest: %w", err)
	}
	// Re-read everything from disk: what is marked complete is what is
	// there, not what was meant to be written.
	onDisk, err := verifyFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if !slices.Equal(onDisk.Files, m.Files) {
		return nil, fmt.Errorf("backup: manifest on disk differs from what was written")
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, completeFile), completeLine(manifest), 0o600); err != nil {
		return nil, fmt.Errorf("backup: mark complete: %w", err)
	}
	return m, nil
}

// Verify checks that dir holds a complete backup whose files all match
// its manifest, and returns the manifest. It returns an error wrapping
// ErrIncomplete when the backup was never marked complete, and a
// *VerifyError for a file that does not match.
func Verify(dir string) (*Manifest, error) {
	complete, err := os.ReadFile(filepath.Join(dir, completeFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("verify backup %s: %w", dir, ErrIncomplete)
	}
	if err != nil {
		return nil, fmt.Errorf("verify backup %s: %w", dir, err)
	}
	manifest, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if err != nil {
		return nil, fmt.Errorf("verify backup %s: %w", dir, err)
	}
	if !bytes.Equal(complete, completeLine(manifest)) {
		return nil, fmt.Errorf("verify backup %s: manifest changed after the backup completed: %w", dir, ErrIncomplete)
	}
	m, err := verifyFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("verify backup %s: %w", dir, err)
	}
	return m, nil
}

func completeLine(manifest []byte) []byte {
	sum := sha256.Sum256(manifest)
	return []byte("sha256:" + hex.EncodeToString(sum[:]) + "\n")
}

// prepare makes dir ready for a fresh run: not complete, no data.
func prepare(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		if _, err := os.Stat(filepath.Join(dir, marker)); err != nil {
			return fmt.Errorf("%s is not empty and holds no ferry backup", dir)
		}
	}
	// Unmark first: from here until the new COMPLETE, dir is no backup.
	if err := os.Remove(filepath.Join(dir, completeFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, marker), []byte("ferry backup; see MANIFEST.sha256 and COMPLETE\n"), 0o600); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(dir, dataDir)); err != nil {
		return err
	}
	return os.Mkdir(filepath.Join(dir, dataDir), 0o700)
}

type writer struct {
	dir      string
	fetch    Fetcher
	sums     map[string]FileSum // by container path
	dirs     []string           // local directories to fsync
	buf      []byte
	done     int64
	progress func(done, total int64)
	log      *slog.Logger
}

// copy streams one container path into the backup. A path that does not
// exist is an error when required and skipped otherwise.
func (b *writer) copy(ctx context.Context, p string, required bool) error {
	rc, err := b.fetch(ctx, p)
	if err != nil {
		if errors.Is(err, ErrNotFound) && !required {
			return nil
		}
		return fmt.Errorf("backup: copy %s: %w", p, err)
	}
	defer rc.Close()
	if err := b.extract(tar.NewReader(rc), path.Dir(path.Clean(p))); err != nil {
		return fmt.Errorf("backup: copy %s: %w", p, err)
	}
	return nil
}

// extract writes the entries of an archive whose names are relative to
// parent (the directory of the requested path). Only directories and
// regular files are kept: an app keeps no state in anything else.
func (b *writer) extract(tr *tar.Reader, parent string) error {
	data := filepath.Join(b.dir, dataDir)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := path.Clean(hdr.Name)
		if !filepath.IsLocal(name) {
			return fmt.Errorf("archive entry %q escapes %s", hdr.Name, parent)
		}
		cpath := path.Join(parent, name)
		local := filepath.Join(data, filepath.FromSlash(strings.TrimPrefix(cpath, "/")))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := b.mkdir(local); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := b.mkdir(filepath.Dir(local)); err != nil {
				return err
			}
			sum, err := b.writeFile(local, tr)
			if err != nil {
				return err
			}
			sum.Path = cpath
			b.sums[cpath] = sum
		default:
			b.log.Warn("backup skips a file that is not regular", "path", cpath, "type", string(hdr.Typeflag))
		}
	}
}

func (b *writer) mkdir(local string) error {
	if fi, err := os.Stat(local); err == nil && fi.IsDir() {
		return nil
	}
	if err := os.MkdirAll(local, 0o700); err != nil {
		return err
	}
	b.dirs = append(b.dirs, local, filepath.Dir(local))
	return nil
}

func (b *writer) writeFile(local string, r io.Reader) (FileSum, error) {
	f, err := os.OpenFile(local, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return FileSum{}, err
	}
	h := sha256.New()
	var w io.Writer = io.MultiWriter(f, h)
	if b.progress != nil {
		w = &counter{w: w, b: b}
	}
	n, err := io.CopyBuffer(w, r, b.buf)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return FileSum{}, err
	}
	return FileSum{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

type counter struct {
	w io.Writer
	b *writer
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.b.done += int64(n)
	c.b.progress(c.b.done, 0)
	return n, err
}

func (b *writer) syncDirs() error {
	seen := map[string]bool{}
	for _, d := range append(b.dirs, filepath.Join(b.dir, dataDir)) {
		if seen[d] {
			continue
		}
		seen[d] = true
		if err := atomicfile.SyncDir(d); err != nil {
			return err
		}
	}
	return nil
}

func (m *Manifest) encode() []byte {
	var buf bytes.Buffer
	for _, f := range m.Files {
		fmt.Fprintf(&buf, "%s  %s\n", f.SHA256, path.Join(dataDir, strings.TrimPrefix(f.Path, "/")))
	}
	return buf.Bytes()
}

// verifyFiles parses the manifest in dir and hashes every file it names,
// and checks that data/ holds no file the manifest does not name.
func verifyFiles(dir string) (*Manifest, error) {
	f, err := os.Open(filepath.Join(dir, manifestFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := &Manifest{}
	named := map[string]bool{}
	buf := make([]byte, 1<<20)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, rel, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 || !strings.HasPrefix(rel, dataDir+"/") {
			return nil, fmt.Errorf("%s: malformed line %q", manifestFile, sc.Text())
		}
		fs := FileSum{Path: "/" + strings.TrimPrefix(rel, dataDir+"/"), SHA256: sum}
		local := fs.Local(dir)
		named[local] = true
		got, size, err := hashFile(local, buf)
		if errors.Is(err, os.ErrNotExist) {
			return nil, &VerifyError{Dir: dir, Path: fs.Path, Want: sum}
		}
		if err != nil {
			return nil, err
		}
		if got != sum {
			return nil, &VerifyError{Dir: dir, Path: fs.Path, Want: sum, Got: got}
		}
		fs.Size = size
		m.Files = append(m.Files, fs)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	err = filepath.WalkDir(filepath.Join(dir, dataDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !named[p] {
			return fmt.Errorf("%s is not in the manifest", p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func hashFile(p string, buf []byte) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, f, buf)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
