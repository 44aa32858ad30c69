package litestream

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	ls "github.com/benbjohnson/litestream"
)

// ReplicateOptions controls Replicate.
type ReplicateOptions struct {
	Holder string // names this writer in the lease
	// SyncInterval is how often new transactions are shipped (default 1s).
	SyncInterval time.Duration
}

// Replication is a running continuous replication of one database, the
// same work the litestream sidecar does: for a warm migration (seed while
// the app runs, then a final Sync after it stops) and for rehearsals.
type Replication struct {
	r      *Replica
	db     *ls.DB
	lease  *leaser
	cancel context.CancelCauseFunc
	ctx    context.Context
	wg     sync.WaitGroup
}

// Replicate starts replicating the live database at dbPath in place, as
// `litestream replicate` does: litestream adds its _litestream_seq and
// _litestream_lock tables and a .<name>-litestream directory beside the
// database, and checkpoints it. An existing replica of this database is
// continued (the case after a restore). It holds the lease until Close
// and stops with ErrLeaseLost (see Err) if another writer takes it.
func (r *Replica) Replicate(ctx context.Context, dbPath string, opt ReplicateOptions) (*Replication, error) {
	l := r.leaser(opt.Holder)
	if err := l.acquire(ctx); err != nil {
		return nil, fmt.Errorf("replicate: %w", err)
	}
	db := ls.NewDB(dbPath)
	db.Logger = r.logger.With("db", filepath.Base(dbPath))
	rep := ls.NewReplicaWithClient(db, r.client)
	if opt.SyncInterval > 0 {
		rep.SyncInterval = opt.SyncInterval
		db.MonitorInterval = opt.SyncInterval
	}
	db.Replica = rep
	if err := db.Open(); err != nil {
		l.release(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("replicate: open db: %w", err)
	}
	rctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	p := &Replication{r: r, db: db, lease: l, cancel: cancel, ctx: rctx}
	p.wg.Go(func() {
		r.renewLoop(rctx, l, cancel)
		if errors.Is(context.Cause(rctx), ErrLeaseLost) {
			// Stop writing at once: someone else owns the path now.
			db.Close(context.Background())
		}
	})
	return p, nil
}

// Err returns ErrLeaseLost once the lease was taken by another writer.
func (p *Replication) Err() error {
	if err := context.Cause(p.ctx); errors.Is(err, ErrLeaseLost) {
		return err
	}
	return nil
}

// Sync ships every committed transaction and returns the position the
// replica then provably covers (read back from the store).
func (p *Replication) Sync(ctx context.Context) (Position, error) {
	if err := p.Err(); err != nil {
		return Position{}, fmt.Errorf("sync: %w", err)
	}
	if err := p.db.SyncAndWait(ctx); err != nil {
		return Position{}, fmt.Errorf("sync: %w", err)
	}
	pos, err := p.r.proveCovers(ctx, p.db)
	if err != nil {
		return Position{}, fmt.Errorf("sync: %w", err)
	}
	return pos, nil
}

// Close stops replication (after a last sync attempt by litestream) and
// releases the lease.
func (p *Replication) Close(ctx context.Context) error {
	err := p.db.Close(ctx)
	p.cancel(nil)
	p.wg.Wait()
	if rerr := p.lease.release(ctx); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("close replication: %w", err)
	}
	return nil
}
