package nomadtest

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"
)

func (s *Server) routes() http.Handler {
	m := http.NewServeMux()
	h := func(pattern string, f http.HandlerFunc) { m.HandleFunc(pattern, f) }

	// Agent, status, catalogue.
	h("GET /v1/agent/self", s.plain(s.agentSelf))
	h("GET /v1/agent/members", s.plain(func(*http.Request) (any, error) { return template("members"), nil }))
	h("GET /v1/status/leader", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, "127.0.0.1:4647") })
	h("GET /v1/status/peers", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, []string{"127.0.0.1:4647"}) })
	h("GET /v1/regions", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, []string{s.opts.Region}) })
	h("GET /v1/namespaces", s.read([]string{"namespaces"}, s.namespaces))
	h("GET /v1/operator/scheduler/configuration", s.read([]string{"scheduler"}, s.schedulerConfig))

	// Nodes.
	h("GET /v1/nodes", s.read([]string{"nodes"}, s.nodeList))
	h("GET /v1/node/{id}", s.read([]string{"nodes"}, s.nodeGet))
	h("GET /v1/node/{id}/allocations", s.read([]string{"allocs"}, s.nodeAllocs))
	h("PUT /v1/node/{id}/drain", s.write(s.nodeDrain))
	h("POST /v1/node/{id}/drain", s.write(s.nodeDrain))
	h("PUT /v1/node/{id}/eligibility", s.write(s.nodeEligibility))
	h("POST /v1/node/{id}/eligibility", s.write(s.nodeEligibility))

	// Jobs.
	h("PUT /v1/jobs/parse", s.parse)
	h("POST /v1/jobs/parse", s.parse)
	h("GET /v1/jobs", s.read([]string{"jobs"}, s.jobList))
	h("PUT /v1/jobs", s.write(s.register))
	h("POST /v1/jobs", s.write(s.register))
	h("PUT /v1/validate/job", s.validate)
	h("POST /v1/validate/job", s.validate)
	h("GET /v1/job/{id}", s.read([]string{"jobs"}, s.jobGet))
	h("PUT /v1/job/{id}", s.write(s.register))
	h("POST /v1/job/{id}", s.write(s.register))
	h("DELETE /v1/job/{id}", s.write(s.deregister))
	h("PUT /v1/job/{id}/plan", s.plan)
	h("POST /v1/job/{id}/plan", s.plan)
	h("GET /v1/job/{id}/versions", s.read([]string{"jobs"}, s.jobVersions))
	h("GET /v1/job/{id}/submission", s.read([]string{"jobs"}, s.jobSubmission))
	h("GET /v1/job/{id}/summary", s.read([]string{"allocs", "jobs"}, s.jobSummary))
	h("GET /v1/job/{id}/allocations", s.read([]string{"allocs"}, s.jobAllocs))
	h("GET /v1/job/{id}/evaluations", s.read([]string{"evals"}, s.jobEvals))
	h("GET /v1/job/{id}/deployment", s.read([]string{"deployment"}, s.jobDeployment))
	h("GET /v1/job/{id}/deployments", s.read([]string{"deployment"}, s.jobDeployments))
	h("PUT /v1/job/{id}/revert", s.write(s.revert))
	h("POST /v1/job/{id}/revert", s.write(s.revert))

	// Evaluations, deployments, allocations.
	h("GET /v1/evaluations", s.read([]string{"evals"}, s.evalList))
	h("GET /v1/evaluation/{id}", s.read([]string{"evals"}, s.evalGet))
	h("GET /v1/deployment/{id}", s.read([]string{"deployment"}, s.deploymentGet))
	h("GET /v1/deployment/allocations/{id}", s.read([]string{"allocs"}, s.deploymentAllocs))
	h("GET /v1/allocation/{id}", s.read([]string{"allocs"}, s.allocGet))
	h("GET /v1/allocation/{id}/services", s.read([]string{"services"}, s.allocServices))
	h("GET /v1/client/allocation/{id}/checks", s.plain(s.allocChecks))
	h("PUT /v1/client/allocation/{id}/restart", s.write(s.allocRestart))
	h("POST /v1/client/allocation/{id}/restart", s.write(s.allocRestart))
	h("GET /v1/client/fs/logs/{id}", s.logs)
	h("GET /v1/client/fs/ls/{id}", s.fsList)
	h("GET /v1/client/fs/stat/{id}", s.fsStat)
	h("GET /v1/client/fs/cat/{id}", s.fsCat)

	// Services.
	h("GET /v1/services", s.read([]string{"services"}, s.serviceList))
	h("GET /v1/service/{name}", s.read([]string{"services"}, s.serviceGet))

	// Variables.
	h("GET /v1/vars", s.read([]string{"vars"}, s.varList))
	h("GET /v1/var/{path...}", s.read([]string{"vars"}, s.varGet))
	h("PUT /v1/var/{path...}", s.varPut)
	h("DELETE /v1/var/{path...}", s.varDelete)

	// CSI.
	h("GET /v1/plugins", s.read([]string{"csi_plugins"}, s.pluginList))
	h("GET /v1/plugin/csi/{id}", s.read([]string{"csi_plugins"}, s.pluginGet))
	h("GET /v1/volumes", s.read([]string{"csi_volumes"}, s.volumeList))
	h("GET /v1/volume/csi/{id}", s.read([]string{"csi_volumes"}, s.volumeGet))
	h("PUT /v1/volume/csi/{id}", s.write(s.volumeRegister))
	h("PUT /v1/volume/csi/{id}/create", s.write(s.volumeCreate))
	h("DELETE /v1/volume/csi/{id}", s.write(s.volumeDeregister))
	return s.middleware(m)
}

// plain serves agent-local answers: no index headers, as Nomad.
func (s *Server) plain(fn func(r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		body, err := fn(r)
		s.mu.Unlock()
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, body)
	}
}

// ---- agent ----

func (s *Server) agentSelf(*http.Request) (any, error) {
	t := template("agent-self").(map[string]any)
	cfg := t["config"].(map[string]any)
	cfg["Region"] = s.opts.Region
	if len(s.nodes) > 0 {
		cfg["Datacenter"] = s.nodes[0].dc
		cfg["NodeName"] = s.nodes[0].name
	}
	cfg["ACL"].(map[string]any)["Enabled"] = s.opts.Token != ""
	return t, nil
}

func (s *Server) namespaces(*http.Request) (any, error) {
	first := template("namespaces").([]any)[0].(map[string]any)
	out := []any{first}
	for _, n := range s.opts.Namespaces {
		c := deepCopy(first).(map[string]any)
		c["Name"], c["Description"] = n, ""
		out = append(out, c)
	}
	return out, nil
}

func (s *Server) schedulerConfig(*http.Request) (any, error) {
	return map[string]any{
		"SchedulerConfig": map[string]any{
			"SchedulerAlgorithm":            "binpack",
			"PreemptionConfig":              map[string]any{"SystemSchedulerEnabled": true, "SysBatchSchedulerEnabled": false, "BatchSchedulerEnabled": false, "ServiceSchedulerEnabled": false},
			"MemoryOversubscriptionEnabled": s.opts.MemoryOversubscription,
			"RejectJobRegistration":         false,
			"PauseEvalBroker":               false,
			"CreateIndex":                   5, "ModifyIndex": 5,
		},
		"Index": 5, "KnownLeader": true, "LastContact": 0, "NextToken": "",
	}, nil
}

// ---- nodes ----

func (s *Server) nodeByID(id string) *node {
	for _, n := range s.nodes {
		if n.id == id || (len(id) >= 4 && strings.HasPrefix(n.id, id)) {
			return n
		}
	}
	return nil
}

func (n *node) eligibility() string {
	if n.eligible && n.drain == nil {
		return "eligible"
	}
	return "ineligible"
}

func (s *Server) renderNode(n *node) map[string]any {
	t := template("node").(map[string]any)
	t["ID"], t["Name"], t["Datacenter"] = n.id, n.name, n.dc
	t["HTTPAddr"] = s.Addr()
	t["SchedulingEligibility"] = n.eligibility()
	t["Drain"] = n.drain != nil
	t["DrainStrategy"] = nil
	if n.drain != nil {
		t["DrainStrategy"] = shapedAt(n.drain, template("node-draining").(map[string]any)["DrainStrategy"], "")
	}
	t["LastDrain"] = nil
	if n.lastDrain != nil {
		t["LastDrain"] = shapedAt(n.lastDrain, template("node-draining").(map[string]any)["LastDrain"], "")
	}
	t["CreateIndex"], t["ModifyIndex"] = n.createIndex, n.modifyIndex
	attrs := t["Attributes"].(map[string]any)
	attrs["cpu.arch"] = n.arch
	attrs["unique.hostname"] = n.name
	return t
}

func (s *Server) nodeList(r *http.Request) (any, error) {
	first := template("nodes").([]any)[0].(map[string]any)
	var out []any
	for _, n := range s.nodes {
		full := s.renderNode(n)
		st := deepCopy(first).(map[string]any)
		for k := range st {
			if v, ok := full[k]; ok {
				st[k] = v
			}
		}
		st["Address"] = "127.0.0.1"
		// Like Nomad, ?os=true adds only the OS name to stubs; other
		// attributes (cpu.arch) need GET /v1/node/<id>.
		if r.URL.Query().Get("os") == "true" {
			st["Attributes"] = map[string]any{"os.name": full["Attributes"].(map[string]any)["os.name"]}
		}
		out = append(out, st)
	}
	return out, nil
}

func (s *Server) nodeGet(r *http.Request) (any, error) {
	n := s.nodeByID(r.PathValue("id"))
	if n == nil {
		return nil, errf(404, "node not found")
	}
	return s.renderNode(n), nil
}

func (s *Server) nodeAllocs(r *http.Request) (any, error) {
	n := s.nodeByID(r.PathValue("id"))
	out := []any{}
	if n == nil {
		return out, nil
	}
	for _, id := range s.allocOrd {
		if ar := s.allocs[id]; ar.a.NodeID == n.id {
			out = append(out, s.renderAlloc(ar))
		}
	}
	return out, nil
}

// ---- jobs ----

func (s *Server) parse(w http.ResponseWriter, r *http.Request) {
	var req api.JobsParseRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	job, err := ParseJobHCL(req.JobHCL)
	if err != nil {
		writeError(w, errf(400, "Failed to parse job: %v", err))
		return
	}
	if req.Canonicalize {
		job.Canonicalize()
		if job.Region != nil && *job.Region == "global" && s.opts.Region != "global" {
			job.Region = ptr(s.opts.Region)
		}
	}
	writeJSON(w, 200, shaped(job, "parse"))
}

func (s *Server) jobRec(r *http.Request) (*jobRec, bool) {
	jr, ok := s.jobs[ns(r)+"/"+r.PathValue("id")]
	if !ok || jr.purged {
		return nil, false
	}
	return jr, true
}

// status derives the job status from its allocations, as Nomad does.
func (s *Server) jobStatus(jr *jobRec) string {
	j := jr.cur()
	if j.Stop != nil && *j.Stop {
		for _, id := range s.allocOrd {
			if a := s.allocs[id].a; a.JobID == *j.ID && !terminal(a) {
				return "running"
			}
		}
		return "dead"
	}
	status := "pending"
	anyAlloc := false
	for _, id := range s.allocOrd {
		a := s.allocs[id].a
		if a.JobID != *j.ID || a.Namespace != *j.Namespace {
			continue
		}
		anyAlloc = true
		if !terminal(a) {
			return "running"
		}
	}
	for _, id := range s.evalOrder {
		e := s.evals[id]
		if e.JobID == *j.ID && (e.Status == "pending" || e.Status == "blocked") {
			return "pending"
		}
	}
	if anyAlloc {
		status = "dead"
	}
	return status
}

func terminal(a *api.Allocation) bool {
	switch a.ClientStatus {
	case "complete", "failed", "lost":
		return true
	}
	return false
}

func (s *Server) renderJob(jr *jobRec, j *api.Job) map[string]any {
	m := shaped(j, "job").(map[string]any)
	if j == jr.cur() {
		m["Status"] = s.jobStatus(jr)
	} else {
		m["Status"] = "dead"
	}
	return m
}

func (s *Server) jobList(r *http.Request) (any, error) {
	first := template("job-stubs").([]any)[0].(map[string]any)
	out := []any{}
	keys := make([]string, 0, len(s.jobs))
	for k, jr := range s.jobs {
		if !jr.purged {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	prefix := r.URL.Query().Get("prefix")
	for _, k := range keys {
		jr := s.jobs[k]
		j := jr.cur()
		if !strings.HasPrefix(*j.ID, prefix) {
			continue
		}
		st := deepCopy(first).(map[string]any)
		full := s.renderJob(jr, j)
		for key := range st {
			if v, ok := full[key]; ok {
				st[key] = v
			}
		}
		st["JobSummary"] = s.summary(jr)
		out = append(out, st)
	}
	return out, nil
}

func (s *Server) jobGet(r *http.Request) (any, error) {
	jr, ok := s.jobRec(r)
	if !ok {
		return nil, errf(404, "job not found")
	}
	return s.renderJob(jr, jr.cur()), nil
}

func (s *Server) jobVersions(r *http.Request) (any, error) {
	jr, ok := s.jobRec(r)
	if !ok {
		return nil, errf(404, "job versions not found")
	}
	var vs []any
	for i := len(jr.versions) - 1; i >= 0; i-- {
		vs = append(vs, s.renderJob(jr, jr.versions[i]))
	}
	var diffs any
	if r.URL.Query().Get("diffs") == "true" {
		diffs = []any{}
		for i := len(jr.versions) - 1; i > 0; i-- {
			diffs = append(diffs.([]any), map[string]any{"Type": "Edited", "ID": *jr.cur().ID, "Fields": nil, "Objects": nil, "TaskGroups": []any{}})
		}
	}
	return map[string]any{"Versions": vs, "Diffs": diffs, "Index": s.tables["jobs"], "KnownLeader": false, "LastContact": 0, "NextToken": ""}, nil
}

func (s *Server) jobSubmission(r *http.Request) (any, error) {
	jr, ok := s.jobRec(r)
	if !ok {
		return nil, errf(404, "job source not found")
	}
	v := *jr.cur().Version
	if q := r.URL.Query().Get("version"); q != "" {
		n, _ := strconv.ParseUint(q, 10, 64)
		v = n
	}
	sub, ok := jr.submissions[v]
	if !ok {
		return nil, errf(404, "job source not found")
	}
	return sub, nil
}

func (s *Server) summary(jr *jobRec) map[string]any {
	j := jr.cur()
	t := template("summary").(map[string]any)
	first := t["Summary"].(map[string]any)["web"]
	sum := map[string]any{}
	for _, tg := range j.TaskGroups {
		c := map[string]int{}
		for _, id := range s.allocOrd {
			a := s.allocs[id].a
			if a.JobID != *j.ID || a.TaskGroup != *tg.Name {
				continue
			}
			switch a.ClientStatus {
			case "pending":
				c["Starting"]++
			case "running":
				c["Running"]++
			case "complete":
				c["Complete"]++
			case "failed":
				c["Failed"]++
			case "lost":
				c["Lost"]++
			}
		}
		sum[*tg.Name] = shapedAt(c, first, "")
		for _, k := range []string{"Queued", "Complete", "Failed", "Running", "Starting", "Lost", "Unknown"} {
			sum[*tg.Name].(map[string]any)[k] = c[k]
		}
	}
	t["Summary"] = sum
	t["JobID"], t["Namespace"] = *j.ID, *j.Namespace
	t["CreateIndex"], t["ModifyIndex"] = *j.CreateIndex, s.tables["allocs"]
	return t
}

func (s *Server) jobSummary(r *http.Request) (any, error) {
	jr, ok := s.jobs[ns(r)+"/"+r.PathValue("id")]
	if !ok {
		return nil, errf(404, "job not found")
	}
	return s.summary(jr), nil
}

func (s *Server) jobAllocs(r *http.Request) (any, error) {
	out := []any{}
	first := template("alloc-stubs").([]any)[0]
	all := r.URL.Query().Get("all") == "true"
	for i := len(s.allocOrd) - 1; i >= 0; i-- {
		ar := s.allocs[s.allocOrd[i]]
		if ar.a.JobID != r.PathValue("id") || ar.a.Namespace != ns(r) {
			continue
		}
		_ = all // Nomad lists allocations of earlier job instances only with all=true; the double keeps one instance.
		out = append(out, conform(s.renderAlloc(ar), first, ""))
	}
	return out, nil
}

func (s *Server) jobEvals(r *http.Request) (any, error) {
	out := []any{}
	for i := len(s.evalOrder) - 1; i >= 0; i-- {
		e := s.evals[s.evalOrder[i]]
		if e.JobID == r.PathValue("id") && e.Namespace == ns(r) {
			out = append(out, renderEval(e))
		}
	}
	return out, nil
}

func (s *Server) latestDeployment(jobID, namespace string) *api.Deployment {
	for i := len(s.depOrder) - 1; i >= 0; i-- {
		d := s.deps[s.depOrder[i]]
		if d.JobID == jobID && d.Namespace == namespace {
			return d
		}
	}
	return nil
}

func (s *Server) jobDeployment(r *http.Request) (any, error) {
	d := s.latestDeployment(r.PathValue("id"), ns(r))
	if d == nil {
		return nil, nil
	}
	return shaped(d, "deployment"), nil
}

func (s *Server) jobDeployments(r *http.Request) (any, error) {
	out := []any{}
	for i := len(s.depOrder) - 1; i >= 0; i-- {
		d := s.deps[s.depOrder[i]]
		if d.JobID == r.PathValue("id") && d.Namespace == ns(r) {
			out = append(out, shaped(d, "deployment"))
		}
	}
	return out, nil
}

func (s *Server) validate(w http.ResponseWriter, r *http.Request) {
	var req api.JobValidateRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	t := template("validate").(map[string]any)
	if errs := validationErrors(req.Job); len(errs) > 0 {
		t["Error"] = multiErr(errs)
		t["ValidationErrors"] = errs
	}
	writeJSON(w, 200, t)
}

func (s *Server) plan(w http.ResponseWriter, r *http.Request) {
	var req api.JobPlanRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Job == nil {
		writeError(w, errf(400, "Job must be specified"))
		return
	}
	if err := validateJob(req.Job); err != nil {
		writeError(w, errf(500, "%v", err))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := template("plan").(map[string]any)
	place := map[string]any{}
	first := t["Annotations"].(map[string]any)["DesiredTGUpdates"].(map[string]any)["web"]
	for _, tg := range req.Job.TaskGroups {
		u := deepCopy(first).(map[string]any)
		u["Place"] = 1
		place[*tg.Name] = u
	}
	t["Annotations"].(map[string]any)["DesiredTGUpdates"] = place
	t["JobModifyIndex"] = 0
	diffType := "Added"
	req.Job.Canonicalize()
	if jr, ok := s.jobs[ns(r)+"/"+*req.Job.ID]; ok && !jr.purged {
		t["JobModifyIndex"] = *jr.cur().JobModifyIndex
		diffType = "Edited"
		if sameSpec(jr.cur(), req.Job) {
			diffType = "None"
		}
	}
	if d, ok := t["Diff"].(map[string]any); ok {
		d["Type"] = diffType
	}
	t["Index"] = s.index
	if !req.Diff {
		t["Diff"] = nil
	}
	w.Header().Set("X-Nomad-Index", strconv.FormatUint(s.index, 10))
	writeJSON(w, 200, t)
}

// validateJob is the part of Nomad's job validation the double enforces,
// with Nomad's (go-multierror formatted) messages.
func validateJob(j *api.Job) error {
	if errs := validationErrors(j); len(errs) > 0 {
		return errors.New(multiErr(errs))
	}
	return nil
}

func validationErrors(j *api.Job) []string {
	var errs []string
	for _, tg := range j.TaskGroups {
		name := ""
		if tg.Name != nil {
			name = *tg.Name
		}
		var tgErrs []string
		if tg.Count != nil && *tg.Count < 0 {
			tgErrs = append(tgErrs, "Task group count can't be negative")
		}
		for _, t := range tg.Tasks {
			if t.Driver == "" {
				tgErrs = append(tgErrs, fmt.Sprintf("Task %s validation failed: %s", t.Name, multiErr([]string{"Missing task driver"})))
			}
		}
		if len(tgErrs) > 0 {
			errs = append(errs, fmt.Sprintf("Task group %s validation failed: %s", name, multiErr(tgErrs)))
		}
	}
	return errs
}

// multiErr formats like hashicorp/go-multierror's ListFormatFunc.
func multiErr(errs []string) string {
	if len(errs) == 1 {
		return fmt.Sprintf("1 error occurred:\n\t* %s\n\n", errs[0])
	}
	points := make([]string, len(errs))
	for i, e := range errs {
		points[i] = "* " + e
	}
	return fmt.Sprintf("%d errors occurred:\n\t%s\n\n", len(errs), strings.Join(points, "\n\t"))
}

// register stores a new job version (PUT /v1/jobs), enforcing the
// check-and-set index as Nomad does, and starts its rollout.
func (s *Server) register(r *http.Request) (any, error) {
	var req api.JobRegisterRequest
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, errf(400, "%v", err)
	}
	if err := json.Unmarshal(body, &req); err != nil {
		if strings.Contains(err.Error(), "unexpected end") {
			return nil, errf(400, "unexpected EOF")
		}
		return nil, errf(400, "%v", err)
	}
	if req.Job == nil {
		return nil, errf(400, "Job must be specified")
	}
	job := req.Job
	job.Canonicalize()
	if err := validateJob(job); err != nil {
		return nil, errf(500, "%v", err)
	}
	key := *job.Namespace + "/" + *job.ID
	jr, exists := s.jobs[key]
	if exists && jr.purged {
		exists = false
	}
	if req.EnforceIndex {
		switch {
		case exists && req.JobModifyIndex == 0:
			return nil, errf(500, "Enforcing job modify index 0: job already exists")
		case exists && req.JobModifyIndex != *jr.cur().JobModifyIndex:
			return nil, errf(500, "Enforcing job modify index %d: job exists with conflicting job modify index: %d", req.JobModifyIndex, *jr.cur().JobModifyIndex)
		case !exists && req.JobModifyIndex != 0:
			return nil, errf(500, "Enforcing job modify index %d: job does not exist", req.JobModifyIndex)
		}
	}
	if exists && !*jr.cur().Stop && sameSpec(jr.cur(), job) {
		// As Nomad: an unchanged spec makes no new version and no
		// deployment; only an evaluation.
		cur := jr.cur()
		e := s.newEval(cur, "job-register", "complete")
		return withMeta(template("register"), map[string]any{
			"EvalID": e.ID, "EvalCreateIndex": e.CreateIndex, "JobModifyIndex": *cur.JobModifyIndex, "Index": s.index, "Warnings": "",
		}), nil
	}
	idx := s.bump("jobs")
	if !exists {
		var history []*api.Job
		if prev, ok := s.jobs[key]; ok {
			history = append(prev.history, prev.versions...)
		}
		jr = &jobRec{submissions: map[uint64]*api.JobSubmission{}, behaviors: map[uint64]Behavior{}, history: history}
		s.jobs[key] = jr
		job.CreateIndex = ptr(idx)
		job.Version = ptr(uint64(0))
	} else {
		prev := jr.cur()
		job.CreateIndex = prev.CreateIndex
		job.Version = ptr(*prev.Version + 1)
	}
	job.ModifyIndex, job.JobModifyIndex = ptr(idx), ptr(idx)
	job.SubmitTime = ptr(now())
	job.Stable = ptr(false)
	job.Status = ptr("pending")
	job.Stop = ptr(false)
	jr.versions = append(jr.versions, job)
	jr.behaviors[*job.Version] = s.behaviors[*job.ID]
	if req.Submission != nil {
		jr.submissions[*job.Version] = req.Submission
	}
	e := s.newEval(job, "job-register", "pending")
	s.startRollout(jr, job, e)
	return withMeta(template("register"), map[string]any{
		"EvalID": e.ID, "EvalCreateIndex": e.CreateIndex, "JobModifyIndex": idx, "Index": idx, "Warnings": "",
	}), nil
}

func withMeta(t any, kv map[string]any) any {
	m := t.(map[string]any)
	for k, v := range kv {
		m[k] = v
	}
	return m
}

func (s *Server) deregister(r *http.Request) (any, error) {
	key := ns(r) + "/" + r.PathValue("id")
	jr, ok := s.jobs[key]
	if !ok || jr.purged {
		return withMeta(template("deregister"), map[string]any{"EvalID": "", "EvalCreateIndex": 0, "JobModifyIndex": 0, "Index": 0}), nil
	}
	if jr.cancel != nil {
		jr.cancel()
	}
	purge := r.URL.Query().Get("purge") == "true"
	idx := s.bump("jobs")
	cur := jr.cur()
	if purge {
		jr.purged = true
	} else if cur.Stop == nil || !*cur.Stop {
		stopped := cloneJob(cur)
		stopped.Stop = ptr(true)
		stopped.Version = ptr(*cur.Version + 1)
		stopped.Stable = ptr(false)
		stopped.ModifyIndex, stopped.JobModifyIndex = ptr(idx), ptr(idx)
		jr.versions = append(jr.versions, stopped)
		jr.behaviors[*stopped.Version] = jr.behaviors[*cur.Version]
	}
	e := s.newEval(cur, "job-deregister", "complete")
	for _, id := range s.allocOrd {
		ar := s.allocs[id]
		if ar.a.JobID == *cur.ID && ar.a.Namespace == *cur.Namespace && !terminal(ar.a) {
			ar.a.DesiredStatus, ar.a.DesiredDescription = "stop", "alloc not needed due to job update"
			s.finishAlloc(ar, "complete", "All tasks have completed")
		}
	}
	s.bump("allocs", "services")
	return withMeta(template("deregister"), map[string]any{"EvalID": e.ID, "EvalCreateIndex": e.CreateIndex, "JobModifyIndex": idx, "Index": idx}), nil
}

func cloneJob(j *api.Job) *api.Job {
	var c api.Job
	b, _ := json.Marshal(j)
	json.Unmarshal(b, &c)
	return &c
}

func (s *Server) revert(r *http.Request) (any, error) {
	var req api.JobRevertRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	jr, ok := s.jobRec(r)
	if !ok {
		return nil, errf(404, "job not found")
	}
	if req.EnforcePriorVersion != nil && *req.EnforcePriorVersion != *jr.cur().Version {
		return nil, errf(500, "Current job has version %d; enforcing version %d", *jr.cur().Version, *req.EnforcePriorVersion)
	}
	if req.JobVersion >= uint64(len(jr.versions)) {
		return nil, errf(500, "job %q in namespace %q at version %d not found", *jr.cur().ID, *jr.cur().Namespace, req.JobVersion)
	}
	if req.JobVersion == *jr.cur().Version {
		return nil, errf(500, "can't revert to current version")
	}
	e := s.revertTo(jr, req.JobVersion, false)
	return withMeta(template("register"), map[string]any{"EvalID": e.ID, "EvalCreateIndex": e.CreateIndex, "JobModifyIndex": *jr.cur().JobModifyIndex, "Index": s.index}), nil
}

// revertTo registers a copy of version v as a new version and rolls it out.
func (s *Server) revertTo(jr *jobRec, v uint64, stable bool) *api.Evaluation {
	if jr.cancel != nil {
		jr.cancel()
	}
	old := jr.versions[v]
	idx := s.bump("jobs")
	j := cloneJob(old)
	j.Version = ptr(*jr.cur().Version + 1)
	j.ModifyIndex, j.JobModifyIndex = ptr(idx), ptr(idx)
	j.Stable = ptr(stable)
	j.Stop = ptr(false)
	jr.versions = append(jr.versions, j)
	jr.behaviors[*j.Version] = jr.behaviors[v]
	if sub, ok := jr.submissions[v]; ok {
		jr.submissions[*j.Version] = sub
	}
	e := s.newEval(j, "job-register", "pending")
	s.startRollout(jr, j, e)
	return e
}

// ---- evaluations ----

func (s *Server) newEval(j *api.Job, trigger, status string) *api.Evaluation {
	idx := s.bump("evals")
	e := &api.Evaluation{
		ID: newID(), Namespace: *j.Namespace, Priority: *j.Priority, Type: *j.Type, TriggeredBy: trigger,
		JobID: *j.ID, JobModifyIndex: *j.JobModifyIndex, Status: status,
		CreateIndex: idx, ModifyIndex: idx, CreateTime: now(), ModifyTime: now(),
	}
	s.evals[e.ID] = e
	s.evalOrder = append(s.evalOrder, e.ID)
	return e
}

func renderEval(e *api.Evaluation) any {
	m := shaped(e, "eval").(map[string]any)
	if e.WaitUntil.IsZero() {
		m["WaitUntil"] = nil
	}
	if e.FailedTGAllocs == nil {
		m["FailedTGAllocs"] = nil
	}
	return m
}

func (s *Server) evalList(r *http.Request) (any, error) {
	out := []any{}
	q := r.URL.Query()
	for _, id := range s.evalOrder {
		e := s.evals[id]
		if (q.Get("job") == "" || e.JobID == q.Get("job")) && (q.Get("status") == "" || e.Status == q.Get("status")) {
			out = append(out, renderEval(e))
		}
	}
	return out, nil
}

func (s *Server) evalGet(r *http.Request) (any, error) {
	e, ok := s.evals[r.PathValue("id")]
	if !ok {
		return nil, errf(404, "eval not found")
	}
	return renderEval(e), nil
}

func (s *Server) deploymentGet(r *http.Request) (any, error) {
	d, ok := s.deps[r.PathValue("id")]
	if !ok {
		return nil, errf(404, "deployment not found")
	}
	return shaped(d, "deployment"), nil
}

// ---- allocations ----

func (s *Server) renderAlloc(ar *allocRec) map[string]any {
	m := shaped(ar.a, "alloc").(map[string]any)
	m["JobVersion"] = ar.version
	m["JobType"] = *ar.a.Job.Type
	return m
}

func (s *Server) allocByID(id string) *allocRec {
	if ar, ok := s.allocs[id]; ok {
		return ar
	}
	if len(id) >= 8 {
		for k, ar := range s.allocs {
			if strings.HasPrefix(k, id) {
				return ar
			}
		}
	}
	return nil
}

func (s *Server) allocGet(r *http.Request) (any, error) {
	ar := s.allocByID(r.PathValue("id"))
	if ar == nil {
		return nil, errf(404, "alloc not found")
	}
	return s.renderAlloc(ar), nil
}

func (s *Server) allocChecks(r *http.Request) (any, error) {
	ar := s.allocByID(r.PathValue("id"))
	if ar == nil {
		return nil, errf(404, "alloc not found")
	}
	out := map[string]any{}
	if ar.checks == "" || terminal(ar.a) {
		return out, nil
	}
	for _, tg := range ar.a.Job.TaskGroups {
		if *tg.Name != ar.a.TaskGroup {
			continue
		}
		for _, svc := range tg.Services {
			for _, c := range svc.Checks {
				sum := md5.Sum([]byte(ar.a.ID + svc.Name + c.Name))
				id := hex.EncodeToString(sum[:])
				out[id] = map[string]any{
					"Check": fmt.Sprintf("service: %q check", svc.Name), "Group": ar.a.Name, "ID": id,
					"Mode": "healthiness", "Output": checkOutput(ar.checks, ar.port), "Service": svc.Name,
					"Status": ar.checks, "StatusCode": checkCode(ar.checks), "Timestamp": time.Now().Unix(),
				}
			}
		}
	}
	return out, nil
}

func checkOutput(status string, port int) string {
	switch status {
	case "success":
		return "nomad: http ok"
	case "failure":
		return fmt.Sprintf("dial tcp 127.0.0.1:%d: connect: connection refused", port)
	}
	return "nomad: waiting to run"
}

func checkCode(status string) int {
	if status == "success" {
		return 200
	}
	return 0
}

func (s *Server) allocRestart(r *http.Request) (any, error) {
	ar := s.allocByID(r.PathValue("id"))
	if ar == nil {
		return nil, errf(404, "Unknown allocation")
	}
	if terminal(ar.a) {
		return nil, errf(500, "Task not running")
	}
	var req api.AllocationRestartRequest
	json.NewDecoder(r.Body).Decode(&req)
	for name, ts := range ar.a.TaskStates {
		if (req.TaskName != "" && name != req.TaskName) || ts.State != "running" {
			continue
		}
		ts.Restarts++
		ts.LastRestart = time.Now()
		ts.Events = append(ts.Events,
			event("Restart Signaled", "User requested task to restart", nil),
			event("Terminated", "Exit Code: 0", nil),
			event("Restarting", "Task restarting in 0s", func(e *api.TaskEvent) { e.RestartReason = "User requested restart" }),
			event("Started", "Task started by client", nil))
	}
	s.touchAlloc(ar)
	return map[string]any{}, nil
}

// ---- logs and fs ----

func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	ar := s.allocByID(r.PathValue("id"))
	if ar == nil {
		s.mu.Unlock()
		writeError(w, errf(404, "Unknown allocation %q", r.PathValue("id")))
		return
	}
	task, typ := q.Get("task"), q.Get("type")
	ts, ok := ar.a.TaskStates[task]
	if !ok {
		s.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(400)
		fmt.Fprintf(w, "unknown task name %q", task)
		return
	}
	if typ != "stdout" && typ != "stderr" {
		s.mu.Unlock()
		writeError(w, errf(400, "must provide a valid log type (stdout or stderr)"))
		return
	}
	if ts.StartedAt.IsZero() && ts.State != "running" && !hasEvent(ts, "Started") {
		s.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(404)
		fmt.Fprintf(w, "task %q not started yet. No logs available", task)
		return
	}
	data := append([]byte(nil), ar.logs[task][typ]...)
	s.mu.Unlock()
	if off, _ := strconv.ParseInt(q.Get("offset"), 10, 64); off > 0 {
		if q.Get("origin") == "end" {
			if off < int64(len(data)) {
				data = data[int64(len(data))-off:]
			}
		} else if off < int64(len(data)) {
			data = data[off:]
		} else {
			data = nil
		}
	}
	if q.Get("plain") == "true" {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(200)
		w.Write(data)
		return
	}
	// The framed stream the api client decodes: concatenated StreamFrame
	// objects, at most 64 KiB of data each.
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	file := fmt.Sprintf("alloc/logs/%s.%s.0", task, typ)
	enc := json.NewEncoder(w)
	var offset int
	for len(data) > 0 {
		n := min(len(data), 64<<10)
		offset += n
		enc.Encode(map[string]any{"Data": base64.StdEncoding.EncodeToString(data[:n]), "File": file, "Offset": offset})
		data = data[n:]
	}
	if q.Get("follow") == "true" {
		// The double's logs are complete when served: end the stream
		// with a heartbeat frame rather than holding it open.
		enc.Encode(map[string]any{})
	}
}

func hasEvent(ts *api.TaskState, typ string) bool {
	for _, e := range ts.Events {
		if e.Type == typ {
			return true
		}
	}
	return false
}

// allocFiles lists an allocation's files: task logs under alloc/logs and
// what batch tasks wrote (BatchResult.Files), by path in the alloc dir.
func allocFiles(ar *allocRec) map[string][]byte {
	files := map[string][]byte{}
	for task, streams := range ar.logs {
		for typ, b := range streams {
			files["alloc/logs/"+task+"."+typ+".0"] = b
		}
	}
	for p, b := range ar.files {
		files[p] = []byte(b)
	}
	return files
}

func (s *Server) fsEntry(name string, size int, dir bool) map[string]any {
	e := template("fs-stat").(map[string]any)
	e["Name"], e["Size"], e["IsDir"] = name, size, dir
	e["FileMode"] = "-rw-r--r--"
	if dir {
		e["FileMode"] = "drwxrwxrwx"
	}
	e["ModTime"] = time.Now().UTC().Format(time.RFC3339Nano)
	e["ContentType"] = "text/plain; charset=utf-8"
	if strings.HasSuffix(name, ".json") {
		e["ContentType"] = "application/json"
	}
	return e
}

func (s *Server) fsList(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar := s.allocByID(r.PathValue("id"))
	if ar == nil {
		writeError(w, errf(404, "Unknown allocation"))
		return
	}
	dir := strings.Trim(r.URL.Query().Get("path"), "/")
	seen := map[string]bool{}
	out := []any{}
	paths := []string{}
	files := allocFiles(ar)
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		rest, ok := strings.CutPrefix(p, dir+"/")
		if !ok || dir == "" {
			rest, ok = p, dir == ""
		}
		if !ok {
			continue
		}
		name, _, isDir := strings.Cut(rest, "/")
		if seen[name] {
			continue
		}
		seen[name] = true
		e := s.fsEntry(name, len(files[p]), isDir)
		delete(e, "ContentType") // ls entries carry no content type
		out = append(out, e)
	}
	writeJSON(w, 200, out)
}

func (s *Server) fsStat(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar := s.allocByID(r.PathValue("id"))
	if ar == nil {
		writeError(w, errf(404, "Unknown allocation"))
		return
	}
	p := strings.Trim(r.URL.Query().Get("path"), "/")
	b, ok := allocFiles(ar)[p]
	if !ok {
		writeError(w, errf(404, "stat %s: no such file or directory", p))
		return
	}
	writeJSON(w, 200, s.fsEntry(p[strings.LastIndex(p, "/")+1:], len(b), false))
}

func (s *Server) fsCat(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ar := s.allocByID(r.PathValue("id"))
	if ar == nil {
		s.mu.Unlock()
		writeError(w, errf(404, "Unknown allocation"))
		return
	}
	p := strings.Trim(r.URL.Query().Get("path"), "/")
	b, ok := allocFiles(ar)[p]
	s.mu.Unlock()
	if !ok {
		writeError(w, errf(404, "stat %s: no such file or directory", p))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(200)
	w.Write(b)
}

// ---- services ----

func (s *Server) registrations(match func(*allocRec) bool) []any {
	first := template("service").([]any)[0].(map[string]any)
	out := []any{}
	for _, id := range s.allocOrd {
		ar := s.allocs[id]
		if !ar.service || !match(ar) {
			continue
		}
		for _, tg := range ar.a.Job.TaskGroups {
			if *tg.Name != ar.a.TaskGroup {
				continue
			}
			for _, svc := range tg.Services {
				r := deepCopy(first).(map[string]any)
				r["ID"] = fmt.Sprintf("_nomad-task-%s-group-%s-%s-%s", ar.a.ID, *tg.Name, svc.Name, svc.PortLabel)
				r["ServiceName"], r["AllocID"], r["JobID"], r["NodeID"] = svc.Name, ar.a.ID, ar.a.JobID, ar.a.NodeID
				r["Namespace"], r["Port"] = ar.a.Namespace, ar.port
				tags := []any{}
				for _, t := range svc.Tags {
					tags = append(tags, t)
				}
				r["Tags"] = tags
				r["CreateIndex"], r["ModifyIndex"] = ar.a.CreateIndex, ar.a.CreateIndex
				out = append(out, r)
			}
		}
	}
	return out
}

func (s *Server) serviceGet(r *http.Request) (any, error) {
	name := r.PathValue("name")
	var out []any
	for _, reg := range s.registrations(func(*allocRec) bool { return true }) {
		if reg.(map[string]any)["ServiceName"] == name {
			out = append(out, reg)
		}
	}
	if out == nil {
		out = []any{}
	}
	return out, nil
}

func (s *Server) serviceList(*http.Request) (any, error) {
	names := map[string]bool{}
	for _, reg := range s.registrations(func(*allocRec) bool { return true }) {
		names[reg.(map[string]any)["ServiceName"].(string)] = true
	}
	var svcs []any
	for n := range names {
		svcs = append(svcs, map[string]any{"ServiceName": n, "Tags": []any{}})
	}
	if svcs == nil {
		return []any{}, nil
	}
	return []any{map[string]any{"Namespace": "default", "Services": svcs}}, nil
}

func (s *Server) allocServices(r *http.Request) (any, error) {
	id := r.PathValue("id")
	return s.registrations(func(ar *allocRec) bool { return ar.a.ID == id }), nil
}

// ---- variables ----

func renderVar(v *api.Variable, withItems bool) map[string]any {
	m := shaped(v, "var").(map[string]any)
	if !withItems {
		delete(m, "Items")
	}
	return m
}

func (s *Server) varList(r *http.Request) (any, error) {
	prefix := r.URL.Query().Get("prefix")
	out := []any{}
	keys := make([]string, 0, len(s.vars))
	for k := range s.vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if v := s.vars[k]; strings.HasPrefix(v.Path, prefix) && v.Namespace == ns(r) {
			out = append(out, renderVar(v, false))
		}
	}
	return out, nil
}

func (s *Server) varGet(r *http.Request) (any, error) {
	v, ok := s.vars[ns(r)+"/"+r.PathValue("path")]
	if !ok {
		return nil, errf(404, "variable not found")
	}
	return renderVar(v, true), nil
}

// varConflict answers 409 with the current variable as the body, typed
// text/plain as Nomad does.
func varConflict(w http.ResponseWriter, idx uint64, v *api.Variable) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Nomad-Index", strconv.FormatUint(idx, 10))
	w.WriteHeader(http.StatusConflict)
	if v == nil {
		fmt.Fprint(w, "{}")
		return
	}
	b, _ := json.Marshal(renderVar(v, true))
	w.Write(b)
}

func (s *Server) varPut(w http.ResponseWriter, r *http.Request) {
	var in api.Variable
	if err := decodeBody(r, &in); err != nil {
		writeError(w, err)
		return
	}
	if len(in.Items) == 0 {
		writeError(w, errf(400, "variable missing required Items object"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := ns(r) + "/" + r.PathValue("path")
	cur := s.vars[key]
	if c := r.URL.Query().Get("cas"); c != "" {
		want, _ := strconv.ParseUint(c, 10, 64)
		if (cur == nil && want != 0) || (cur != nil && cur.ModifyIndex != want) {
			varConflict(w, s.index, cur)
			return
		}
	}
	idx := s.bump("vars")
	v := &api.Variable{Namespace: ns(r), Path: r.PathValue("path"), Items: in.Items, ModifyIndex: idx, ModifyTime: now()}
	if cur != nil {
		v.CreateIndex, v.CreateTime = cur.CreateIndex, cur.CreateTime
	} else {
		v.CreateIndex, v.CreateTime = idx, v.ModifyTime
	}
	s.vars[key] = v
	w.Header().Set("X-Nomad-Index", strconv.FormatUint(idx, 10))
	writeJSON(w, 200, renderVar(v, true))
}

func (s *Server) varDelete(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := ns(r) + "/" + r.PathValue("path")
	cur := s.vars[key]
	if c := r.URL.Query().Get("cas"); c != "" {
		want, _ := strconv.ParseUint(c, 10, 64)
		if (cur == nil && want != 0) || (cur != nil && cur.ModifyIndex != want) {
			varConflict(w, s.index, cur)
			return
		}
	}
	delete(s.vars, key)
	idx := s.bump("vars")
	w.Header().Set("X-Nomad-Index", strconv.FormatUint(idx, 10))
	w.WriteHeader(http.StatusNoContent)
}

// ---- CSI ----

func (s *Server) renderPlugin(p *Plugin) *api.CSIPlugin {
	return &api.CSIPlugin{
		ID: p.ID, Provider: p.ID, Version: "1.0.0", ControllerRequired: p.ControllersHealthy > 0,
		ControllersHealthy: p.ControllersHealthy, ControllersExpected: p.ControllersHealthy,
		NodesHealthy: p.NodesHealthy, NodesExpected: p.NodesExpected,
		CreateIndex: 5, ModifyIndex: 5,
	}
}

func (s *Server) pluginList(*http.Request) (any, error) {
	out := []any{}
	ids := make([]string, 0, len(s.plugins))
	for id := range s.plugins {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		p := s.renderPlugin(s.plugins[id])
		out = append(out, &api.CSIPluginListStub{ID: p.ID, Provider: p.Provider, ControllerRequired: p.ControllerRequired,
			ControllersHealthy: p.ControllersHealthy, ControllersExpected: p.ControllersExpected,
			NodesHealthy: p.NodesHealthy, NodesExpected: p.NodesExpected, CreateIndex: 5, ModifyIndex: 5})
	}
	return out, nil
}

func (s *Server) pluginGet(r *http.Request) (any, error) {
	p, ok := s.plugins[r.PathValue("id")]
	if !ok {
		return nil, errf(404, "plugin not found")
	}
	return s.renderPlugin(p), nil
}

func (s *Server) volumeList(r *http.Request) (any, error) {
	out := []any{}
	ids := make([]string, 0, len(s.volumes))
	for id := range s.volumes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		v := s.volumes[id]
		if p := r.URL.Query().Get("plugin_id"); p != "" && v.PluginID != p {
			continue
		}
		out = append(out, &api.CSIVolumeListStub{ID: v.ID, Namespace: v.Namespace, Name: v.Name, ExternalID: v.ExternalID,
			Schedulable: v.Schedulable, PluginID: v.PluginID, Provider: v.Provider,
			ControllersHealthy: v.ControllersHealthy, NodesHealthy: v.NodesHealthy, CreateIndex: v.CreateIndex, ModifyIndex: v.ModifyIndex})
	}
	return out, nil
}

func (s *Server) volumeGet(r *http.Request) (any, error) {
	v, ok := s.volumes[ns(r)+"/"+r.PathValue("id")]
	if !ok {
		return nil, errf(404, "volume not found")
	}
	return v, nil
}

func (s *Server) putVolumes(r *http.Request, create bool) (any, error) {
	var req api.CSIVolumeRegisterRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	var out []*api.CSIVolume
	for _, v := range req.Volumes {
		p, ok := s.plugins[v.PluginID]
		if !ok {
			return nil, errf(500, "no CSI plugin named: %s could be found", v.PluginID)
		}
		if v.Namespace == "" {
			v.Namespace = "default"
		}
		key := v.Namespace + "/" + v.ID
		if cur, ok := s.volumes[key]; ok && create {
			_ = cur
			return nil, errf(500, "volume %q already exists", v.ID)
		}
		idx := s.bump("csi_volumes")
		if create && v.ExternalID == "" {
			v.ExternalID = "ext-" + v.ID
			v.Capacity = v.RequestedCapacityMin
		}
		v.Provider, v.Schedulable = p.ID, p.NodesHealthy > 0
		v.ControllersHealthy, v.NodesHealthy, v.NodesExpected = p.ControllersHealthy, p.NodesHealthy, p.NodesExpected
		v.ControllerRequired = p.ControllersHealthy > 0
		v.CreateIndex, v.ModifyIndex = idx, idx
		if v.ReadAllocs == nil {
			v.ReadAllocs, v.WriteAllocs = map[string]*api.Allocation{}, map[string]*api.Allocation{}
		}
		s.volumes[key] = v
		out = append(out, v)
	}
	if create {
		return &api.CSIVolumeCreateResponse{Volumes: out}, nil
	}
	return map[string]any{"Warnings": "", "Index": s.index, "KnownLeader": false, "LastContact": 0, "NextToken": ""}, nil
}

func (s *Server) volumeRegister(r *http.Request) (any, error) { return s.putVolumes(r, false) }
func (s *Server) volumeCreate(r *http.Request) (any, error)   { return s.putVolumes(r, true) }

func (s *Server) volumeDeregister(r *http.Request) (any, error) {
	key := ns(r) + "/" + r.PathValue("id")
	if _, ok := s.volumes[key]; !ok {
		return nil, errf(404, "volume not found")
	}
	delete(s.volumes, key)
	s.bump("csi_volumes")
	return nil, nil
}

func (s *Server) deploymentAllocs(r *http.Request) (any, error) {
	out := []any{}
	first := template("alloc-stubs").([]any)[0]
	for _, id := range s.allocOrd {
		if ar := s.allocs[id]; ar.a.DeploymentID == r.PathValue("id") {
			out = append(out, conform(s.renderAlloc(ar), first, ""))
		}
	}
	return out, nil
}

// sameSpec compares what a user can change in a job: its groups and
// update, datacenters and meta.
func sameSpec(a, b *api.Job) bool {
	spec := func(j *api.Job) string {
		out, _ := json.Marshal([]any{j.TaskGroups, j.Datacenters, j.Meta, j.Update, j.Type})
		return string(out)
	}
	return spec(a) == spec(b)
}
