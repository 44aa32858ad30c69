package render

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ferry-migrate/ferry/internal/atomicfile"
)

// Write writes every file of fs under dir (created as needed). Each file is
// written to a temp file beside it and fsynced; only when all of them are
// written are they renamed into place, each rename atomic (a reader sees the
// old file or the new one). On any error, including a cancelled ctx, Write
// leaves the files as they were: temp files are removed, and if a rename
// fails, the files already renamed get their old contents back (or are
// removed when they were new). Directories it created may remain. Paths must
// be local (no "..", not absolute).
func Write(ctx context.Context, dir string, fs Files) (err error) {
	var ready []pending
	defer func() {
		if err != nil {
			for _, p := range ready {
				os.Remove(p.tmp)
			}
		}
	}()
	for _, p := range fs.Paths() {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		if !filepath.IsLocal(filepath.FromSlash(p)) {
			return fmt.Errorf("write %s: not a path inside the output directory", p)
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		old, err := os.ReadFile(dst)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("write %s: %w", p, err)
		}
		tmp, err := writeTemp(dst, fs[p])
		if err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		ready = append(ready, pending{tmp: tmp, dst: dst, old: old})
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	dirs := map[string]bool{}
	for i, p := range ready {
		if err := os.Rename(p.tmp, p.dst); err != nil {
			undo(ready[:i])
			ready = ready[i:]
			return fmt.Errorf("write %s: %w", p.dst, err)
		}
		dirs[filepath.Dir(p.dst)] = true
	}
	ready = nil
	var errs []error
	for d := range dirs {
		errs = append(errs, atomicfile.SyncDir(d))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// pending is a file written to tmp, waiting to be renamed to dst.
type pending struct {
	tmp, dst string
	old      []byte // dst's previous contents; nil when dst did not exist
}

// undo puts back what renamed files replaced, best effort: the error that
// made Write undo is the one it reports.
func undo(done []pending) {
	for _, p := range done {
		if p.old == nil {
			os.Remove(p.dst)
			continue
		}
		if tmp, err := writeTemp(p.dst, p.old); err == nil {
			if os.Rename(tmp, p.dst) != nil {
				os.Remove(tmp)
			}
		}
	}
}

func writeTemp(dst string, data []byte) (string, error) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp*")
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}
