// Package migrate is the migration of one service: the ordered steps of
// the task list (backup, stop, seed, prove, volume, config, deploy,
// verify), built on runbook, against the three sides it consumes as
// interfaces: the Source where the service runs today, a Replica per
// database, and the Cluster it moves to.
package migrate

import (
	"context"
	"time"

	"github.com/ferry-migrate/ferry/backup"
)

// Progress receives byte counts of a long step; total may be 0 if unknown.
type Progress func(done, total int64)

// Source is the service where it runs today.
type Source interface {
	// Backup copies every database (with its -wal and -shm) and config
	// file of the service into dir in package backup's format, and
	// returns only after the manifest verifies from disk. Re-running it
	// into the same dir replaces an incomplete backup.
	Backup(ctx context.Context, dir string, progress Progress) (*backup.Manifest, error)
	Stop(ctx context.Context) error
	Start(ctx context.Context) error
	Running(ctx context.Context) (bool, error)
}

// Position is a point in a replica's history.
type Position struct {
	TXID uint64
	Time time.Time
}

// Replica is the object-store replica of one database.
type Replica interface {
	// Seed replicates the database at dbPath (read through SQLite, WAL
	// included) and returns once the replica provably covers its latest
	// transaction.
	Seed(ctx context.Context, dbPath string, progress Progress) (Position, error)
	// Restore writes the latest state of the replica to dst, which must
	// not exist, after litestream's integrity check.
	Restore(ctx context.Context, dst string, progress Progress) (Position, error)
	// Latest is the replica's newest position; ErrNoReplica when empty.
	Latest(ctx context.Context) (Position, error)
}

// Warm is a Source that can replicate its databases while the service
// still runs, so that stopping it only waits for a final sync.
type Warm interface {
	// StartWarm begins replicating every database to its replica.
	StartWarm(ctx context.Context) error
	// FinishWarm, called after Stop, syncs what the service wrote last
	// and stops replicating, also replication an interrupted run left
	// behind. With nothing replicating it does nothing.
	FinishWarm(ctx context.Context) error
}

// Cluster is where the service goes.
type Cluster interface {
	// Preflight checks that the cluster can take the job, changing
	// nothing.
	Preflight(ctx context.Context) error
	VolumeReady(ctx context.Context) (bool, error)
	EnsureVolume(ctx context.Context) error
	// WriteConfig puts each file (container path -> content) on the
	// volume and returns the sha256 of each as read back from it.
	WriteConfig(ctx context.Context, files map[string][]byte) (map[string]string, error)
	// Deploy registers the job and returns once it is healthy; a failed
	// deployment returns an error that says which task failed and why.
	Deploy(ctx context.Context, progress func(msg string)) error
	Status(ctx context.Context) (*JobStatus, error)
	// Stop stops the job without purging it; a job that is not running
	// is not an error.
	Stop(ctx context.Context) error
}

// JobStatus is what the cluster says about the deployed service.
type JobStatus struct {
	Running    bool   // a job of the current spec is registered and not stopped
	Healthy    bool   // its allocation is running and healthy
	Node       string // where it runs
	URL        string // base URL of the app as reachable from here, if any
	RestoreLog string // the restore task's stdout and stderr
}
