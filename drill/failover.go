package drill

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/litestream"
	"github.com/ferry-migrate/ferry/migrate"
	"github.com/ferry-migrate/ferry/nomad"
	"github.com/ferry-migrate/ferry/runbook"
	"github.com/ferry-migrate/ferry/sqlite"
)

// FailoverResult is the failover drill's outcome.
type FailoverResult struct {
	From      string            `json:"from_node,omitempty"`
	To        string            `json:"to_node,omitempty"`
	RTO       time.Duration     `json:"rto_ns"`
	RPOZero   bool              `json:"rpo_zero"`  // no replicated write was lost
	Positions map[string]uint64 `json:"positions"` // txid per database before the drain
	Verify    *migrate.Report   `json:"verify,omitempty"`
	Problems  []string          `json:"problems,omitempty"`
	Eligible  bool              `json:"node_eligible_again"`
}

// Failover holds what the failover drill needs.
type Failover struct {
	Service   *ferry.Service
	Nomad     *nomad.Client
	Replicas  map[string]*litestream.Replica
	Migration *migrate.Migration // for Verify
	Journal   *runbook.Journal
	Tmp       string
}

// Facts the failover drill keeps in the journal while a drain is in
// flight, so that a drill killed midway gives the node back when re-run.
const factDraining = "drill_draining_node"

// Run records each replica's position, drains the node running the
// service's allocation, waits for the replacement to become healthy on
// another node (RTO), verifies the service as ferry verify does, and
// checks that every user table at the recorded position is still in the
// latest replica (RPO = 0). The node is made eligible again whatever
// happens, and first of all when an earlier drill was killed mid-drain.
func (f *Failover) Run(ctx context.Context) (*FailoverResult, error) {
	res := &FailoverResult{Positions: map[string]uint64{}}
	if err := f.giveBack(ctx); err != nil {
		return nil, err
	}
	node, err := f.runningNode(ctx)
	if err != nil {
		return nil, err
	}
	res.From = node
	for _, db := range f.Service.Databases {
		info, err := f.Replicas[db.Name].Inspect(ctx)
		if err != nil {
			return nil, fmt.Errorf("failover drill: %w", err)
		}
		res.Positions[db.Name] = info.TXID
	}
	f.Journal.SetFact(factDraining, node)
	if err := f.Journal.Save(); err != nil {
		return nil, err
	}
	dr, drainErr := f.Nomad.Drain(ctx, node, f.Service.Name, f.Service.Drill.DrainDeadline)
	if dr != nil {
		res.To, res.RTO, res.Eligible = dr.To, dr.Rescheduled, dr.MarkedEligible
	}
	if res.Eligible {
		delete(f.Journal.Facts, factDraining)
		if err := f.Journal.Save(); err != nil {
			return res, err
		}
	}
	if drainErr != nil {
		return res, fmt.Errorf("failover drill: %w", drainErr)
	}

	if res.Verify, err = f.Migration.Verify(ctx); err != nil {
		return res, fmt.Errorf("failover drill: %w", err)
	}
	if !res.Verify.OK() {
		res.Problems = append(res.Problems, (&migrate.VerifyError{Report: res.Verify}).Error())
	}
	res.RPOZero = true
	for _, db := range f.Service.Databases {
		lost, err := f.lostRows(ctx, db, res.Positions[db.Name])
		if err != nil {
			return res, fmt.Errorf("failover drill: %w", err)
		}
		if len(lost) > 0 {
			res.RPOZero = false
			res.Problems = append(res.Problems, fmt.Sprintf("database %s: replicated writes lost: %v", db.Name, lost))
		}
	}
	if len(res.Problems) > 0 {
		return res, fmt.Errorf("failover drill: %w", ErrFailed)
	}
	return res, nil
}

// giveBack makes eligible a node that an earlier, interrupted drill left
// draining.
func (f *Failover) giveBack(ctx context.Context) error {
	node := f.Journal.Facts[factDraining]
	if node == "" {
		return nil
	}
	_, err := f.Nomad.API().Nodes().UpdateDrainOpts(node, &api.DrainOptions{MarkEligible: true}, (&api.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("failover drill: give back node %s left draining by an interrupted drill: %w", node, err)
	}
	delete(f.Journal.Facts, factDraining)
	f.Journal.Log(time.Now(), "made node %s eligible again after an interrupted failover drill", node)
	return f.Journal.Save()
}

// runningNode is the node of the service's running allocation. It waits
// (bounded) for one: after an interrupted drill gave its node back, the
// service may still be moving.
func (f *Failover) runningNode(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		allocs, _, err := f.Nomad.API().Jobs().Allocations(f.Service.Name, false, (&api.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return "", fmt.Errorf("failover drill: allocations of %s: %w", f.Service.Name, err)
		}
		for _, a := range allocs {
			if a.ClientStatus == api.AllocClientStatusRunning && a.DesiredStatus == api.AllocDesiredStatusRun {
				return a.NodeID, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("failover drill: %s has no running allocation to move", f.Service.Name)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// lostRows compares each user table at txid with the latest replica: a
// table that vanished or has fewer rows lost writes. (Rows updated during
// the drill are the app's own doing, not a loss.)
func (f *Failover) lostRows(ctx context.Context, db ferry.Database, txid uint64) ([]string, error) {
	dir, err := os.MkdirTemp(f.Tmp, "ferry-failover-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	r := f.Replicas[db.Name]
	before := filepath.Join(dir, "before.db")
	if _, err := r.Restore(ctx, before, litestream.RestoreOptions{TXID: txid}); err != nil {
		return nil, err
	}
	after := filepath.Join(dir, "after.db")
	if _, err := r.Restore(ctx, after, litestream.RestoreOptions{}); err != nil {
		return nil, err
	}
	a, err := sqlite.FingerprintFile(ctx, before)
	if err != nil {
		return nil, err
	}
	b, err := sqlite.FingerprintFile(ctx, after)
	if err != nil {
		return nil, err
	}
	var lost []string
	for _, d := range sqlite.DiffTables(a, b, db.UserTables) {
		ta, _ := a.Table(d.Table)
		tb, okb := b.Table(d.Table)
		switch {
		case !okb:
			lost = append(lost, d.Table+" is gone")
		case tb.Rows < ta.Rows:
			lost = append(lost, fmt.Sprintf("%s has %d rows, had %d", d.Table, tb.Rows, ta.Rows))
		}
	}
	return lost, nil
}
