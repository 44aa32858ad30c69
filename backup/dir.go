package backup

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// DirFetcher fetches container paths from local files: local maps a
// container path to where its copy lives on this machine. It streams
// directories recursively, as the Docker archive API does.
func DirFetcher(local func(p string) (string, error)) Fetcher {
	return func(ctx context.Context, p string) (io.ReadCloser, error) {
		src, err := local(p)
		if err != nil {
			return nil, err
		}
		if _, err := os.Lstat(src); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeTar(ctx, pw, src)) }()
		return pr, nil
	}
}

// writeTar writes src (a file or a directory tree) with names relative
// to its parent directory.
func writeTar(ctx context.Context, w io.Writer, src string) error {
	tw := tar.NewWriter(w)
	parent := filepath.Dir(src)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() && !info.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(parent, p)
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		// The header promised info.Size() bytes; a file that changes
		// under the copy fails the archive rather than tearing it.
		_, err = io.CopyN(tw, f, info.Size())
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
