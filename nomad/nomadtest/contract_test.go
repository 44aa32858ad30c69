package nomadtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/testenv"
)

// The contract test replays every exchange recorded from a real Nomad
// v1.6.2 (../shared/nomad-api/<scenario>/*.json) against one double, in
// order, scenario after scenario (they build on each other as in the
// recording: c registers web, d fails v1 and auto-reverts, f drains, i
// stops and purges). For each exchange it checks:
//
//   - the status code;
//   - the body format (json / text / empty) and the Content-Type;
//   - the presence of X-Nomad-Index and X-Nomad-KnownLeader;
//   - for JSON bodies, that keys and value types match: every recorded key
//     is present with the same JSON type, and the double sends no key Nomad
//     never sends (the vocabulary of all recorded keys);
//   - for error bodies (status >= 400), the exact text.
//
// What may differ, and why (see README "Volatile fields"):
//
//   - IDs, indexes, times, ports, host attributes: values are not compared.
//     Recorded IDs in request paths are mapped to the double's: learned from
//     answers (register -> EvalID), else resolved from what the recorded
//     answer describes (the eval of that job and trigger, the deployment of
//     that job version, the alloc of that job version, the only node).
//   - null vs a value: whether a field is set depends on the moment (a
//     deployment is null until the scheduler ran, StartedAt is null until a
//     task starts). The double's simulated time runs much faster than the
//     recorder's polling, so a null on either side matches any type. A GET
//     whose shape does not match yet is re-asked with a blocking query until
//     it does or 5s pass, so intermediate states are given a chance.
//   - list lengths: each element the double sends is checked against the
//     recorded first element; an empty list on either side checks nothing.
//   - objects keyed by data (task names, groups, meta, check IDs): keys are
//     not compared, values are checked against the first recorded value.
//   - blocking queries: the recorded index is replaced by the last index the
//     double answered for that path, and the wait is capped at 300ms: a
//     timed-out recording (c/41) must answer the same index, a woken one
//     (d/004) a higher one.
//   - plain-text log bodies (status 200): contents are the tasks' output
//     (python access logs with times in the recording), only the format is
//     compared.
//
// Special cases, each checked differently rather than exempted:
//
//   - 409 variable conflicts (g/05, g/06, g/08): the body is the current
//     variable as text/plain; its JSON shape is compared, not its text
//     (indexes and times differ).
//   - ?cas= indexes (g): the recorded right index becomes the double's
//     current one, a recorded wrong one a wrong one.
//
// No exchange is skipped: all 343 are sent and checked.

type exchange struct {
	Method         string            `json:"method"`
	Path           string            `json:"path"`
	Query          map[string]string `json:"query"`
	RequestBody    json.RawMessage   `json:"request_body"`
	Status         int               `json:"status"`
	Headers        map[string]string `json:"response_headers"`
	Body           json.RawMessage   `json:"response_body"`
	Format         string            `json:"response_body_format"`
	name           string
	recordedBody   any
	recordedString string
}

// sharedDir finds ../shared/nomad-api relative to the module root.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("module root not found")
		}
		dir = parent
	}
	d := filepath.Join(dir, "..", "shared", "nomad-api")
	if _, err := os.Stat(d); err != nil {
		testenv.Skip(t, "recorded Nomad exchanges not found at "+d)
	}
	return d
}

func loadExchanges(t *testing.T, root string) (map[string][]*exchange, []string) {
	t.Helper()
	dirs, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	byDir := map[string][]*exchange{}
	var order []string
	for _, d := range dirs {
		if !d.IsDir() || d.Name() == "jobspecs" {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(root, d.Name(), "*.json"))
		sort.Strings(files)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var ex exchange
			if err := json.Unmarshal(b, &ex); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			ex.name = d.Name() + "/" + filepath.Base(f)
			if ex.Format == "json" {
				ex.recordedBody = decodeGeneric(ex.Body)
			} else if ex.Format == "text" {
				json.Unmarshal(ex.Body, &ex.recordedString)
			}
			byDir[d.Name()] = append(byDir[d.Name()], &ex)
		}
		order = append(order, d.Name())
	}
	return byDir, order
}

// vocabulary is every object key any recorded body has.
func vocabulary(all map[string][]*exchange) map[string]bool {
	v := map[string]bool{}
	var walk func(any)
	walk = func(x any) {
		switch x := x.(type) {
		case map[string]any:
			for k, e := range x {
				v[k] = true
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	for _, exs := range all {
		for _, ex := range exs {
			walk(ex.recordedBody)
		}
	}
	return v
}

var uuidRe = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

type replayer struct {
	t         *testing.T
	s         *Server
	vocab     map[string]bool
	ids       map[string]string // recorded -> double
	taken     map[string]bool   // double IDs already mapped
	lastIndex map[string]string // path -> last X-Nomad-Index answered
	checked   int
}

func TestContractReplaysEveryRecordedExchange(t *testing.T) {
	root := sharedDir(t)
	all, order := loadExchanges(t, root)
	total := 0
	for _, exs := range all {
		total += len(exs)
	}
	if total != 343 {
		t.Errorf("found %d recorded exchanges, want 343", total)
	}
	s := New(t, Options{Nodes: []Node{{Name: "vm", Arch: "amd64"}}, Step: 2 * time.Millisecond})
	r := &replayer{t: t, s: s, vocab: vocabulary(all), ids: map[string]string{}, taken: map[string]bool{}, lastIndex: map[string]string{}}
	for _, dir := range order {
		for _, ex := range all[dir] {
			r.setUp(ex)
			if err := r.replay(ex); err != nil {
				t.Errorf("%s: %s %s: %v", ex.name, ex.Method, ex.Path, err)
			}
		}
	}
	if r.checked != total {
		t.Errorf("checked %d of %d exchanges", r.checked, total)
	}
}

// setUp scripts the double the way the recorded scenario behaved.
func (r *replayer) setUp(ex *exchange) {
	switch ex.name {
	case "d-failed-deploy-autorevert/003-jobs-register-v1-failing.json":
		r.s.Script("web", Behavior{Outcome: MainFails, Reschedules: 2, Stderr: map[string]string{"app": "app: fatal: config missing\n"}})
	case "e-prestart-failure/01-jobs-register.json":
		r.s.Script("web-pre", Behavior{Outcome: PrestartFails, Reschedules: 2, Stderr: map[string]string{"restore": "restore: fatal\n"}})
	case "f-drain/01-job-allocations-before.json":
		r.s.Script("web", Behavior{})
	case "j-batch-job/01-jobs-register.json":
		r.s.OnBatch(func(BatchRun) BatchResult {
			cfg := `{"replicas": 2, "mode": "primary"}` + "\n"
			return BatchResult{Stdout: cfg, Files: map[string]string{"alloc/data/config.json": cfg}}
		})
	}
}

func (r *replayer) mapIDs(s string, ex *exchange) string {
	return uuidRe.ReplaceAllStringFunc(s, func(id string) string {
		if m, ok := r.ids[id]; ok {
			return m
		}
		if m := r.resolve(id, ex); m != "" {
			r.ids[id], r.taken[m] = m, true
			return m
		}
		return id
	})
}

// resolve finds the double's object a recorded ID in a path stands for,
// from what the recorded answer describes.
func (r *replayer) resolve(id string, ex *exchange) string {
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	body, _ := ex.recordedBody.(map[string]any)
	str := func(k string) string { v, _ := body[k].(string); return v }
	switch {
	case strings.HasPrefix(ex.Path, "/v1/node/"):
		if ex.Status == 404 {
			return ""
		}
		return s.nodes[0].id
	case strings.HasPrefix(ex.Path, "/v1/evaluation/"):
		var ids []string
		for i := len(s.evalOrder) - 1; i >= 0; i-- {
			if e := s.evals[s.evalOrder[i]]; e.JobID == str("JobID") {
				ids = append(ids, e.ID)
			}
		}
		_, delayed := body["WaitUntil"]
		return r.pick(ids, func(id string) bool {
			e := s.evals[id]
			return e.TriggeredBy == str("TriggeredBy") && e.WaitUntil.IsZero() != delayed
		})
	case strings.HasPrefix(ex.Path, "/v1/deployment/"):
		v, _ := body["JobVersion"].(json.Number)
		var ids []string
		for i := len(s.depOrder) - 1; i >= 0; i-- {
			if d := s.deps[s.depOrder[i]]; d.JobID == str("JobID") {
				ids = append(ids, d.ID)
			}
		}
		return r.pick(ids, func(id string) bool { return strconv.FormatUint(s.deps[id].JobVersion, 10) == v.String() })
	case strings.HasPrefix(ex.Path, "/v1/allocation/"), strings.HasPrefix(ex.Path, "/v1/client/"):
		var version string
		if j, ok := body["Job"].(map[string]any); ok {
			if v, ok := j["Version"].(json.Number); ok {
				version = v.String()
			}
		}
		var ids []string
		for _, aid := range s.allocOrd {
			if s.allocs[aid].a.JobID == str("JobID") {
				ids = append(ids, aid)
			}
		}
		return r.pick(ids, func(id string) bool { return strconv.FormatUint(s.allocs[id].version, 10) == version })
	}
	return ""
}

// pick prefers, in order: an unmapped candidate that fits, a mapped one
// that fits, any unmapped one, any one.
func (r *replayer) pick(ids []string, fits func(string) bool) string {
	for _, pass := range []func(string) bool{
		func(id string) bool { return !r.taken[id] && fits(id) },
		fits,
		func(id string) bool { return !r.taken[id] },
		func(string) bool { return true },
	} {
		for _, id := range ids {
			if pass(id) {
				return id
			}
		}
	}
	return ""
}

func (r *replayer) request(ex *exchange) (*http.Request, time.Duration) {
	q := url.Values{}
	wait := time.Duration(0)
	for k, v := range ex.Query {
		q.Set(k, r.mapIDs(v, ex))
	}
	if cas, ok := ex.Query["cas"]; ok {
		// Check-and-set indexes are the double's: the recorded right
		// one becomes the variable's current index, a wrong one stays
		// wrong.
		r.s.mu.Lock()
		v := r.s.vars["default/"+strings.TrimPrefix(ex.Path, "/v1/var/")]
		r.s.mu.Unlock()
		switch {
		case ex.Status < 300 && v != nil:
			q.Set("cas", strconv.FormatUint(v.ModifyIndex, 10))
		case cas != "0" && v != nil:
			q.Set("cas", strconv.FormatUint(v.ModifyIndex+1000, 10))
		}
	}
	path := r.mapIDs(ex.Path, ex)
	if ex.Query["index"] != "" {
		if last, ok := r.lastIndex[path]; ok {
			q.Set("index", last)
		}
		wait = 300 * time.Millisecond
		if ex.Headers["X-Nomad-Index"] != ex.Query["index"] {
			wait = 3 * time.Second // woken by a change: must not wait it out
		}
		q.Set("wait", wait.String())
	}
	var body io.Reader
	if len(ex.RequestBody) > 0 && string(ex.RequestBody) != "null" {
		var s string
		if json.Unmarshal(ex.RequestBody, &s) == nil {
			body = strings.NewReader(s) // raw (malformed) text as recorded
		} else {
			body = strings.NewReader(r.mapIDs(string(ex.RequestBody), ex))
		}
	}
	req, err := http.NewRequest(ex.Method, r.s.URL+path+"?"+q.Encode(), body)
	if err != nil {
		r.t.Fatal(err)
	}
	return req, wait
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (r *replayer) send(req *http.Request) (answer, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, b}, err
}

func (r *replayer) replay(ex *exchange) error {
	r.checked++
	deadline := time.Now().Add(2 * time.Second)
	var last error
	for attempt := 0; ; attempt++ {
		req, wait := r.request(ex)
		if attempt > 0 {
			// Ask again once something changed (blocking query on the
			// last index this path answered), to give the double's
			// state the chance to reach the recorded one.
			q := req.URL.Query()
			if idx, ok := r.lastIndex[req.URL.Path]; ok && q.Get("index") == "" {
				q.Set("index", idx)
				q.Set("wait", "200ms")
				req.URL.RawQuery = q.Encode()
			}
		}
		sentIndex := req.URL.Query().Get("index")
		ans, err := r.send(req)
		if err != nil {
			return err
		}
		if idx := ans.header.Get("X-Nomad-Index"); idx != "" {
			r.lastIndex[req.URL.Path] = idx
		}
		last = r.check(ex, ans)
		if last == nil && wait > 0 && attempt == 0 {
			last = checkBlocking(ex, sentIndex, ans)
		}
		if last == nil {
			r.learn(ex, ans)
			return nil
		}
		if ex.Method != "GET" || time.Now().After(deadline) {
			return last
		}
	}
}

// checkBlocking: a recorded timeout answers the index it was asked with,
// a recorded wake-up a higher one.
func checkBlocking(ex *exchange, sent string, ans answer) error {
	got, _ := strconv.ParseUint(ans.header.Get("X-Nomad-Index"), 10, 64)
	asked, _ := strconv.ParseUint(sent, 10, 64)
	timedOut := ex.Headers["X-Nomad-Index"] == ex.Query["index"]
	if timedOut && got != asked {
		return fmt.Errorf("blocking query timed out in the recording: index %d, want the asked %d", got, asked)
	}
	if !timedOut && got <= asked {
		return fmt.Errorf("blocking query was woken in the recording: index %d, want above %d", got, asked)
	}
	return nil
}

func (r *replayer) check(ex *exchange, ans answer) error {
	if ans.status != ex.Status {
		return fmt.Errorf("status %d, want %d (body %.200q)", ans.status, ex.Status, ans.body)
	}
	if got, want := ans.header.Get("Content-Type"), ex.Headers["Content-Type"]; got != want {
		return fmt.Errorf("Content-Type %q, want %q", got, want)
	}
	for _, h := range []string{"X-Nomad-Index", "X-Nomad-KnownLeader"} {
		_, want := ex.Headers[h]
		if got := ans.header.Get(h) != ""; got != want {
			return fmt.Errorf("header %s present=%v, want %v", h, got, want)
		}
	}
	switch ex.Format {
	case "empty":
		if len(ans.body) != 0 {
			return fmt.Errorf("body %q, want empty", ans.body)
		}
	case "text":
		if ex.Status == http.StatusConflict {
			// The variable sent back as text/plain: its shape counts.
			var errs []string
			r.compare("$", "", decodeGeneric([]byte(ex.recordedString)), decodeGeneric(ans.body), &errs)
			if len(errs) > 0 {
				return fmt.Errorf("409 body shape differs: %v", errs)
			}
			return nil
		}
		if ex.Status >= 400 && string(ans.body) != ex.recordedString {
			return fmt.Errorf("error text %q, want %q", ans.body, ex.recordedString)
		}
	case "json":
		if !json.Valid(ans.body) {
			return fmt.Errorf("body is not JSON: %.200q", ans.body)
		}
		ours := decodeGeneric(bytes.TrimSpace(ans.body))
		root := ""
		if strings.HasSuffix(ex.Path, "/checks") {
			root = "Checks by ID"
		}
		var errs []string
		r.compare("$", root, ex.recordedBody, ours, &errs)
		if len(errs) > 0 {
			sort.Strings(errs)
			if len(errs) > 8 {
				errs = append(errs[:8], fmt.Sprintf("... %d more", len(errs)-8))
			}
			return fmt.Errorf("shape differs:\n\t%s", strings.Join(errs, "\n\t"))
		}
	}
	return nil
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "bool"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// compare checks ours against the recorded value rec at path p; key is
// the object key the values sit under.
func (r *replayer) compare(p, key string, rec, ours any, errs *[]string) {
	if rec == nil || ours == nil {
		return
	}
	if jsonType(rec) != jsonType(ours) {
		*errs = append(*errs, fmt.Sprintf("%s: %s, want %s", p, jsonType(ours), jsonType(rec)))
		return
	}
	switch rv := rec.(type) {
	case map[string]any:
		ov := ours.(map[string]any)
		if dataKeys[key] || key == "Checks by ID" {
			// Keys are data: compare values under the same key, or
			// against any recorded value when they all are objects.
			var first any
			homogeneous := true
			for _, x := range rv {
				if _, ok := x.(map[string]any); !ok {
					homogeneous = false
				}
				first = x
			}
			for k, x := range ov {
				if rx, ok := rv[k]; ok {
					r.compare(p+"."+k, "", rx, x, errs)
				} else if homogeneous {
					r.compare(p+"."+k, "", first, x, errs)
				}
			}
			return
		}
		for k, x := range rv {
			o, ok := ov[k]
			if !ok {
				*errs = append(*errs, fmt.Sprintf("%s.%s: missing", p, k))
				continue
			}
			r.compare(p+"."+k, k, x, o, errs)
		}
		for k := range ov {
			if _, ok := rv[k]; !ok && !r.vocab[k] {
				*errs = append(*errs, fmt.Sprintf("%s.%s: a key Nomad never sends", p, k))
			}
		}
	case []any:
		ol := ours.([]any)
		if len(rv) == 0 {
			return
		}
		for i, x := range ol {
			r.compare(fmt.Sprintf("%s[%d]", p, i), "", rv[0], x, errs)
		}
	}
}

// learn maps recorded IDs to the double's from an answer that matched.
func (r *replayer) learn(ex *exchange, ans answer) {
	rec, ok := ex.recordedBody.(map[string]any)
	if !ok {
		return
	}
	ours, ok := decodeGeneric(bytes.TrimSpace(ans.body)).(map[string]any)
	if !ok {
		return
	}
	for _, k := range []string{"ID", "EvalID", "DeploymentID", "NodeID"} {
		rv, _ := rec[k].(string)
		ov, _ := ours[k].(string)
		if uuidRe.MatchString(rv) && ov != "" {
			if _, known := r.ids[rv]; !known {
				r.ids[rv], r.taken[ov] = ov, true
			}
		}
	}
}

// TestCompareCatchesShapeDifferences proves the contract's comparison
// fails on what it claims to check, so a passing replay means something.
func TestCompareCatchesShapeDifferences(t *testing.T) {
	r := &replayer{vocab: map[string]bool{"ID": true, "Index": true, "TaskStates": true, "State": true}}
	rec := decodeGeneric([]byte(`{"ID":"a","Index":1,"StartedAt":null,"TaskStates":{"app":{"State":"running"}},"List":[{"ID":"x"}]}`))
	cases := []struct {
		ours string
		want string // substring of the first error; "" for a match
	}{
		{`{"ID":"b","Index":7,"StartedAt":"2026-01-01T00:00:00Z","TaskStates":{"web":{"State":"dead"}},"List":[]}`, ""},
		{`{"ID":"b","Index":"7","StartedAt":null,"TaskStates":null,"List":null}`, "$.Index: string, want number"},
		{`{"ID":"b","StartedAt":null,"TaskStates":null,"List":null}`, "$.Index: missing"},
		{`{"ID":"b","Index":1,"StartedAt":null,"TaskStates":null,"List":null,"Invented":1}`, "$.Invented: a key Nomad never sends"},
		{`{"ID":"b","Index":1,"StartedAt":null,"TaskStates":{"x":{"State":1}},"List":null}`, "$.TaskStates.x.State: number, want string"},
		{`{"ID":"b","Index":1,"StartedAt":null,"TaskStates":null,"List":[{"ID":3}]}`, "$.List[0].ID: number, want string"},
	}
	for _, c := range cases {
		var errs []string
		r.compare("$", "", rec, decodeGeneric([]byte(c.ours)), &errs)
		switch {
		case c.want == "" && len(errs) > 0:
			t.Errorf("%s: unexpected %v", c.ours, errs)
		case c.want != "" && (len(errs) == 0 || !strings.Contains(strings.Join(errs, "\n"), c.want)):
			t.Errorf("%s: errors %v, want %q", c.ours, errs, c.want)
		}
	}
}
