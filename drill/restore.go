// Package drill proves, on a running service, that its backup restores
// and that it survives losing its node, and measures how long each takes
// (RTO) and what would be lost (RPO).
package drill

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/litestream"
	"github.com/ferry-migrate/ferry/sqlite"
)

// RestoreResult is the restore drill of one database.
type RestoreResult struct {
	Database    string              `json:"database"`
	Replica     string              `json:"replica"`
	TXID        uint64              `json:"txid"`
	LatestWrite time.Time           `json:"latest_write"`
	Age         time.Duration       `json:"age_ns"`
	RestoreTime time.Duration       `json:"restore_time_ns"`
	Size        int64               `json:"size"`
	Fingerprint *sqlite.Fingerprint `json:"fingerprint,omitempty"`
	Problems    []string            `json:"problems,omitempty"`
}

// OK reports whether the database passed.
func (r *RestoreResult) OK() bool { return len(r.Problems) == 0 }

// ErrFailed is returned when a drill ran and found problems.
var ErrFailed = errors.New("drill failed")

// Restore restores the latest replica of every database of svc into a
// temporary directory under tmp, with litestream's integrity check, and
// fingerprints it. A database fails when the replica is empty, does not
// restore, fails its integrity check, lacks a user table, or is older than
// svc.Drill.MaxReplicaAge. It never touches the live service. It returns
// ErrFailed (wrapped) when any database failed, with every result.
func Restore(ctx context.Context, svc *ferry.Service, replicas map[string]*litestream.Replica, tmp string, now func() time.Time) ([]*RestoreResult, error) {
	dir, err := os.MkdirTemp(tmp, "ferry-drill-")
	if err != nil {
		return nil, fmt.Errorf("restore drill: %w", err)
	}
	defer os.RemoveAll(dir)
	var results []*RestoreResult
	failed := false
	for _, db := range svc.Databases {
		res := restoreOne(ctx, svc, db, replicas[db.Name], filepath.Join(dir, db.Name+".sqlite3"), now)
		results = append(results, res)
		failed = failed || !res.OK()
	}
	if failed {
		return results, fmt.Errorf("restore drill: %w", ErrFailed)
	}
	return results, nil
}

func restoreOne(ctx context.Context, svc *ferry.Service, db ferry.Database, r *litestream.Replica, dst string, now func() time.Time) *RestoreResult {
	res := &RestoreResult{Database: db.Name, Replica: "s3://" + svc.ObjectStore.Bucket + "/" + db.ReplicaPath}
	problem := func(format string, args ...any) { res.Problems = append(res.Problems, fmt.Sprintf(format, args...)) }
	info, err := r.Inspect(ctx)
	switch {
	case errors.Is(err, litestream.ErrAccessDenied):
		problem("access denied by the object store (wrong or revoked credentials): %v", err)
		return res
	case errors.Is(err, litestream.ErrNoSuchBucket):
		problem("the bucket %s does not exist: %v", svc.ObjectStore.Bucket, err)
		return res
	case err != nil:
		problem("the object store cannot be read: %v", err)
		return res
	}
	if info.Version == 0 {
		problem("the replica is empty: there is no backup to restore")
		return res
	}
	res.LatestWrite, res.Size = info.Updated, info.Size
	res.Age = now().Sub(info.Updated)
	start := time.Now()
	pos, err := r.Restore(ctx, dst, litestream.RestoreOptions{})
	res.RestoreTime = time.Since(start)
	if err != nil {
		problem("restore: %v", err)
		return res
	}
	res.TXID = pos.TXID
	fp, err := sqlite.FingerprintFile(ctx, dst)
	if err != nil {
		problem("fingerprint: %v", err)
		return res
	}
	res.Fingerprint = fp
	if !fp.OK() {
		problem("integrity check: %s", fp.Integrity)
	}
	for _, t := range db.UserTables {
		if _, ok := fp.Table(t); !ok {
			problem("the restored database has no %s table", t)
		}
	}
	if res.Age > svc.Drill.MaxReplicaAge {
		problem("the latest write in the replica is %s old, over max_replica_age %s: replication may have stopped", res.Age.Round(time.Second), svc.Drill.MaxReplicaAge)
	}
	return res
}
