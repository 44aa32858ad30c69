// Package nomadtest is an in-memory test double of a Nomad v1.6 agent
// (server and client in one), speaking the HTTP API shapes recorded from a
// real agent in ../shared/nomad-api: status codes, JSON fields and types,
// X-Nomad-Index/KnownLeader/LastContact headers, text/plain error bodies,
// blocking queries, and the framed log stream of the client's fs API.
//
// Jobs run on simulated nodes. What happens to a job is scripted per job
// (Behavior): a healthy rollout, a main task that dies (the deployment fails
// and auto-reverts to the last stable version), or a prestart task that
// fails (the main task never starts). Batch jobs complete and their task
// output comes from a hook (OnBatch), which sees the Nomad Variables the
// task's templates read. Faults (status codes, delays) can be injected per
// path.
//
// The contract test in this package replays every recorded exchange against
// the double and checks status codes, keys and value types.
package nomadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// Options configure a Server. The zero value is one amd64 node "vm" in
// region "global", datacenter "dc1", namespace "default", no ACLs.
type Options struct {
	Region     string
	Namespaces []string // besides "default"
	Nodes      []Node

	// Token, when set, enables ACLs: requests whose X-Nomad-Token differs
	// get 403 "Permission denied".
	Token string

	// MemoryOversubscription is the scheduler configuration flag.
	MemoryOversubscription bool

	// Plugins are the CSI plugins the cluster runs.
	Plugins []Plugin

	// Step is the simulated time between two state changes of a rollout
	// (default 5ms). Deployments take a few dozen steps.
	Step time.Duration
}

// Node is a simulated client node.
type Node struct {
	Name       string
	Datacenter string // default: the first of "dc1"
	Arch       string // cpu.arch attribute: amd64, arm64
}

// Plugin is a CSI plugin and how many of its node plugins are healthy.
type Plugin struct {
	ID                 string
	NodesHealthy       int
	NodesExpected      int
	ControllersHealthy int
}

// Outcome is what happens when a service job version is deployed.
type Outcome int

const (
	// Healthy: prestart tasks exit 0, the main task and sidecars run,
	// the allocation becomes healthy and the deployment successful.
	Healthy Outcome = iota
	// MainFails: the main task exits 1, restarts once, fails; the
	// allocation is rescheduled Reschedules times, then the deployment
	// fails and the job reverts to its last stable version.
	MainFails
	// PrestartFails: the first prestart task exits 1 and the main task
	// never starts; then as MainFails.
	PrestartFails
)

// Behavior scripts one job.
type Behavior struct {
	Outcome Outcome
	// Reschedules is how many replacement allocations a failing
	// deployment places before it fails (the recording shows 2).
	Reschedules int
	// Stdout and Stderr are each task's log output, by task name. Tasks
	// without an entry print a line naming themselves.
	Stdout, Stderr map[string]string
}

// BatchRun is one run of a batch job's task.
type BatchRun struct {
	Job  *api.Job
	Task *api.Task
	// Files is what the task's templates render to, by destination, for
	// templates that read a Nomad Variable as
	// {{ with nomadVar "<path>" }}{{ index . "<key>" }}{{ end }}.
	Files map[string]string
}

// BatchResult is what a batch task printed and how it ended.
type BatchResult struct {
	Stdout, Stderr string
	ExitCode       int
	// Files the task wrote, by path in the allocation dir
	// ("alloc/data/config.json"), served by the client fs API.
	Files map[string]string
}

// Fault is an injected failure: requests matching Method (empty: any) and
// whose path starts with Path wait Delay, then, when Status is set, get
// Status with Body instead of the real answer. Times limits how many
// requests it hits (0: all).
type Fault struct {
	Method string
	Path   string
	Status int
	Body   string
	Delay  time.Duration
	Times  int
}

// Server is the double. Create it with New; it is closed by t.Cleanup.
type Server struct {
	URL string // http://127.0.0.1:port

	opts Options
	hs   *httptest.Server
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu        sync.Mutex
	index     uint64
	tables    map[string]uint64
	changed   chan struct{}
	nodes     []*node
	jobs      map[string]*jobRec // namespace/id
	evals     map[string]*api.Evaluation
	evalOrder []string
	deps      map[string]*api.Deployment
	depOrder  []string
	allocs    map[string]*allocRec
	allocOrd  []string
	vars      map[string]*api.Variable // namespace/path
	plugins   map[string]*Plugin
	volumes   map[string]*api.CSIVolume
	behaviors map[string]Behavior
	batch     func(BatchRun) BatchResult
	faults    []*fault
	requests  []string
}

type node struct {
	id, name, dc, arch string
	eligible           bool
	drain              *api.DrainStrategy
	lastDrain          *api.DrainMetadata
	createIndex        uint64
	modifyIndex        uint64
}

type jobRec struct {
	versions    []*api.Job // by version
	history     []*api.Job // versions of earlier, purged instances
	submissions map[uint64]*api.JobSubmission
	behaviors   map[uint64]Behavior // what each version does when rolled out
	cancel      context.CancelFunc  // the running rollout
	purged      bool
}

func (j *jobRec) cur() *api.Job { return j.versions[len(j.versions)-1] }

type allocRec struct {
	a       *api.Allocation
	version uint64
	logs    map[string]map[string][]byte // task -> stdout|stderr -> bytes
	files   map[string]string            // files batch tasks wrote, by path in the alloc dir
	checks  string                       // pending, failure, success
	service bool                         // registered as a service
	port    int
}

// New starts a double on loopback; it stops when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	s := Start(opts)
	t.Cleanup(s.Close)
	return s
}

// Start starts a double on loopback; the caller must Close it.
func Start(opts Options) *Server {
	if opts.Region == "" {
		opts.Region = "global"
	}
	if len(opts.Nodes) == 0 {
		opts.Nodes = []Node{{Name: "vm", Arch: "amd64"}}
	}
	if opts.Step == 0 {
		opts.Step = 5 * time.Millisecond
	}
	s := &Server{
		opts:      opts,
		tables:    map[string]uint64{},
		changed:   make(chan struct{}),
		jobs:      map[string]*jobRec{},
		evals:     map[string]*api.Evaluation{},
		deps:      map[string]*api.Deployment{},
		allocs:    map[string]*allocRec{},
		vars:      map[string]*api.Variable{},
		plugins:   map[string]*Plugin{},
		volumes:   map[string]*api.CSIVolume{},
		behaviors: map[string]Behavior{},
		index:     10,
	}
	s.ctx, s.stop = context.WithCancel(context.Background())
	for i := range opts.Plugins {
		p := opts.Plugins[i]
		s.plugins[p.ID] = &p
	}
	for i, n := range opts.Nodes {
		if n.Datacenter == "" {
			n.Datacenter = "dc1"
		}
		if n.Arch == "" {
			n.Arch = "amd64"
		}
		s.nodes = append(s.nodes, &node{
			id: fmt.Sprintf("%08d-0000-4000-8000-%012d", i+1, i+1), name: n.Name, dc: n.Datacenter,
			arch: n.Arch, eligible: true, createIndex: 7, modifyIndex: 9,
		})
	}
	s.hs = httptest.NewServer(s.routes())
	s.URL = s.hs.URL
	return s
}

// Close stops the simulation and the HTTP server.
func (s *Server) Close() {
	s.stop()
	s.hs.CloseClientConnections()
	s.hs.Close()
	s.wg.Wait()
}

// Addr is host:port of the double, as advertised in nodes' HTTPAddr.
func (s *Server) Addr() string { return strings.TrimPrefix(s.URL, "http://") }

// Script sets what the job versions registered from now on do when
// rolled out. A revert rolls out the reverted-to version's behavior.
func (s *Server) Script(jobID string, b Behavior) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.behaviors[jobID] = b
}

// OnBatch sets the hook that runs batch tasks. Without one, a batch task
// prints nothing and exits 0.
func (s *Server) OnBatch(f func(BatchRun) BatchResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batch = f
}

type fault struct {
	Fault
	hits int
}

// Inject adds a fault. The first matching fault applies.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{Fault: f})
}

// Job returns the stored current version of a job (in namespace
// "default" unless ns is given), as registered, and its submission.
func (s *Server) Job(id string, ns ...string) (*api.Job, *api.JobSubmission, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := "default"
	if len(ns) > 0 {
		n = ns[0]
	}
	jr, ok := s.jobs[n+"/"+id]
	if !ok || jr.purged {
		return nil, nil, false
	}
	j := jr.cur()
	return j, jr.submissions[*j.Version], true
}

// JobVersions returns every version ever registered for a job, purged or
// not, oldest first: what the cluster was told, for tests that inspect it.
func (s *Server) JobVersions(id string) []*api.Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	jr, ok := s.jobs["default/"+id]
	if !ok {
		return nil
	}
	return append(append([]*api.Job(nil), jr.history...), jr.versions...)
}

// Variable returns a stored Nomad Variable.
func (s *Server) Variable(path string) (*api.Variable, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vars["default/"+path]
	return v, ok
}

// Requests lists "METHOD /path?query" of every request served, in order.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// NodeIDs lists the simulated nodes' IDs in the order of Options.Nodes.
func (s *Server) NodeIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, n := range s.nodes {
		ids = append(ids, n.id)
	}
	return ids
}

// bump records a change to the given tables and wakes blocking queries.
// Callers hold s.mu.
func (s *Server) bump(tables ...string) uint64 {
	s.index++
	for _, t := range tables {
		s.tables[t] = s.index
	}
	close(s.changed)
	s.changed = make(chan struct{})
	return s.index
}

func (s *Server) tableIndex(tables []string) uint64 {
	var max uint64
	for _, t := range tables {
		if s.tables[t] > max {
			max = s.tables[t]
		}
	}
	return max
}

// httpError is an error answer: text/plain body, as Nomad sends.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func errf(code int, format string, args ...any) error {
	return &httpError{code, fmt.Sprintf(format, args...)}
}

func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	if he, ok := err.(*httpError); ok {
		code = he.code
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprint(w, err.Error())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

func queryHeaders(w http.ResponseWriter, index uint64) {
	w.Header().Set("X-Nomad-Index", strconv.FormatUint(index, 10))
	w.Header().Set("X-Nomad-KnownLeader", "true")
	w.Header().Set("X-Nomad-LastContact", "0")
}

// read serves a query on tables, supporting blocking queries: with
// ?index=N the answer waits until one of the tables changes past N or
// ?wait (default 5m, plus up to 1/16 jitter as Nomad) runs out; then it
// answers with the current state, as Nomad does. fn runs under s.mu.
func (s *Server) read(tables []string, fn func(r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		minIndex, _ := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
		wait := 5 * time.Minute
		if ws := r.URL.Query().Get("wait"); ws != "" {
			if d, err := time.ParseDuration(ws); err == nil {
				wait = d
			} else if n, err := strconv.Atoi(ws); err == nil {
				wait = time.Duration(n) * time.Millisecond
			}
		}
		deadline := time.NewTimer(wait + wait/32)
		defer deadline.Stop()
		for {
			s.mu.Lock()
			idx := s.tableIndex(tables)
			if minIndex == 0 || idx > minIndex {
				body, err := fn(r)
				s.mu.Unlock()
				s.answer(w, idx, body, err)
				return
			}
			ch := s.changed
			s.mu.Unlock()
			select {
			case <-ch:
			case <-deadline.C:
				minIndex = 0
			case <-r.Context().Done():
				return
			case <-s.ctx.Done():
				writeError(w, errf(http.StatusServiceUnavailable, "shutting down"))
				return
			}
		}
	}
}

func (s *Server) answer(w http.ResponseWriter, idx uint64, body any, err error) {
	if idx == 0 {
		idx = 1
	}
	queryHeaders(w, idx)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// write serves a write: fn runs under s.mu and returns the body; the
// answer carries only X-Nomad-Index.
func (s *Server) write(fn func(r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		body, err := fn(r)
		idx := s.index
		s.mu.Unlock()
		if err != nil {
			writeError(w, err)
			return
		}
		w.Header().Set("X-Nomad-Index", strconv.FormatUint(idx, 10))
		writeJSON(w, http.StatusOK, body)
	}
}

// middleware: request log, injected faults, ACL token.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, r.Method+" "+r.URL.RequestURI())
		var hit *fault
		for _, f := range s.faults {
			if (f.Method == "" || f.Method == r.Method) && strings.HasPrefix(r.URL.Path, f.Path) && (f.Times == 0 || f.hits < f.Times) {
				f.hits++
				hit = f
				break
			}
		}
		token := s.opts.Token
		s.mu.Unlock()
		if hit != nil {
			if hit.Delay > 0 {
				t := time.NewTimer(hit.Delay)
				select {
				case <-t.C:
				case <-r.Context().Done():
					t.Stop()
					return
				case <-s.ctx.Done(): // Close: do not hold it up
					t.Stop()
					writeError(w, errf(http.StatusServiceUnavailable, "shutting down"))
					return
				}
			}
			if hit.Status != 0 {
				writeError(w, errf(hit.Status, "%s", hit.Body))
				return
			}
		}
		if token != "" && r.Header.Get("X-Nomad-Token") != token && !strings.HasPrefix(r.URL.Path, "/v1/status/") {
			writeError(w, errf(http.StatusForbidden, "Permission denied"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func decodeBody(r *http.Request, v any) error {
	d := json.NewDecoder(r.Body)
	if err := d.Decode(v); err != nil {
		return errf(http.StatusBadRequest, "%v", err)
	}
	return nil
}

func ns(r *http.Request) string {
	if n := r.URL.Query().Get("namespace"); n != "" && n != "*" {
		return n
	}
	return "default"
}

func ptr[T any](v T) *T { return &v }

func now() int64 { return time.Now().UnixNano() }
