package nomad

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/nomad/api"
)

// Logs returns the last tail bytes (0: all) of a task's stdout or stderr
// in an allocation. A task that never started has no logs: the error then
// wraps Nomad's "not started yet" answer.
func (c *Client) Logs(ctx context.Context, allocID, task, stream string, tail int64) ([]byte, error) {
	alloc, _, err := c.api.Allocations().Info(allocID, c.q(ctx))
	if err != nil {
		return nil, wrap("logs "+shortID(allocID), err)
	}
	return c.logs(ctx, alloc, task, stream, tail)
}

func (c *Client) logs(ctx context.Context, alloc *api.Allocation, task, stream string, tail int64) ([]byte, error) {
	origin, offset := "start", int64(0)
	if tail > 0 {
		origin, offset = "end", tail
	}
	cancel := make(chan struct{})
	defer close(cancel)
	frames, errs := c.api.AllocFS().Logs(alloc, false, task, stream, origin, offset, cancel, c.q(ctx))
	var buf bytes.Buffer
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				return buf.Bytes(), nil
			}
			buf.Write(f.Data)
		case err := <-errs:
			if err != nil {
				return nil, wrap(fmt.Sprintf("logs %s %s %s", shortID(alloc.ID), task, stream), err)
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("logs %s %s: %w", shortID(alloc.ID), task, ctx.Err())
		}
	}
}

// Stop deregisters a job; with purge it is removed from the cluster's
// state too. Stopping a job that does not exist is not an error (Nomad
// answers 200).
func (c *Client) Stop(ctx context.Context, job string, purge bool) error {
	evalID, _, err := c.api.Jobs().Deregister(job, purge, c.w(ctx))
	if err != nil {
		return wrap("stop "+job, err)
	}
	c.log.InfoContext(ctx, "job stopped", "job", job, "purge", purge, "eval", evalID)
	return nil
}

// Revert registers job version `version` again as a new version. It is
// check-and-set on the current version the caller expects (nil: any).
func (c *Client) Revert(ctx context.Context, job string, version uint64, current *uint64) error {
	resp, _, err := c.api.Jobs().Revert(job, version, current, c.w(ctx), "", "")
	if err != nil {
		return wrap(fmt.Sprintf("revert %s to v%d", job, version), err)
	}
	c.log.InfoContext(ctx, "job reverted", "job", job, "version", version, "eval", resp.EvalID)
	return nil
}

// RestartAlloc restarts one task of a running allocation (all tasks when
// task is empty) in place.
func (c *Client) RestartAlloc(ctx context.Context, allocID, task string) error {
	alloc, _, err := c.api.Allocations().Info(allocID, c.q(ctx))
	if err != nil {
		return wrap("restart "+shortID(allocID), err)
	}
	if task == "" {
		err = c.api.Allocations().RestartAllTasks(alloc, c.q(ctx))
	} else {
		err = c.api.Allocations().Restart(alloc, task, c.q(ctx))
	}
	if err != nil {
		return wrap("restart "+shortID(allocID), err)
	}
	return nil
}

// DrainResult is a drain that moved a job's allocation to another node.
type DrainResult struct {
	From, To        string // node IDs
	OldAlloc, Alloc string
	Rescheduled     time.Duration // drain start to replacement healthy
	MarkedEligible  bool
}

// ErrNoAllocOnNode is returned by Drain when the job has no running
// allocation on the node.
var ErrNoAllocOnNode = errors.New("job has no running allocation on the node")

// Drain drains nodeID with deadline, waits (blocking queries) until an
// allocation of job runs healthy on another node, and then marks the node
// eligible again, also when the wait fails. It does not return before
// the node is eligible again or that attempt failed (both errors are
// reported).
func (c *Client) Drain(ctx context.Context, nodeID, job string, deadline time.Duration) (res *DrainResult, err error) {
	stubs, _, err := c.api.Jobs().Allocations(job, false, c.q(ctx))
	if err != nil {
		return nil, wrap("drain: list allocations of "+job, err)
	}
	var old *api.AllocationListStub
	for _, a := range stubs {
		if a.NodeID == nodeID && a.ClientStatus == "running" && a.DesiredStatus == "run" {
			old = a
		}
	}
	if old == nil {
		return nil, fmt.Errorf("drain %s: %w", shortID(nodeID), ErrNoAllocOnNode)
	}
	start := time.Now()
	_, err = c.api.Nodes().UpdateDrainOpts(nodeID, &api.DrainOptions{
		DrainSpec: &api.DrainSpec{Deadline: deadline},
		Meta:      map[string]string{"message": "ferry drill: drain " + job},
	}, c.w(ctx))
	if err != nil {
		return nil, wrap("drain "+shortID(nodeID), err)
	}
	c.log.InfoContext(ctx, "node draining", "node", shortID(nodeID), "job", job, "deadline", deadline)
	res = &DrainResult{From: nodeID, OldAlloc: old.ID}
	defer func() {
		// Always give the node back, even when the watch failed or ctx
		// ended: a drill must not leave the cluster a node short.
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, eerr := c.api.Nodes().UpdateDrainOpts(nodeID, &api.DrainOptions{MarkEligible: true}, c.w(ectx))
		if eerr != nil {
			err = errors.Join(err, wrap("drain: mark node eligible", eerr))
			return
		}
		res.MarkedEligible = true
		c.log.InfoContext(ectx, "node eligible again", "node", shortID(nodeID))
	}()

	var index uint64
	for {
		q := c.q(ctx)
		q.WaitIndex, q.WaitTime = index, blockWait
		stubs, meta, err := c.api.Jobs().Allocations(job, false, q)
		if err != nil {
			return res, wrap("drain: watch allocations of "+job, err)
		}
		index = meta.LastIndex
		for _, a := range stubs {
			if a.NodeID != nodeID && a.CreateIndex > old.CreateIndex && allocHealthy(a) {
				res.To, res.Alloc, res.Rescheduled = a.NodeID, a.ID, time.Since(start)
				c.log.InfoContext(ctx, "replacement healthy", "alloc", shortID(a.ID), "node", shortID(a.NodeID), "after", res.Rescheduled)
				return res, nil
			}
		}
		if ctx.Err() != nil {
			return res, fmt.Errorf("drain: wait for replacement of %s: %w", shortID(old.ID), ctx.Err())
		}
	}
}

// allocHealthy: running, every non-prestart task running, and healthy
// per its deployment status when it has one (drain migrations carry
// none).
func allocHealthy(a *api.AllocationListStub) bool {
	if a.ClientStatus != "running" || a.DesiredStatus != "run" {
		return false
	}
	if a.DeploymentStatus != nil && a.DeploymentStatus.Healthy != nil && !*a.DeploymentStatus.Healthy {
		return false
	}
	running := 0
	for _, ts := range a.TaskStates {
		switch ts.State {
		case "running":
			running++
		case "pending":
			return false
		}
	}
	return running > 0
}
