// Package litestream seeds, inspects, restores and continuously
// replicates a SQLite database with the litestream library (v0.5, pure
// Go), producing replicas the litestream CLI and image of the same version
// read, and reading v0.3 replicas too.
//
// Every writing operation holds a single-writer lease in the replica path
// (see Lease). Errors from the object store are *StoreError; permanent
// ones unwrap to ErrAccessDenied or ErrNoSuchBucket. No error or log line
// holds a secret.
package litestream

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ls "github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"

	ferry "github.com/ferry-migrate/ferry"
)

// Replica is one replica path: in a bucket, or in a local directory.
type Replica struct {
	client ls.ReplicaClient
	lease  leaseStore
	logger *slog.Logger
	where  string // for messages: s3://bucket/path or a directory
	bytes  atomic.Int64

	// libraryRestore makes Restore use litestream's own restore for v0.5
	// replicas too (tests compare the two).
	libraryRestore bool

	// LeaseTTL is how long a lease lives without renewal (default 30s).
	LeaseTTL time.Duration
	// LeaseSettle is how long acquisition waits before re-reading the
	// lease, for stores that ignore conditional writes (default 1s).
	LeaseSettle time.Duration
}

// Position is a point in a replica's history.
type Position struct {
	TXID uint64    `json:"txid,omitempty"`
	Time time.Time `json:"time"`
	// Generation is set for v0.3 replicas, which have no TXIDs.
	Generation string `json:"generation,omitempty"`
}

// Open returns the replica at path in store. Nothing is contacted until
// the first operation.
func Open(ctx context.Context, store ferry.ObjectStore, path string, creds Credentials, logger *slog.Logger) (*Replica, error) {
	return open(store, path, creds, clientOptions{}, logger)
}

func open(store ferry.ObjectStore, path string, creds Credentials, opt clientOptions, logger *slog.Logger) (*Replica, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c, err := newS3Client(store, path, creds, opt, logger)
	if err != nil {
		return nil, fmt.Errorf("open replica: %w", err)
	}
	r := &Replica{client: c, lease: s3LeaseStore{c}, logger: logger, where: "s3://" + store.Bucket + "/" + c.prefix}
	c.counter = func(n int64) { r.bytes.Add(n) }
	return r, nil
}

// OpenDir returns a replica in a local directory, laid out as litestream's
// file replica (file:// URLs of the CLI).
func OpenDir(dir string, logger *slog.Logger) *Replica {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := file.NewReplicaClient(dir)
	c.SetLogger(logger)
	return &Replica{client: c, lease: dirLeaseStore{dir}, logger: logger, where: dir}
}

func (r *Replica) leaser(holder string) *leaser {
	ttl, settle := r.LeaseTTL, r.LeaseSettle
	if ttl == 0 {
		ttl = 30 * time.Second
	}
	if settle == 0 {
		settle = time.Second
	}
	if holder == "" {
		holder = "ferry"
	}
	return newLeaser(r.lease, holder, ttl, settle)
}

// Info describes a replica.
type Info struct {
	// Version is 5 for an LTX replica, 3 for a v0.3 one (generations), 0
	// when the path holds no replica.
	Version int       `json:"version"`
	TXID    uint64    `json:"txid,omitempty"` // latest transaction (v0.5)
	Updated time.Time `json:"updated"`        // time of the latest file
	Size    int64     `json:"size"`           // bytes of all files
	Levels  []Level   `json:"levels,omitempty"`
	// Generations is the read-only listing of v0.3 files, when present.
	Generations []Generation `json:"generations,omitempty"`
	Lease       *Lease       `json:"lease,omitempty"`
}

// Level is one LTX level of a v0.5 replica (0 = incremental, 9 = snapshots).
type Level struct {
	Level   int    `json:"level"`
	Files   int    `json:"files"`
	Size    int64  `json:"size"`
	MinTXID uint64 `json:"min_txid"`
	MaxTXID uint64 `json:"max_txid"`
}

// Generation is one v0.3 generation.
type Generation struct {
	ID          string    `json:"id"`
	Snapshots   int       `json:"snapshots"`
	WALSegments int       `json:"wal_segments"`
	Size        int64     `json:"size"`
	Updated     time.Time `json:"updated"`
}

// Inspect lists the replica. An empty path is Info{Version: 0}, not an
// error; an unreachable store or bad credentials are errors.
func (r *Replica) Inspect(ctx context.Context) (*Info, error) {
	// The levels, the v0.3 generations and the lease are listed at once.
	var (
		wg     sync.WaitGroup
		levels [ls.SnapshotLevel + 1]Level
		lerrs  [ls.SnapshotLevel + 1]error
		times  [ls.SnapshotLevel + 1]time.Time
		gens   []Generation
		gerr   error
		lease  *Lease
		lerr   error
	)
	for level := 0; level <= ls.SnapshotLevel; level++ {
		wg.Go(func() {
			levels[level], times[level], lerrs[level] = r.inspectLevel(ctx, level)
		})
	}
	if v3, ok := r.client.(ls.ReplicaClientV3); ok {
		wg.Go(func() { gens, gerr = inspectV3(ctx, v3) })
	}
	wg.Go(func() { lease, _, lerr = r.leaser("").current(ctx) })
	wg.Wait()

	info := &Info{}
	for level, lv := range levels {
		if err := lerrs[level]; err != nil {
			return nil, fmt.Errorf("inspect: %w", err)
		}
		info.Updated = later(info.Updated, times[level])
		if lv.Files > 0 {
			info.Version = 5
			info.Levels = append(info.Levels, lv)
			info.Size += lv.Size
			info.TXID = max(info.TXID, lv.MaxTXID)
		}
	}
	if gerr != nil {
		return nil, fmt.Errorf("inspect: %w", gerr)
	}
	for _, g := range gens {
		info.Generations = append(info.Generations, g)
		if info.Version == 0 {
			info.Version = 3
			info.Size += g.Size
			info.Updated = later(info.Updated, g.Updated)
		}
	}
	if lerr != nil {
		return nil, fmt.Errorf("inspect: %w", lerr)
	}
	info.Lease = lease
	return info, nil
}

// inspectLevel lists one LTX level; updated is its latest file's time.
func (r *Replica) inspectLevel(ctx context.Context, level int) (lv Level, updated time.Time, err error) {
	itr, err := r.client.LTXFiles(ctx, level, 0, false)
	if err != nil {
		return lv, updated, err
	}
	lv.Level = level
	for itr.Next() {
		f := itr.Item()
		lv.Files++
		lv.Size += f.Size
		if lv.MinTXID == 0 || uint64(f.MinTXID) < lv.MinTXID {
			lv.MinTXID = uint64(f.MinTXID)
		}
		lv.MaxTXID = max(lv.MaxTXID, uint64(f.MaxTXID))
		updated = later(updated, f.CreatedAt)
	}
	return lv, updated, itr.Close()
}

// inspectV3 lists the v0.3 generations.
func inspectV3(ctx context.Context, v3 ls.ReplicaClientV3) ([]Generation, error) {
	ids, err := v3.GenerationsV3(ctx)
	if err != nil {
		return nil, err
	}
	var gens []Generation
	for _, id := range ids {
		g := Generation{ID: id}
		snaps, err := v3.SnapshotsV3(ctx, id)
		if err != nil {
			return nil, err
		}
		for _, s := range snaps {
			g.Snapshots++
			g.Size += s.Size
			g.Updated = later(g.Updated, s.CreatedAt)
		}
		segs, err := v3.WALSegmentsV3(ctx, id)
		if err != nil {
			return nil, err
		}
		for _, s := range segs {
			g.WALSegments++
			g.Size += s.Size
			g.Updated = later(g.Updated, s.CreatedAt)
		}
		gens = append(gens, g)
	}
	return gens, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// RestoreOptions selects what to restore: the latest state when zero, else
// the state at TXID or at Timestamp (not both).
type RestoreOptions struct {
	TXID      uint64
	Timestamp time.Time
}

// Restore writes the replica's database to dst and checks its integrity
// (PRAGMA integrity_check). dst must not exist and is never overwritten:
// the database is built in a temporary file beside it and linked into
// place only once it passed the check. v0.3 replicas restore too (latest
// or by timestamp). ErrNoReplica when the path holds nothing to restore.
func (r *Replica) Restore(ctx context.Context, dst string, opt RestoreOptions) (Position, error) {
	if _, err := os.Lstat(dst); err == nil {
		return Position{}, fmt.Errorf("restore: %s already exists", dst)
	}
	// A v0.5 plan first (the common case, without listing the replica
	// twice); the full listing only when there is none, to tell a v0.3
	// replica from no replica.
	version := 5
	var pos Position
	var planner ls.ReplicaClient = r.client
	if opt.Timestamp.IsZero() {
		p, err := prelist(ctx, r.client)
		if err != nil {
			return Position{}, fmt.Errorf("restore: %w", err)
		}
		planner = p
	}
	plan, err := ls.CalcRestorePlan(ctx, planner, ltx.TXID(opt.TXID), opt.Timestamp, r.logger)
	if errors.Is(err, ls.ErrTxNotAvailable) || errors.Is(err, ls.ErrNoSnapshots) {
		info, err := r.Inspect(ctx)
		if err != nil {
			return Position{}, fmt.Errorf("restore: %w", err)
		}
		if info.Version != 3 {
			return Position{}, fmt.Errorf("restore %s: %w", r.where, ErrNoReplica)
		}
		version = 3
		g := info.Generations[len(info.Generations)-1]
		pos = Position{Generation: g.ID, Time: g.Updated}
	} else if err != nil {
		return Position{}, fmt.Errorf("restore: plan: %w", err)
	} else {
		last := plan[len(plan)-1]
		pos = Position{TXID: uint64(last.MaxTXID), Time: last.CreatedAt}
	}

	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return Position{}, fmt.Errorf("restore: %w", err)
	}
	tmpDir, err := os.MkdirTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".restore-")
	if err != nil {
		return Position{}, fmt.Errorf("restore: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, "db")

	if version == 5 && !r.libraryRestore {
		err = r.restoreLTX(ctx, tmp, plan)
	} else {
		err = r.restoreLibrary(ctx, tmp, opt)
	}
	if err != nil {
		return Position{}, fmt.Errorf("restore: %w", err)
	}
	if err := os.Link(tmp, dst); err != nil { // fails if dst appeared meanwhile
		return Position{}, fmt.Errorf("restore: %w", err)
	}
	if d, err := os.Open(filepath.Dir(dst)); err == nil {
		d.Sync()
		d.Close()
	}
	r.logger.Info("restored", "replica", r.where, "dst", dst, "txid", pos.TXID, "generation", pos.Generation)
	return pos, nil
}

// SeedOptions controls Seed.
type SeedOptions struct {
	// Force replaces a replica of another database already at the path
	// (its files are deleted first).
	Force bool
	// Holder names this writer in the lease (shown to others refused).
	Holder string
	// Progress, when set, is called with bytes uploaded and the size of
	// the database (file plus WAL) as the upload advances.
	Progress func(done, total int64)
	// TempDir holds the staging copy, when one is needed (see Seed);
	// default os.TempDir().
	TempDir string
}

// Seed replicates the database at dbPath (its -wal included) into an
// empty replica path and returns the position it covers. It succeeds only
// when the replica's latest TXID, read back from the store, equals the
// source's (the TXID of the snapshot uploaded, or of litestream's sync
// on the fallback path); otherwise ErrNotCovered.
//
// The source is never modified. A database in WAL mode without a -wal
// file (or with an empty one) holds every transaction in its file, which
// is read in place (opened read-only). Otherwise Seed copies the database
// and its -wal to a staging directory and checkpoints the copy through
// SQLite (so rows only in the WAL are included). Either is uploaded as
// the snapshot LTX file that litestream's first sync would write (level
// 0, TXID 1), streamed into the upload, compressed in parallel (see
// seedSnapshot); a copy that does not fit that shape (empty, or a size
// its header disagrees with) is replicated with litestream's own sync.
// The database must be quiescent (the app stopped): if it changes while
// it is read, Seed fails before the upload completes. A running app is
// replicated with Replicate instead.
//
// Seed refuses while another writer holds the lease (*LeaseHeldError) and
// when the path holds a replica already (*ReplicaExistsError), unless
// opt.Force.
func (r *Replica) Seed(ctx context.Context, dbPath string, opt SeedOptions) (Position, error) {
	seedStart := time.Now()
	l := r.leaser(opt.Holder)
	if err := l.acquire(ctx); err != nil {
		return Position{}, fmt.Errorf("seed: %w", err)
	}
	defer l.release(context.WithoutCancel(ctx))
	r.logger.Debug("seed lease acquired", "took", time.Since(seedStart))

	info, err := r.Inspect(ctx)
	if err != nil {
		return Position{}, fmt.Errorf("seed: %w", err)
	}
	if info.Version == 5 {
		if !opt.Force {
			return Position{}, fmt.Errorf("seed: %w", &ReplicaExistsError{Version: 5, TXID: info.TXID, Latest: info.Updated, Size: info.Size})
		}
		if err := r.deleteLTX(ctx); err != nil {
			return Position{}, fmt.Errorf("seed: replace replica: %w", err)
		}
	} else if info.Version == 3 && !opt.Force {
		return Position{}, fmt.Errorf("seed: %w", &ReplicaExistsError{Version: 3, Latest: info.Updated, Size: info.Size})
	}

	// A database in WAL mode without a -wal file holds every
	// transaction in its file: it is read in place (never written), and
	// must not change until every page was read. Otherwise it is staged.
	var (
		total  int64
		upload func(ctx context.Context) (Position, error)
	)
	ps, commit, direct, err := directSource(dbPath)
	if err != nil {
		return Position{}, fmt.Errorf("seed: %w", err)
	}
	if direct {
		before, err := statPair(dbPath)
		if err != nil {
			return Position{}, fmt.Errorf("seed: %w", err)
		}
		total = int64(ps) * int64(commit)
		upload = func(ctx context.Context) (Position, error) {
			return r.seedSnapshot(ctx, dbPath, ps, commit, func() error {
				after, err := statPair(dbPath)
				if err != nil {
					return err
				}
				if _, err := os.Stat(dbPath + "-journal"); err == nil || !slices.Equal(before, after) {
					return errStagingChanged
				}
				return nil
			})
		}
	} else {
		stage, err := os.MkdirTemp(opt.TempDir, "ferry-seed-")
		if err != nil {
			return Position{}, fmt.Errorf("seed: %w", err)
		}
		defer os.RemoveAll(stage)
		staged := filepath.Join(stage, filepath.Base(dbPath))
		stageStart := time.Now()
		total, err = stageCopy(dbPath, staged)
		if err != nil {
			return Position{}, fmt.Errorf("seed: %w", err)
		}
		r.logger.Debug("seed staged", "bytes", total, "took", time.Since(stageStart))
		upload = func(ctx context.Context) (Position, error) { return r.seedStaged(ctx, staged) }
	}

	start := r.bytes.Load()
	stop := make(chan struct{})
	var wg, progress sync.WaitGroup
	stopProgress := sync.OnceFunc(func() { close(stop); progress.Wait() })
	if opt.Progress != nil {
		progress.Go(func() {
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					opt.Progress(r.bytes.Load()-start, total)
				}
			}
		})
	}
	defer func() { stopProgress(); wg.Wait() }()

	// Renew the lease while uploading; a seed of a large database on a
	// slow link outlives one TTL.
	renewCtx, cancelRenew := context.WithCancelCause(ctx)
	defer cancelRenew(nil)
	wg.Go(func() { r.renewLoop(renewCtx, l, cancelRenew) })

	uploadStart := time.Now()
	r.logger.Debug("seed prepared", "took", uploadStart.Sub(seedStart))
	pos, err := upload(renewCtx)
	r.logger.Debug("seed uploaded", "in_place", direct, "took", time.Since(uploadStart), "err", err)
	if err != nil {
		if cause := context.Cause(renewCtx); cause != nil && !errors.Is(cause, context.Canceled) {
			err = cause
		}
		return Position{}, fmt.Errorf("seed: %w", err)
	}
	if opt.Progress != nil {
		stopProgress() // no report after the last
		opt.Progress(total, total)
	}
	r.logger.Info("seeded", "replica", r.where, "db", dbPath, "txid", pos.TXID, "bytes", total)
	return pos, nil
}

func (r *Replica) renewLoop(ctx context.Context, l *leaser, fail context.CancelCauseFunc) {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := l.renew(ctx); err != nil {
				if errors.Is(err, ErrLeaseLost) {
					fail(err)
					return
				}
				r.logger.Warn("lease renewal failed; retrying", "err", err)
			}
		}
	}
}

// seedStaged uploads the staged copy as a snapshot (see seedSnapshot),
// or, when that does not apply, with litestream's own sync.
func (r *Replica) seedStaged(ctx context.Context, staged string) (Position, error) {
	pageSize, commit, ok, err := checkpointStaged(ctx, staged)
	if err != nil {
		return Position{}, err
	}
	if !ok {
		return r.replicateOnce(ctx, staged)
	}
	return r.seedSnapshot(ctx, staged, pageSize, commit, nil)
}

// replicateOnce runs litestream's DB on a staged copy, syncs it to the
// replica and proves the replica covers the copy's latest transaction.
func (r *Replica) replicateOnce(ctx context.Context, path string) (Position, error) {
	db := ls.NewDB(path)
	db.Logger = r.logger.With("db", filepath.Base(path))
	db.MonitorInterval = 0 // synced explicitly below
	db.CheckpointInterval = 0
	db.ShutdownSyncTimeout = 0
	rep := ls.NewReplicaWithClient(db, r.client)
	rep.MonitorEnabled = false
	db.Replica = rep
	if err := db.Open(); err != nil {
		return Position{}, fmt.Errorf("open db: %w", err)
	}
	defer db.Close(context.WithoutCancel(ctx))
	if err := db.SyncAndWait(ctx); err != nil {
		return Position{}, err
	}
	return r.proveCovers(ctx, db)
}

// proveCovers compares the database's position with the highest TXID the
// replica lists (read back from the store, not from memory).
func (r *Replica) proveCovers(ctx context.Context, db *ls.DB) (Position, error) {
	local, err := db.Pos()
	if err != nil {
		return Position{}, fmt.Errorf("db position: %w", err)
	}
	info, err := r.Inspect(ctx)
	if err != nil {
		return Position{}, err
	}
	if local.TXID == 0 || info.TXID != uint64(local.TXID) {
		return Position{}, fmt.Errorf("%w: source txid %d, replica txid %d", ErrNotCovered, local.TXID, info.TXID)
	}
	return Position{TXID: info.TXID, Time: info.Updated}, nil
}

func (r *Replica) deleteLTX(ctx context.Context) error {
	for level := 0; level <= ls.SnapshotLevel; level++ {
		itr, err := r.client.LTXFiles(ctx, level, 0, false)
		if err != nil {
			return err
		}
		var all []*ltx.FileInfo
		for itr.Next() {
			all = append(all, itr.Item())
		}
		if err := itr.Close(); err != nil {
			return err
		}
		if err := r.client.DeleteLTXFiles(ctx, all); err != nil {
			return err
		}
	}
	return nil
}

// errStagingChanged means the source changed while being copied.
var errStagingChanged = errors.New("database changed while being copied (stop the app, or use Replicate)")

// stageCopy copies the database and its -wal (not the -shm: SQLite
// rebuilds it from the WAL) and returns their total size.
func stageCopy(src, dst string) (int64, error) {
	before, err := statPair(src)
	if err != nil {
		return 0, err
	}
	n, err := copyFile(src, dst)
	if err != nil {
		return 0, err
	}
	if w, err := copyFile(src+"-wal", dst+"-wal"); err == nil {
		n += w
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	after, err := statPair(src)
	if err != nil {
		return 0, err
	}
	if !slices.Equal(before, after) {
		return 0, errStagingChanged
	}
	return n, nil
}

func statPair(p string) ([]string, error) {
	var out []string
	for _, f := range []string{p, p + "-wal"} {
		fi, err := os.Stat(f)
		if errors.Is(err, os.ErrNotExist) && f != p {
			continue
		} else if err != nil {
			return nil, err
		}
		out = append(out, fmt.Sprint(fi.Size(), fi.ModTime().UnixNano()))
	}
	return out, nil
}

func copyFile(src, dst string) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, in)
	if err != nil {
		out.Close()
		return 0, err
	}
	return n, out.Close()
}

// restoreLTX applies a v0.5 restore plan into a new file at tmp, syncs it
// and runs the integrity check.
func (r *Replica) restoreLTX(ctx context.Context, tmp string, plan []*ltx.FileInfo) error {
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := applyPlan(ctx, r.client, plan, f, r.logger); err != nil {
		f.Close()
		return err
	}
	applied := time.Now()
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	synced := time.Now()
	err = integrityCheck(ctx, tmp)
	r.logger.Debug("restore timings", "files", len(plan), "apply", applied.Sub(start), "fsync", synced.Sub(applied), "integrity_check", time.Since(synced))
	return err
}

// restoreLibrary is litestream's restore (v0.3 replicas; v0.5 in tests).
func (r *Replica) restoreLibrary(ctx context.Context, tmp string, opt RestoreOptions) error {
	// The DB is never opened: it only carries the injected logger.
	ldb := ls.NewDB(tmp)
	ldb.Logger = r.logger
	lr := ls.NewReplicaWithClient(ldb, r.client)
	err := lr.Restore(ctx, ls.RestoreOptions{
		OutputPath:     tmp,
		TXID:           ltx.TXID(opt.TXID),
		Timestamp:      opt.Timestamp,
		IntegrityCheck: ls.IntegrityCheckFull,
	})
	if errors.Is(err, ls.ErrTxNotAvailable) || errors.Is(err, ls.ErrNoSnapshots) {
		return fmt.Errorf("%s: %w", r.where, ErrNoReplica)
	} else if err != nil {
		return err
	}
	// A restore that left a -wal beside the file would be complete only
	// with it; litestream checkpoints, so there must be none.
	for _, sfx := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(tmp + sfx); err == nil {
			return fmt.Errorf("unexpected %s left by restore", sfx)
		}
	}
	return nil
}

// integrityCheck runs PRAGMA integrity_check on a closed database file,
// opened immutable so nothing is written beside it.
func integrityCheck(ctx context.Context, path string) error {
	return integrityCheckQ(ctx, path, "")
}

func integrityCheckQ(ctx context.Context, path, q string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&immutable=1"+q)
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return fmt.Errorf("integrity check: %w", err)
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	if len(msgs) != 1 || msgs[0] != "ok" {
		return fmt.Errorf("integrity check failed: %s", strings.Join(msgs, "; "))
	}
	return nil
}
