// Package rehearse runs a whole migration on this machine, with no
// cluster and no network: the source is a copy of the service's config
// directory, the object store is an S3 server embedded in ferry, and the
// deploy executes the rendered restore script for real (busybox sh and the
// pinned litestream CLI) into a temporary allocation directory, then
// starts the app if it can run here, and verifies. It passes only when
// the restored data equals the source.
package rehearse

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/adapt"
	"github.com/ferry-migrate/ferry/internal/s3local"
	"github.com/ferry-migrate/ferry/litestream"
	"github.com/ferry-migrate/ferry/migrate"
	"github.com/ferry-migrate/ferry/render"
	"github.com/ferry-migrate/ferry/runbook"
	"github.com/ferry-migrate/ferry/sqlite"
)

// Options configures a rehearsal.
type Options struct {
	Service *ferry.Service
	// Data is a directory holding a copy of the service's config directory
	// as found on the compose host. When nil, DataFS is used.
	Data string
	// DataFS and DataRoot give bundled data (the example's) when Data is
	// empty.
	DataFS   fs.FS
	DataRoot string
	// Keep, when set, is where the rehearsal's files are left (the
	// allocation directory, the journal, the backups); otherwise they
	// go to a temporary directory removed at the end.
	Keep string
	// Warm replicates before the stop, as `ferry migrate --warm` does.
	Warm     bool
	Log      *slog.Logger
	Progress func(step string, done, total int64)
	// Observer hears each step start and finish.
	Observer runbook.Observer
}

// Result is what a rehearsal found.
type Result struct {
	Steps    []*runbook.Record              `json:"steps"`
	Downtime time.Duration                  `json:"downtime_ns"`
	Source   map[string]*sqlite.Fingerprint `json:"source"`
	Restored map[string]*sqlite.Fingerprint `json:"restored"`
	Parity   bool                           `json:"parity"`
	Verify   *migrate.Report                `json:"verify,omitempty"`
	Dir      string                         `json:"dir,omitempty"` // kept files, with Keep
}

// Run rehearses the migration of opt.Service.
func Run(ctx context.Context, opt Options) (*Result, error) {
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	root, cleanup, err := workDir(opt.Keep)
	if err != nil {
		return nil, fmt.Errorf("rehearse: %w", err)
	}
	defer cleanup()

	bin, err := toolDir(root)
	if err != nil {
		return nil, fmt.Errorf("rehearse: %w", err)
	}

	// The embedded object store, with credentials made up for this run.
	store, err := s3local.Start(ctx, s3local.Options{})
	if err != nil {
		return nil, fmt.Errorf("rehearse: object store: %w", err)
	}
	defer store.Close()
	svc := *opt.Service
	svc.ObjectStore.Endpoint = store.Endpoint
	svc.ObjectStore.PathStyle = true
	svc.ObjectStore.HealthPath = "" // the restore script then proves the store by listing the replica
	if err := store.CreateBucket(svc.ObjectStore.Bucket); err != nil {
		return nil, fmt.Errorf("rehearse: object store: %w", err)
	}
	creds := litestream.Credentials{AccessKeyID: store.AccessKeyID, SecretAccessKey: store.SecretAccessKey}

	src, err := newDirSource(ctx, &svc, filepath.Join(root, "compose-host"), opt)
	if err != nil {
		return nil, fmt.Errorf("rehearse: %w", err)
	}
	replicas := map[string]migrate.Replica{}
	for _, db := range svc.Databases {
		r, err := litestream.Open(ctx, svc.ObjectStore, db.ReplicaPath, creds, log)
		if err != nil {
			return nil, fmt.Errorf("rehearse: %w", err)
		}
		replicas[db.Name] = adapt.Replica(r, "ferry-rehearse", false)
	}
	src.replicas = replicas
	cluster := &localCluster{
		svc:        &svc,
		root:       filepath.Join(root, "cluster"),
		bin:        bin,
		env:        []string{"LITESTREAM_ACCESS_KEY_ID=" + creds.AccessKeyID, "LITESTREAM_SECRET_ACCESS_KEY=" + creds.SecretAccessKey},
		log:        log,
		healthWait: 2 * time.Minute,
	}
	defer cluster.Stop(context.WithoutCancel(ctx))

	m := &migrate.Migration{
		Service:  &svc,
		Dir:      filepath.Join(root, ".ferry", svc.Name),
		Source:   src,
		Replicas: replicas,
		Cluster:  cluster,
		Warm:     opt.Warm,
		Log:      log,
		Progress: opt.Progress,
	}
	j, err := runbook.OpenJournal(m.JournalPath(), svc.Name)
	if err != nil {
		return nil, fmt.Errorf("rehearse: %w", err)
	}
	runner := &runbook.Runner{Journal: j, Log: log, Observer: opt.Observer}
	runErr := runner.Run(ctx, m.Steps(j))

	res := &Result{Steps: j.Steps, Source: map[string]*sqlite.Fingerprint{}, Restored: map[string]*sqlite.Fingerprint{}}
	if opt.Keep != "" {
		res.Dir = root
	}
	if d, err := time.ParseDuration(j.Facts[migrate.FactDowntime]); err == nil {
		res.Downtime = d
	}
	if runErr != nil {
		return res, fmt.Errorf("rehearse: %w", runErr)
	}
	// A fresh rehearsal always runs the verify step.
	res.Verify = m.Report()

	// Parity, from what the app ran on: the allocation's databases, read
	// once the app and the sidecar stopped, as a drained node leaves them.
	if err := cluster.Stop(ctx); err != nil {
		return res, fmt.Errorf("rehearse: %w", err)
	}
	res.Parity = true
	for _, db := range svc.Databases {
		srcFP, err := m.SourceFingerprint(db.Name)
		if err != nil {
			return res, fmt.Errorf("rehearse: %w", err)
		}
		res.Source[db.Name] = srcFP
		got, err := sqlite.FingerprintFile(ctx, cluster.allocDB(db))
		if err != nil {
			return res, fmt.Errorf("rehearse: restored %s: %w", db.Name, err)
		}
		res.Restored[db.Name] = got
		tables := db.UserTables
		var diffs []sqlite.Difference
		if len(tables) == 0 {
			diffs = sqlite.Diff(srcFP, got)
		} else {
			diffs = sqlite.DiffTables(srcFP, got, tables)
		}
		if len(diffs) > 0 || !got.OK() {
			res.Parity = false
			log.Error("parity", "database", db.Name, "differences", fmt.Sprint(diffs))
		}
	}
	switch {
	case !res.Parity:
		return res, errors.New("rehearse: the restored data differs from the source")
	case !res.Verify.OK():
		return res, fmt.Errorf("rehearse: %w", &migrate.VerifyError{Report: res.Verify})
	}
	return res, nil
}

func (c *localCluster) allocDB(db ferry.Database) string {
	return filepath.Join(c.allocDir(), filepath.FromSlash(render.AllocDBPath(c.svc, db)))
}

func workDir(keep string) (string, func(), error) {
	if keep != "" {
		if err := os.MkdirAll(keep, 0o700); err != nil {
			return "", nil, err
		}
		entries, err := os.ReadDir(keep)
		if err != nil {
			return "", nil, err
		}
		if len(entries) > 0 {
			return "", nil, fmt.Errorf("--keep %s is not empty", keep)
		}
		abs, err := filepath.Abs(keep)
		return abs, func() {}, err
	}
	dir, err := os.MkdirTemp("", "ferry-rehearse-")
	return dir, func() { os.RemoveAll(dir) }, err
}
