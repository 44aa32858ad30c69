package nomadtest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/hashicorp/nomad/api"
)

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func event(typ, msg string, mut func(*api.TaskEvent)) *api.TaskEvent {
	e := &api.TaskEvent{Type: typ, Time: now(), DisplayMessage: msg, Details: map[string]string{}}
	if mut != nil {
		mut(e)
	}
	return e
}

// pause lets simulated time pass; false when the rollout was cancelled.
func (s *Server) pause(ctx context.Context) bool {
	t := time.NewTimer(s.opts.Step)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// startRollout runs what a registered job version does, in the
// background. Callers hold s.mu.
func (s *Server) startRollout(jr *jobRec, job *api.Job, e *api.Evaluation) {
	if jr.cancel != nil {
		jr.cancel()
	}
	ctx, cancel := context.WithCancel(s.ctx)
	jr.cancel = cancel
	b := jr.behaviors[*job.Version]
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.rollout(ctx, jr, job, e, b)
	}()
}

// step runs f under the lock unless ctx is done.
func (s *Server) step(ctx context.Context, f func()) bool {
	if !s.pause(ctx) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctx.Err() != nil {
		return false
	}
	f()
	return true
}

func (s *Server) rollout(ctx context.Context, jr *jobRec, job *api.Job, e *api.Evaluation, b Behavior) {
	var dep *api.Deployment
	var placed []*allocRec
	ok := s.step(ctx, func() {
		e.Status, e.ModifyIndex, e.ModifyTime = "complete", s.bump("evals"), now()
		if *job.Type == "service" {
			dep = s.newDeployment(job)
		}
		// Destructive update: the previous version's allocations stop first.
		for _, id := range s.allocOrd {
			ar := s.allocs[id]
			if ar.a.JobID == *job.ID && ar.a.Namespace == *job.Namespace && !terminal(ar.a) {
				ar.a.DesiredStatus, ar.a.DesiredDescription = "stop", "alloc not needed due to job update"
				s.finishAlloc(ar, "complete", "All tasks have completed")
			}
		}
		for _, tg := range job.TaskGroups {
			for i := 0; i < *tg.Count; i++ {
				ar := s.place(job, tg, i, e, dep, "", nil)
				if prev := s.lastFailed(job, *tg.Name); ar != nil && prev != nil {
					// A sticky ephemeral disk links the replacement of a
					// failed allocation to it.
					ar.a.PreviousAllocation, prev.a.NextAllocation = prev.a.ID, ar.a.ID
				}
				if ar == nil {
					s.block(job, tg, e)
					continue
				}
				placed = append(placed, ar)
			}
		}
	})
	if !ok || len(placed) == 0 {
		return
	}
	if *job.Type == "batch" || *job.Type == "sysbatch" {
		for _, ar := range placed {
			s.runBatch(ctx, ar)
		}
		return
	}
	healthy := true
	for _, ar := range placed {
		cur := ar
		for attempt := 0; ; attempt++ {
			if s.runAlloc(ctx, cur, b, dep) {
				break
			}
			if ctx.Err() != nil {
				return
			}
			if attempt >= b.Reschedules {
				// The failure is evaluated and a delayed follow-up
				// created, but the deployment fails before it runs.
				s.step(ctx, func() { s.followUp(cur) })
				healthy = false
				break
			}
			next := s.reschedule(ctx, cur, dep)
			if next == nil {
				return
			}
			cur = next
		}
	}
	s.step(ctx, func() {
		if dep == nil {
			return
		}
		if healthy {
			dep.Status, dep.StatusDescription = "successful", "Deployment completed successfully"
			job.Stable = ptr(true)
			s.bump("deployment", "jobs")
			return
		}
		dep.Status = "failed"
		stable := -1
		for i := len(jr.versions) - 1; i >= 0; i-- {
			if v := jr.versions[i]; v != job && v.Stable != nil && *v.Stable {
				stable = i
				break
			}
		}
		autoRevert := false
		for _, st := range dep.TaskGroups {
			autoRevert = autoRevert || st.AutoRevert
		}
		switch {
		case autoRevert && stable >= 0:
			dep.StatusDescription = fmt.Sprintf("Failed due to progress deadline - rolling back to job version %d", *jr.versions[stable].Version)
			s.bump("deployment")
			s.revertTo(jr, uint64(stable), true)
		case autoRevert:
			dep.StatusDescription = "Failed due to progress deadline - no stable job version to auto revert to"
			s.bump("deployment")
		default:
			dep.StatusDescription = "Failed due to progress deadline"
			s.bump("deployment")
		}
	})
}

func (s *Server) newDeployment(job *api.Job) *api.Deployment {
	idx := s.bump("deployment")
	d := &api.Deployment{
		ID: newID(), Namespace: *job.Namespace, JobID: *job.ID, JobVersion: *job.Version,
		JobModifyIndex: *job.JobModifyIndex, JobSpecModifyIndex: *job.JobModifyIndex, JobCreateIndex: *job.CreateIndex,
		TaskGroups: map[string]*api.DeploymentState{}, Status: "running", StatusDescription: "Deployment is running",
		CreateIndex: idx, ModifyIndex: idx, CreateTime: now(), ModifyTime: now(),
	}
	for _, tg := range job.TaskGroups {
		st := &api.DeploymentState{DesiredTotal: *tg.Count}
		if u := tg.Update; u != nil {
			st.AutoRevert = u.AutoRevert != nil && *u.AutoRevert
			if u.ProgressDeadline != nil {
				st.ProgressDeadline = *u.ProgressDeadline
				st.RequireProgressBy = time.Now().Add(*u.ProgressDeadline)
			}
		}
		d.TaskGroups[*tg.Name] = st
	}
	s.deps[d.ID] = d
	s.depOrder = append(s.depOrder, d.ID)
	return d
}

// pickNode chooses a ready, eligible node of the job's datacenters with
// the fewest running allocations, avoiding one node.
func (s *Server) pickNode(job *api.Job, avoid string) *node {
	var best *node
	bestN := 0
	for _, n := range s.nodes {
		if n.id == avoid || n.eligibility() != "eligible" || !dcMatch(job.Datacenters, n.dc) {
			continue
		}
		c := 0
		for _, ar := range s.allocs {
			if ar.a.NodeID == n.id && !terminal(ar.a) {
				c++
			}
		}
		if best == nil || c < bestN {
			best, bestN = n, c
		}
	}
	return best
}

func dcMatch(dcs []string, dc string) bool {
	if len(dcs) == 0 {
		return true
	}
	for _, d := range dcs {
		if d == dc || d == "*" {
			return true
		}
	}
	return false
}

// place creates a pending allocation; nil when no node fits.
func (s *Server) place(job *api.Job, tg *api.TaskGroup, i int, e *api.Evaluation, dep *api.Deployment, avoid string, prev *allocRec) *allocRec {
	n := s.pickNode(job, avoid)
	if n == nil {
		return nil
	}
	idx := s.bump("allocs")
	a := &api.Allocation{
		ID: newID(), Namespace: *job.Namespace, EvalID: e.ID, Name: fmt.Sprintf("%s.%s[%d]", *job.ID, *tg.Name, i),
		NodeID: n.id, NodeName: n.name, JobID: *job.ID, Job: job, TaskGroup: *tg.Name,
		DesiredStatus: "run", ClientStatus: "pending", TaskStates: map[string]*api.TaskState{},
		CreateIndex: idx, ModifyIndex: idx, AllocModifyIndex: idx, CreateTime: now(), ModifyTime: now(),
	}
	if dep != nil {
		a.DeploymentID = dep.ID
		dep.TaskGroups[*tg.Name].PlacedAllocs++
		dep.ModifyIndex = s.bump("deployment")
	}
	for _, t := range tg.Tasks {
		a.TaskStates[t.Name] = &api.TaskState{State: "pending", Events: []*api.TaskEvent{event("Received", "Task received by client", nil)}}
	}
	ar := &allocRec{a: a, version: *job.Version, logs: map[string]map[string][]byte{}, port: 20000 + int(idx%10000)}
	if prev != nil {
		a.PreviousAllocation = prev.a.ID
		tr := &api.RescheduleTracker{}
		if prev.a.RescheduleTracker != nil {
			tr.Events = append(tr.Events, prev.a.RescheduleTracker.Events...)
		}
		tr.Events = append(tr.Events, &api.RescheduleEvent{RescheduleTime: now(), PrevAllocID: prev.a.ID, PrevNodeID: prev.a.NodeID})
		a.RescheduleTracker = tr
	}
	s.allocs[a.ID] = ar
	s.allocOrd = append(s.allocOrd, a.ID)
	return ar
}

func (s *Server) lastFailed(job *api.Job, group string) *allocRec {
	var last *allocRec
	for _, id := range s.allocOrd {
		ar := s.allocs[id]
		if ar.a.JobID == *job.ID && ar.a.TaskGroup == group && ar.a.ClientStatus == "failed" && ar.a.NextAllocation == "" {
			last = ar
		}
	}
	return last
}

// block records a blocked evaluation for a group that found no node.
func (s *Server) block(job *api.Job, tg *api.TaskGroup, parent *api.Evaluation) *api.Evaluation {
	b := s.newEval(job, "queued-allocs", "blocked")
	b.StatusDescription = "created to place remaining allocations"
	b.PreviousEval = parent.ID
	b.FailedTGAllocs = map[string]*api.AllocationMetric{*tg.Name: {NodesEvaluated: 0}}
	parent.BlockedEval = b.ID
	s.bump("evals")
	return b
}

func (s *Server) touchAlloc(ar *allocRec) {
	ar.a.ModifyIndex = s.bump("allocs")
	ar.a.ModifyTime = now()
}

type lifecycle int

const (
	prestart lifecycle = iota
	mainTask
	poststart
)

func phase(t *api.Task) lifecycle {
	switch {
	case t.Lifecycle == nil:
		return mainTask
	case t.Lifecycle.Hook == "prestart":
		return prestart
	}
	return poststart
}

func (s *Server) group(ar *allocRec) *api.TaskGroup {
	for _, tg := range ar.a.Job.TaskGroups {
		if *tg.Name == ar.a.TaskGroup {
			return tg
		}
	}
	return nil
}

func (s *Server) startTask(ar *allocRec, t *api.Task, b Behavior) {
	ts := ar.a.TaskStates[t.Name]
	ts.State, ts.StartedAt = "running", time.Now()
	ts.Events = append(ts.Events,
		event("Task Setup", "Building Task Directory", func(e *api.TaskEvent) { e.Message = "Building Task Directory"; e.Details["message"] = e.Message }),
		event("Started", "Task started by client", nil))
	out, ok := b.Stdout[t.Name]
	if !ok {
		out = t.Name + ": started\n"
	}
	s.appendLog(ar, t.Name, "stdout", out)
	s.appendLog(ar, t.Name, "stderr", b.Stderr[t.Name])
}

func (s *Server) appendLog(ar *allocRec, task, typ, text string) {
	if ar.logs[task] == nil {
		ar.logs[task] = map[string][]byte{}
	}
	ar.logs[task][typ] = append(ar.logs[task][typ], text...)
}

func (s *Server) endTask(ts *api.TaskState, code int, failed bool) {
	ts.Events = append(ts.Events, event("Terminated", fmt.Sprintf("Exit Code: %d", code), func(e *api.TaskEvent) {
		e.ExitCode = code
		e.Details["exit_code"] = fmt.Sprint(code)
	}))
	ts.State, ts.Failed, ts.FinishedAt = "dead", failed, time.Now()
}

// runAlloc runs a service allocation to healthy (true) or failed (false).
func (s *Server) runAlloc(ctx context.Context, ar *allocRec, b Behavior, dep *api.Deployment) bool {
	tg := s.group(ar)
	var pre, mains, posts []*api.Task
	for _, t := range tg.Tasks {
		switch phase(t) {
		case prestart:
			pre = append(pre, t)
		case mainTask:
			mains = append(mains, t)
		default:
			posts = append(posts, t)
		}
	}
	// Prestart tasks run; the service registers.
	if !s.step(ctx, func() {
		ar.a.ClientStatus = "running"
		ar.service, ar.checks = true, "pending"
		for _, t := range pre {
			s.startTask(ar, t, b)
		}
		s.touchAlloc(ar)
		s.bump("services")
	}) {
		return false
	}
	if b.Outcome == PrestartFails && len(pre) > 0 {
		return s.step(ctx, func() {
			bad := pre[0]
			ts := ar.a.TaskStates[bad.Name]
			if _, ok := b.Stderr[bad.Name]; !ok {
				s.appendLog(ar, bad.Name, "stderr", bad.Name+": fatal: exit 1\n")
			}
			s.endTask(ts, 1, true)
			ts.Events = append(ts.Events,
				event("Not Restarting", "Policy allows no restarts", func(e *api.TaskEvent) { e.FailsTask = true; e.Details["fails_task"] = "true" }),
				event("Killing", "Sent interrupt. Waiting 5s before force killing", nil))
			for _, t := range tg.Tasks {
				if t == bad {
					continue
				}
				o := ar.a.TaskStates[t.Name]
				if o.State == "running" {
					s.endTask(o, 0, false)
					continue
				}
				o.State = "dead"
				o.Events = append(o.Events,
					event("Sibling Task Failed", fmt.Sprintf("Task's sibling %q failed", bad.Name), func(e *api.TaskEvent) { e.FailedSibling = bad.Name }),
					event("Killing", "Sent interrupt. Waiting 5s before force killing", nil))
			}
			s.failAlloc(ar, dep)
		}) && false
	}
	// Prestart tasks exit 0; main tasks and sidecars start.
	if !s.step(ctx, func() {
		for _, t := range pre {
			s.endTask(ar.a.TaskStates[t.Name], 0, false)
		}
		for _, t := range append(append([]*api.Task{}, mains...), posts...) {
			s.startTask(ar, t, b)
		}
		ar.checks = "failure"
		s.touchAlloc(ar)
	}) {
		return false
	}
	if b.Outcome == MainFails && len(mains) > 0 {
		bad := mains[0]
		if !s.step(ctx, func() {
			ts := ar.a.TaskStates[bad.Name]
			if _, ok := b.Stderr[bad.Name]; !ok {
				s.appendLog(ar, bad.Name, "stderr", bad.Name+": fatal: exit 1\n")
			}
			s.endTask(ts, 1, false)
			ts.State = "pending"
			ts.Restarts, ts.LastRestart = 1, time.Now()
			ts.Events = append(ts.Events, event("Restarting", "Task restarting in 1.1s", func(e *api.TaskEvent) {
				e.RestartReason, e.StartDelay = "Restart within policy", int64(1100*time.Millisecond)
			}))
			s.touchAlloc(ar)
		}) {
			return false
		}
		return s.step(ctx, func() {
			ts := ar.a.TaskStates[bad.Name]
			if _, ok := b.Stderr[bad.Name]; !ok {
				s.appendLog(ar, bad.Name, "stderr", bad.Name+": fatal: exit 1\n")
			}
			ts.Events = append(ts.Events, event("Started", "Task started by client", nil))
			s.endTask(ts, 1, true)
			ts.Events = append(ts.Events,
				event("Not Restarting", `Exceeded allowed attempts 1 in interval 30s and mode is "fail"`, func(e *api.TaskEvent) { e.FailsTask = true; e.Details["fails_task"] = "true" }),
				event("Killing", "Sent interrupt. Waiting 5s before force killing", nil))
			for _, t := range posts {
				o := ar.a.TaskStates[t.Name]
				o.Events = append(o.Events,
					event("Sibling Task Failed", fmt.Sprintf("Task's sibling %q failed", bad.Name), func(e *api.TaskEvent) { e.FailedSibling = bad.Name }),
					event("Killing", "Sent interrupt. Waiting 5s before force killing", nil))
				s.endTask(o, 130, false)
				o.Events = append(o.Events, event("Killed", "Task successfully killed", nil))
			}
			s.failAlloc(ar, dep)
		}) && false
	}
	if !s.step(ctx, func() { ar.checks = "success"; s.touchAlloc(ar) }) {
		return false
	}
	return s.step(ctx, func() {
		ar.a.DeploymentStatus = &api.AllocDeploymentStatus{Healthy: ptr(true), Timestamp: time.Now(), ModifyIndex: s.index + 1}
		s.touchAlloc(ar)
		if dep != nil {
			dep.TaskGroups[ar.a.TaskGroup].HealthyAllocs++
			dep.ModifyIndex = s.bump("deployment")
		}
	})
}

func (s *Server) failAlloc(ar *allocRec, dep *api.Deployment) {
	ar.a.ClientStatus, ar.a.ClientDescription = "failed", "Failed tasks"
	ar.a.DeploymentStatus = &api.AllocDeploymentStatus{Healthy: ptr(false), Timestamp: time.Now(), ModifyIndex: s.index + 1}
	ar.service = false
	s.touchAlloc(ar)
	s.bump("services")
	if dep != nil {
		dep.TaskGroups[ar.a.TaskGroup].UnhealthyAllocs++
		dep.ModifyIndex = s.bump("deployment")
	}
}

// finishAlloc stops every task of an allocation. Callers hold s.mu.
func (s *Server) finishAlloc(ar *allocRec, status, desc string) {
	for _, ts := range ar.a.TaskStates {
		if ts.State != "dead" {
			ts.Events = append(ts.Events, event("Killing", "Sent interrupt. Waiting 5s before force killing", nil))
			s.endTask(ts, 0, false)
			ts.Events = append(ts.Events, event("Killed", "Task successfully killed", nil))
		}
	}
	ar.a.ClientStatus, ar.a.ClientDescription = status, desc
	ar.service = false
	s.touchAlloc(ar)
	s.bump("services")
}

// reschedule replaces a failed allocation inside its deployment, after a
// delayed alloc-failure evaluation, as Nomad does with progress_deadline.
func (s *Server) reschedule(ctx context.Context, prev *allocRec, dep *api.Deployment) *allocRec {
	var e *api.Evaluation
	if !s.step(ctx, func() { e = s.followUp(prev) }) {
		return nil
	}
	var next *allocRec
	if !s.step(ctx, func() {
		e.Status, e.ModifyIndex = "complete", s.bump("evals")
		next = s.place(prev.a.Job, s.group(prev), 0, e, dep, "", prev)
		prev.a.DesiredStatus, prev.a.DesiredDescription = "stop", "alloc was rescheduled because it failed"
		if next != nil {
			prev.a.NextAllocation = next.a.ID
		}
		s.touchAlloc(prev)
	}) {
		return nil
	}
	return next
}

// followUp is how Nomad evaluates a failed allocation: an alloc-failure
// evaluation that creates a delayed follow-up one for the reschedule.
func (s *Server) followUp(failed *allocRec) *api.Evaluation {
	first := s.newEval(failed.a.Job, "alloc-failure", "complete")
	e := s.newEval(failed.a.Job, "alloc-failure", "pending")
	e.PreviousEval = first.ID
	e.StatusDescription = "created for delayed rescheduling"
	e.WaitUntil = time.Now().Add(30 * time.Second)
	failed.a.FollowupEvalID = e.ID
	failed.a.DesiredTransition.Reschedule = ptr(true)
	s.touchAlloc(failed)
	return e
}

var (
	nomadVarRe = regexp.MustCompile(`nomadVar\s+"([^"]+)"`)
	indexRe    = regexp.MustCompile(`index\s+\.\s+"([^"]+)"|\{\{\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)
)

// renderFiles evaluates templates that read one Nomad Variable key.
func (s *Server) renderFiles(job *api.Job, t *api.Task) map[string]string {
	files := map[string]string{}
	for _, tp := range t.Templates {
		if tp.EmbeddedTmpl == nil || tp.DestPath == nil {
			continue
		}
		m := nomadVarRe.FindStringSubmatch(*tp.EmbeddedTmpl)
		k := indexRe.FindStringSubmatch(*tp.EmbeddedTmpl)
		if m == nil || k == nil {
			files[*tp.DestPath] = *tp.EmbeddedTmpl
			continue
		}
		key := k[1] + k[2]
		if v, ok := s.vars[*job.Namespace+"/"+m[1]]; ok {
			files[*tp.DestPath] = v.Items[key]
		}
	}
	return files
}

func (s *Server) runBatch(ctx context.Context, ar *allocRec) {
	tg := s.group(ar)
	if !s.step(ctx, func() {
		ar.a.ClientStatus = "running"
		for _, t := range tg.Tasks {
			ts := ar.a.TaskStates[t.Name]
			ts.State, ts.StartedAt = "running", time.Now()
			ts.Events = append(ts.Events, event("Task Setup", "Building Task Directory", nil), event("Started", "Task started by client", nil))
		}
		s.touchAlloc(ar)
	}) {
		return
	}
	s.step(ctx, func() {
		failed := false
		for _, t := range tg.Tasks {
			res := BatchResult{}
			if s.batch != nil {
				run := BatchRun{Job: cloneJob(ar.a.Job), Task: t, Files: s.renderFiles(ar.a.Job, t)}
				s.mu.Unlock()
				res = s.batch(run)
				s.mu.Lock()
			}
			for p, c := range res.Files {
				if ar.files == nil {
					ar.files = map[string]string{}
				}
				ar.files[p] = c
			}
			s.appendLog(ar, t.Name, "stdout", res.Stdout)
			s.appendLog(ar, t.Name, "stderr", res.Stderr)
			ts := ar.a.TaskStates[t.Name]
			s.endTask(ts, res.ExitCode, res.ExitCode != 0)
			if res.ExitCode != 0 {
				failed = true
				ts.Events = append(ts.Events, event("Not Restarting", "Policy allows no restarts", func(e *api.TaskEvent) { e.FailsTask = true }))
			}
		}
		if failed {
			ar.a.ClientStatus, ar.a.ClientDescription = "failed", "Failed tasks"
		} else {
			ar.a.ClientStatus, ar.a.ClientDescription = "complete", "All tasks have completed"
		}
		s.touchAlloc(ar)
		s.bump("jobs")
	})
}

// ---- drain ----

func (s *Server) nodeDrain(r *http.Request) (any, error) {
	n := s.nodeByID(r.PathValue("id"))
	if n == nil {
		return nil, errf(404, "node not found")
	}
	var req api.NodeUpdateDrainRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	resp := map[string]any{"EvalCreateIndex": 0, "EvalIDs": nil}
	if req.DrainSpec != nil {
		t := time.Now()
		n.drain = &api.DrainStrategy{DrainSpec: *req.DrainSpec, ForceDeadline: t.Add(req.DrainSpec.Deadline), StartedAt: t}
		n.lastDrain = &api.DrainMetadata{StartedAt: t, UpdatedAt: t, Status: "draining", Meta: req.Meta}
		n.eligible = false
		n.modifyIndex = s.bump("nodes")
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.drain(s.ctx, n)
		}()
	} else {
		if n.drain != nil {
			n.drain = nil
			n.lastDrain.Status, n.lastDrain.UpdatedAt = "canceled", time.Now()
		}
		if req.MarkEligible {
			n.eligible = true
		}
		n.modifyIndex = s.bump("nodes")
		if ids := s.unblock(); len(ids) > 0 {
			resp["EvalIDs"], resp["EvalCreateIndex"] = ids, s.index
		}
	}
	resp["Index"], resp["NodeModifyIndex"] = n.modifyIndex, n.modifyIndex
	return resp, nil
}

func (s *Server) nodeEligibility(r *http.Request) (any, error) {
	n := s.nodeByID(r.PathValue("id"))
	if n == nil {
		return nil, errf(404, "node not found")
	}
	var req api.NodeUpdateEligibilityRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if n.drain != nil && req.Eligibility == "eligible" {
		return nil, errf(500, "can not set node's scheduling eligibility to eligible while it is draining")
	}
	n.eligible = req.Eligibility == "eligible"
	n.modifyIndex = s.bump("nodes")
	resp := map[string]any{"EvalCreateIndex": 0, "EvalIDs": nil, "Index": n.modifyIndex, "NodeModifyIndex": 0}
	if ids := s.unblock(); len(ids) > 0 {
		resp["EvalIDs"], resp["EvalCreateIndex"] = ids, s.index
	}
	return resp, nil
}

// unblock places what blocked evaluations were waiting for, now that a
// node may have become eligible. Callers hold s.mu.
func (s *Server) unblock() []string {
	var ids []string
	for _, id := range s.evalOrder {
		e := s.evals[id]
		if e.Status != "blocked" {
			continue
		}
		jr, ok := s.jobs[e.Namespace+"/"+e.JobID]
		if !ok || jr.purged {
			continue
		}
		job := jr.cur()
		for _, tg := range job.TaskGroups {
			if _, failed := e.FailedTGAllocs[*tg.Name]; !failed {
				continue
			}
			ar := s.place(job, tg, 0, e, nil, "", nil)
			if ar == nil {
				continue
			}
			e.Status, e.ModifyIndex = "complete", s.bump("evals")
			ids = append(ids, e.ID)
			b := jr.behaviors[*job.Version]
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.runAlloc(s.ctx, ar, b, nil)
			}()
		}
	}
	return ids
}

// drain migrates a node's service allocations elsewhere, then completes.
func (s *Server) drain(ctx context.Context, n *node) {
	var moving []*allocRec
	if !s.step(ctx, func() {
		for _, id := range s.allocOrd {
			ar := s.allocs[id]
			if ar.a.NodeID == n.id && !terminal(ar.a) && *ar.a.Job.Type == "service" {
				ar.a.DesiredStatus, ar.a.DesiredDescription = "stop", "alloc is being migrated"
				ar.a.DesiredTransition.Migrate = ptr(true)
				s.touchAlloc(ar)
				moving = append(moving, ar)
			}
		}
	}) {
		return
	}
	for _, old := range moving {
		var next *allocRec
		if !s.step(ctx, func() {
			s.finishAlloc(old, "complete", "All tasks have completed")
			e := s.newEval(old.a.Job, "node-drain", "complete")
			next = s.place(old.a.Job, s.group(old), 0, e, nil, n.id, nil)
			if next == nil {
				s.block(old.a.Job, s.group(old), e)
			}
		}) {
			return
		}
		if next != nil {
			s.wg.Add(1)
			go func(ar *allocRec) {
				defer s.wg.Done()
				s.mu.Lock()
				var b Behavior
				if jr, ok := s.jobs[ar.a.Namespace+"/"+ar.a.JobID]; ok {
					b = jr.behaviors[ar.version]
				}
				s.mu.Unlock()
				s.runAlloc(ctx, ar, b, nil)
			}(next)
		}
	}
	s.step(ctx, func() {
		if n.drain == nil {
			return
		}
		n.drain = nil
		n.lastDrain.Status, n.lastDrain.UpdatedAt = "complete", time.Now()
		n.modifyIndex = s.bump("nodes")
	})
}
