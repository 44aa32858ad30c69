package nomad

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"
)

// DeployInput is one deployment of a rendered jobspec.
type DeployInput struct {
	// JobHCL is the jobspec source. It is parsed by the cluster (as
	// `nomad job run` does) and attached to the job as its submission.
	JobHCL string
	// ModifyIndex is the JobModifyIndex the caller last saw (from
	// JobModifyIndex; 0 when the job did not exist). Registration is
	// check-and-set on it: if the job changed since, Deploy returns a
	// *ConflictError and registers nothing.
	ModifyIndex uint64
	// Timeout bounds the whole deployment watch (default 15m).
	Timeout time.Duration
	// Progress, when set, is called with every new task event of the
	// deployment's allocations, in order per task, from one goroutine at a
	// time (not the caller's).
	Progress func(Progress)
	// LogLines is how many lines of the failing task's log a DeployError
	// carries (default 20).
	LogLines int
}

// Progress is one task event seen while watching a deployment.
type Progress struct {
	AllocID string
	NodeID  string
	Task    string
	Event   string // Nomad's event type: Received, Started, Terminated...
	Message string
	Time    time.Time
}

// DeployResult is a successful deployment.
type DeployResult struct {
	Job          string
	Version      uint64
	DeploymentID string
	Allocs       []string // healthy allocations of this version
}

// Deployment failure kinds.
const (
	FailedTask     = "task-failed"     // a main or sidecar task failed
	FailedPrestart = "prestart-failed" // a prestart task failed; the app never started
	FailedTimeout  = "timeout"         // the watch ran out of time
	FailedOther    = "deployment-failed"
)

// DeployError is a deployment that did not become healthy. It names the
// failing allocation and task, the task's last events and the tail of
// its log, and what Nomad did about it (e.g. auto-revert).
type DeployError struct {
	Job          string
	Version      uint64
	DeploymentID string
	Kind         string // FailedTask, FailedPrestart, FailedTimeout, FailedOther
	Status       string // Nomad's deployment status description
	AllocID      string
	Task         string
	Events       []string // "Type: message" of the task's last events
	LogTail      []string // last lines of the task's stderr (stdout when empty)
	Err          error    // context.DeadlineExceeded for a timeout
}

func (e *DeployError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "deploy %s v%d: %s", e.Job, e.Version, e.Kind)
	if e.Status != "" {
		fmt.Fprintf(&b, " (%s)", e.Status)
	}
	if e.Task != "" {
		fmt.Fprintf(&b, ": task %q of alloc %s", e.Task, shortID(e.AllocID))
	}
	if len(e.Events) > 0 {
		fmt.Fprintf(&b, "; last events: %s", strings.Join(e.Events, " | "))
	}
	if len(e.LogTail) > 0 {
		fmt.Fprintf(&b, "; log tail: %s", strings.Join(e.LogTail, " / "))
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

func (e *DeployError) Unwrap() error { return e.Err }

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// JobModifyIndex returns the job's current JobModifyIndex, and false when
// the job does not exist (or was purged).
func (c *Client) JobModifyIndex(ctx context.Context, job string) (uint64, bool, error) {
	j, _, err := c.api.Jobs().Info(job, c.q(ctx))
	if IsNotFound(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, wrap("read job "+job, err)
	}
	return *j.JobModifyIndex, true, nil
}

// Deploy parses and registers the jobspec (check-and-set, with the source
// as submission), then watches evaluation -> deployment -> allocations
// with blocking queries until the deployment is successful (nil), failed
// (*DeployError naming the failing task), or the timeout or ctx ends
// (*DeployError of kind FailedTimeout). It never blocks past the timeout.
//
// The job must be a service job with an update block (ferry renders one):
// without a deployment there is nothing to watch and Deploy times out.
// Registering an unchanged spec makes no new version; Deploy then reports
// the existing deployment of that version.
func (c *Client) Deploy(ctx context.Context, in DeployInput) (*DeployResult, error) {
	if in.Timeout <= 0 {
		in.Timeout = 15 * time.Minute
	}
	if in.LogLines <= 0 {
		in.LogLines = 20
	}
	ctx, cancel := context.WithTimeout(ctx, in.Timeout)
	defer cancel()

	job, err := c.api.Jobs().ParseHCLOpts(&api.JobsParseRequest{JobHCL: in.JobHCL, Canonicalize: true})
	if err != nil {
		return nil, wrap("deploy: parse jobspec", err)
	}
	name := *job.ID
	resp, _, err := c.api.Jobs().RegisterOpts(job, &api.RegisterOptions{
		EnforceIndex: true,
		ModifyIndex:  in.ModifyIndex,
		Submission:   &api.JobSubmission{Source: in.JobHCL, Format: "hcl2"},
	}, c.w(ctx))
	if err != nil {
		if strings.Contains(err.Error(), "Enforcing job modify index") {
			return nil, &ConflictError{Job: name, Expected: in.ModifyIndex, Err: err}
		}
		return nil, wrap("deploy: register "+name, err)
	}
	c.log.InfoContext(ctx, "job registered", "job", name, "eval", resp.EvalID, "modify_index", resp.JobModifyIndex)

	w := &watch{c: c, in: in, job: name, seen: map[string]int{}}
	res, err := w.run(ctx, resp)
	if err != nil {
		var de *DeployError
		if errors.As(err, &de) {
			c.log.WarnContext(context.WithoutCancel(ctx), "deployment failed", "job", name, "kind", de.Kind, "task", de.Task, "alloc", de.AllocID)
		}
		return nil, err
	}
	c.log.InfoContext(ctx, "deployment successful", "job", name, "version", res.Version, "deployment", res.DeploymentID)
	return res, nil
}

type watch struct {
	c       *Client
	in      DeployInput
	job     string
	version uint64
	depID   string
	seen    map[string]int // alloc/task -> events already reported
}

// blockWait is how long one blocking query waits. The deployment's
// status is re-read at least this often.
const blockWait = 2 * time.Second

func (w *watch) qb(ctx context.Context, index uint64) *api.QueryOptions {
	q := w.c.q(ctx)
	q.WaitIndex, q.WaitTime = index, blockWait
	return q
}

func (w *watch) run(ctx context.Context, reg *api.JobRegisterResponse) (*DeployResult, error) {
	nc := w.c.api
	// The evaluation: wait until the scheduler processed it.
	var index uint64
	var eval *api.Evaluation
	for {
		e, meta, err := nc.Evaluations().Info(reg.EvalID, w.qb(ctx, index))
		if w.retry(ctx, err) {
			continue
		}
		if err != nil {
			return nil, w.timeoutOr(ctx, wrap("deploy: watch evaluation", err))
		}
		index = meta.LastIndex
		if e.Status == "complete" || e.Status == "failed" || e.Status == "canceled" || e.Status == "blocked" {
			eval = e
			break
		}
	}
	if eval.Status == "failed" || eval.Status == "canceled" {
		return nil, &DeployError{Job: w.job, Kind: FailedOther, Status: "evaluation " + eval.Status + ": " + eval.StatusDescription}
	}
	j, _, err := nc.Jobs().Info(w.job, w.c.q(ctx))
	if err != nil {
		return nil, w.timeoutOr(ctx, wrap("deploy: read job", err))
	}
	w.version = *j.Version

	// The deployment of this version.
	var dep *api.Deployment
	index = 0
	for dep == nil {
		d, meta, err := nc.Jobs().LatestDeployment(w.job, w.qb(ctx, index))
		if w.retry(ctx, err) {
			continue
		}
		if err != nil {
			return nil, w.timeoutOr(ctx, wrap("deploy: watch deployment", err))
		}
		index = meta.LastIndex
		if d != nil && d.JobVersion == w.version && d.JobModifyIndex == reg.JobModifyIndex {
			dep = d
		}
	}
	w.depID = dep.ID
	w.c.log.InfoContext(ctx, "deployment started", "job", w.job, "version", w.version, "deployment", dep.ID)

	// Task events stream from a blocking query on the deployment's
	// allocations; the deployment itself is watched with another, so its
	// end is seen as soon as it happens.
	evCtx, stopEvents := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var index uint64
		for evCtx.Err() == nil {
			allocs, meta, err := nc.Deployments().Allocations(dep.ID, w.qb(evCtx, index))
			if err != nil {
				if !w.retry(evCtx, err) {
					return
				}
				continue
			}
			index = meta.LastIndex
			w.report(allocs)
		}
	}()
	finish := func() []*api.AllocationListStub {
		stopEvents()
		<-done
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		allocs, _, err := nc.Deployments().Allocations(dep.ID, w.c.q(fctx))
		if err == nil {
			w.report(allocs)
		}
		return allocs
	}
	defer stopEvents()

	index = 0
	for {
		d, meta, err := nc.Deployments().Info(dep.ID, w.qb(ctx, index))
		if w.retry(ctx, err) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, w.failure(context.WithoutCancel(ctx), "", finish(), ctx.Err())
			}
			finish()
			return nil, wrap("deploy: watch deployment", err)
		}
		index = meta.LastIndex
		switch d.Status {
		case "successful":
			allocs := finish()
			res := &DeployResult{Job: w.job, Version: w.version, DeploymentID: d.ID}
			for _, a := range allocs {
				if a.DeploymentStatus != nil && a.DeploymentStatus.Healthy != nil && *a.DeploymentStatus.Healthy && a.ClientStatus == "running" {
					res.Allocs = append(res.Allocs, a.ID)
				}
			}
			return res, nil
		case "failed", "cancelled", "canceled":
			return nil, w.failure(ctx, d.StatusDescription, finish(), nil)
		}
		if ctx.Err() != nil {
			return nil, w.failure(context.WithoutCancel(ctx), "", finish(), ctx.Err())
		}
	}
}

// retry reports whether err is transient (a 5xx answer or no answer)
// and, if so, waits a moment; the watch then asks again. The watch's
// deadline still bounds everything.
func (w *watch) retry(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	code := statusCode(err)
	if code != 0 && code < 500 {
		return false
	}
	w.c.log.WarnContext(ctx, "nomad answer failed; retrying", "job", w.job, "err", err)
	t := time.NewTimer(250 * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// timeoutOr turns an error caused by the watch's deadline into a
// DeployError of kind FailedTimeout.
func (w *watch) timeoutOr(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	bg := context.WithoutCancel(ctx)
	var allocs []*api.AllocationListStub
	if w.depID != "" {
		tctx, cancel := context.WithTimeout(bg, 5*time.Second)
		defer cancel()
		allocs, _, _ = w.c.api.Deployments().Allocations(w.depID, w.c.q(tctx))
	}
	return w.failure(bg, "", allocs, ctx.Err())
}

// report emits the task events not reported yet.
func (w *watch) report(allocs []*api.AllocationListStub) {
	sort.Slice(allocs, func(i, j int) bool { return allocs[i].CreateIndex < allocs[j].CreateIndex })
	for _, a := range allocs {
		tasks := make([]string, 0, len(a.TaskStates))
		for t := range a.TaskStates {
			tasks = append(tasks, t)
		}
		sort.Strings(tasks)
		for _, t := range tasks {
			key := a.ID + "/" + t
			evs := a.TaskStates[t].Events
			for _, e := range evs[min(w.seen[key], len(evs)):] {
				p := Progress{AllocID: a.ID, NodeID: a.NodeID, Task: t, Event: e.Type, Message: e.DisplayMessage, Time: time.Unix(0, e.Time)}
				w.c.log.Debug("task event", "alloc", shortID(a.ID), "task", t, "event", e.Type, "message", e.DisplayMessage)
				if w.in.Progress != nil {
					w.in.Progress(p)
				}
			}
			w.seen[key] = len(evs)
		}
	}
}

// failure builds the DeployError: the latest failed allocation, its
// failed task (a prestart task failing makes it FailedPrestart), the
// task's last events and log tail.
func (w *watch) failure(ctx context.Context, status string, allocs []*api.AllocationListStub, cause error) error {
	de := &DeployError{Job: w.job, Version: w.version, DeploymentID: w.depID, Status: status, Kind: FailedOther, Err: cause}
	if cause != nil {
		de.Kind = FailedTimeout
	}
	var bad *api.AllocationListStub
	for _, a := range allocs {
		if a.ClientStatus == "failed" && (bad == nil || a.CreateIndex > bad.CreateIndex) {
			bad = a
		}
	}
	if bad == nil {
		// Nothing failed (yet): report the newest allocation still trying.
		for _, a := range allocs {
			if bad == nil || a.CreateIndex > bad.CreateIndex {
				bad = a
			}
		}
	}
	if bad == nil {
		return de
	}
	de.AllocID = bad.ID
	task := failedTask(bad)
	if task == "" {
		return de
	}
	de.Task = task
	if cause == nil {
		de.Kind = FailedTask
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	alloc, _, err := w.c.api.Allocations().Info(bad.ID, w.c.q(lctx))
	if err == nil {
		if tg := alloc.Job.LookupTaskGroup(bad.TaskGroup); tg != nil {
			for _, t := range tg.Tasks {
				if t.Name == task && t.Lifecycle != nil && t.Lifecycle.Hook == api.TaskLifecycleHookPrestart && cause == nil {
					de.Kind = FailedPrestart
				}
			}
		}
	}
	evs := bad.TaskStates[task].Events
	for _, e := range evs[max(0, len(evs)-8):] {
		msg := e.DisplayMessage
		if msg == "" {
			msg = e.Message
		}
		de.Events = append(de.Events, e.Type+": "+msg)
	}
	if err == nil {
		for _, stream := range []string{"stderr", "stdout"} {
			b, lerr := w.c.logs(lctx, alloc, task, stream, 8<<10)
			if lerr == nil && len(strings.TrimSpace(string(b))) > 0 {
				de.LogTail = tailLines(string(b), w.in.LogLines)
				break
			}
		}
	}
	return de
}

// failedTask picks the task to blame: a failed one, else one that died,
// else one not running.
func failedTask(a *api.AllocationListStub) string {
	names := make([]string, 0, len(a.TaskStates))
	for t := range a.TaskStates {
		names = append(names, t)
	}
	sort.Strings(names)
	for _, t := range names {
		if a.TaskStates[t].Failed {
			return t
		}
	}
	for _, t := range names {
		if a.TaskStates[t].State != "running" {
			return t
		}
	}
	return ""
}

func tailLines(s string, n int) []string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}
