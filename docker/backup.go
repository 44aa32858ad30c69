package docker

import (
	"context"
	"fmt"
	"io"

	"github.com/containerd/errdefs"

	"github.com/ferry-migrate/ferry/backup"
)

// Backup streams the requested paths out of the container through the
// engine's archive API into dir (see package backup for the layout and
// its guarantees: a manifest, re-verified from disk before the backup is
// marked complete; an interrupted run is never complete). It works on a
// stopped container; on a running one the database files are copied as
// they are at that moment, which SQLite may not be able to open
// consistently, so stop the container first.
func (h *Host) Backup(ctx context.Context, c *Container, dir string, req backup.Request, progress func(done, total int64)) (*backup.Manifest, error) {
	fetch := func(ctx context.Context, p string) (io.ReadCloser, error) {
		rc, _, err := h.api.CopyFromContainer(ctx, c.ID, p)
		if errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("%s: %w", p, backup.ErrNotFound)
		}
		return rc, err
	}
	m, err := backup.Write(ctx, dir, fetch, req, backup.Options{Progress: progress, Log: h.log.With("container", c.Name)})
	if err != nil {
		return nil, fmt.Errorf("docker: backup %s: %w", c.Name, err)
	}
	h.log.Info("backup complete", "container", c.Name, "dir", dir, "files", len(m.Files), "bytes", m.Size())
	return m, nil
}
