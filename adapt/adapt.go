// Package adapt fits the concrete sides (litestream, docker, nomad) to the
// interfaces package migrate consumes, so migrate stays free of them and
// a rehearsal can swap any side for a local one.
package adapt

import (
	"context"
	"errors"

	"github.com/ferry-migrate/ferry/litestream"
	"github.com/ferry-migrate/ferry/migrate"
)

// Replica adapts a litestream replica. force lets a seed replace a replica
// already at the path; the caller decides when that is safe.
func Replica(r *litestream.Replica, holder string, force bool) migrate.Replica {
	return &replica{r: r, holder: holder, force: force}
}

type replica struct {
	r      *litestream.Replica
	holder string
	force  bool
}

func (x *replica) Seed(ctx context.Context, dbPath string, progress migrate.Progress) (migrate.Position, error) {
	pos, err := x.r.Seed(ctx, dbPath, litestream.SeedOptions{Force: x.force, Holder: x.holder, Progress: progress})
	return migrate.Position{TXID: pos.TXID, Time: pos.Time}, err
}

func (x *replica) Restore(ctx context.Context, dst string, _ migrate.Progress) (migrate.Position, error) {
	pos, err := x.r.Restore(ctx, dst, litestream.RestoreOptions{})
	return migrate.Position{TXID: pos.TXID, Time: pos.Time}, err
}

func (x *replica) Latest(ctx context.Context) (migrate.Position, error) {
	info, err := x.r.Inspect(ctx)
	if err != nil {
		return migrate.Position{}, err
	}
	if info.Version == 0 {
		return migrate.Position{}, litestream.ErrNoReplica
	}
	if info.Version != 5 {
		return migrate.Position{}, errors.New("the replica is a litestream v0.3 replica: restore it and seed again with v0.5")
	}
	return migrate.Position{TXID: info.TXID, Time: info.Updated}, nil
}
