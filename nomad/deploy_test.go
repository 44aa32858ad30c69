package nomad_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/nomad"
	"github.com/ferry-migrate/ferry/nomad/nomadtest"
	"github.com/hashicorp/nomad/api"
)

func deploy(t *testing.T, cl *nomad.Client, hcl string, progress func(nomad.Progress)) (*nomad.DeployResult, error) {
	t.Helper()
	ctx := context.Background()
	job, err := nomadtest.ParseJobHCL(hcl)
	if err != nil {
		t.Fatal(err)
	}
	idx, _, err := cl.JobModifyIndex(ctx, *job.ID)
	if err != nil {
		t.Fatal(err)
	}
	return cl.Deploy(ctx, nomad.DeployInput{JobHCL: hcl, ModifyIndex: idx, Timeout: timeout(), Progress: progress})
}

func TestDeployHealthy(t *testing.T) {
	c := newCluster(t, nomadtest.Options{})
	cl, _ := c.client(t, nomad.Config{})
	var mu sync.Mutex
	var events []string
	hcl := webHCL("healthy", restoreOK, appOK)
	res, err := deploy(t, cl, hcl, func(p nomad.Progress) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, p.Task+":"+p.Event)
	})
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	if res.Version != 0 || len(res.Allocs) != 1 || res.DeploymentID == "" {
		t.Fatalf("result = %+v, want version 0 with one healthy alloc", res)
	}
	mu.Lock()
	joined := strings.Join(events, " ")
	mu.Unlock()
	for _, want := range []string{"restore:Started", "restore:Terminated", "app:Started", "replicate:Started"} {
		if !strings.Contains(joined, want) {
			t.Errorf("progress events %q lack %q", joined, want)
		}
	}
	// The job went through server-side parsing: runtime references stay
	// literal, and the source is attached as the submission.
	api := cl.API()
	job, _, err := api.Jobs().Info("healthy", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := job.TaskGroups[0].Tasks[1].Env["PORT"]; got != "${NOMAD_PORT_http}" {
		t.Errorf("app env PORT = %q, want the literal ${NOMAD_PORT_http}", got)
	}
	sub, _, err := api.Jobs().Submission("healthy", 0, nil)
	if err != nil {
		t.Fatalf("submission: %v", err)
	}
	if sub.Source != hcl || sub.Format != "hcl2" {
		t.Errorf("submission = %q/%q, want the HCL source as hcl2", sub.Format, sub.Source[:min(40, len(sub.Source))])
	}
	// Registering the same spec again makes no new version: the
	// deployment already done is the answer.
	again, err := deploy(t, cl, hcl, nil)
	if err != nil || again.Version != 0 || again.DeploymentID != res.DeploymentID {
		t.Fatalf("redeploy of the same spec: %+v, %v; want version 0 and the same deployment", again, err)
	}
	out, err := cl.Logs(context.Background(), res.Allocs[0], "restore", "stdout", 0)
	if err != nil {
		t.Fatalf("logs: %v", err)
	}
	if len(out) == 0 {
		t.Error("restore stdout is empty")
	}
}

func TestDeployFailedReportsTaskEventsAndLogTail(t *testing.T) {
	c := newCluster(t, nomadtest.Options{})
	cl, _ := c.client(t, nomad.Config{})
	if _, err := deploy(t, cl, webHCL("web", restoreOK, appOK), nil); err != nil {
		t.Fatalf("deploy v0: %v", err)
	}
	c.script("web", nomadtest.Behavior{Outcome: nomadtest.MainFails, Stderr: map[string]string{"app": "app: fatal: config missing\n"}})
	_, err := deploy(t, cl, webHCL("web", restoreOK, appFail), nil)
	var de *nomad.DeployError
	if !errors.As(err, &de) {
		t.Fatalf("deploy v1 err = %v, want *DeployError", err)
	}
	if de.Kind != nomad.FailedTask || de.Task != "app" || de.Version != 1 {
		t.Errorf("DeployError = kind %q task %q version %d, want %q app 1", de.Kind, de.Task, de.Version, nomad.FailedTask)
	}
	if ev := strings.Join(de.Events, "\n"); !strings.Contains(ev, "Terminated: Exit Code: 1") || !strings.Contains(ev, "Not Restarting") {
		t.Errorf("events = %q, want the exit and Not Restarting", ev)
	}
	if tail := strings.Join(de.LogTail, "\n"); !strings.Contains(tail, "app: fatal: config missing") {
		t.Errorf("log tail = %q, want the app's stderr", tail)
	}
	if !strings.Contains(de.Status, "rolling back to job version 0") {
		t.Errorf("status = %q, want the auto-revert", de.Status)
	}
	for _, want := range []string{`task "app"`, "config missing", "Not Restarting"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error text %q lacks %q", err, want)
		}
	}
	// Auto-revert registers v0's spec as version 2, which becomes stable.
	waitFor(t, func() bool {
		j, _, err := cl.API().Jobs().Info("web", nil)
		return err == nil && *j.Version == 2 && *j.Stable
	}, "job reverted to a stable version 2")
}

func TestDeployPrestartFailure(t *testing.T) {
	c := newCluster(t, nomadtest.Options{})
	cl, _ := c.client(t, nomad.Config{})
	c.script("pre", nomadtest.Behavior{Outcome: nomadtest.PrestartFails, Stderr: map[string]string{"restore": "restore: replica unreachable\n"}})
	_, err := deploy(t, cl, webHCL("pre", restoreFail, appOK), nil)
	var de *nomad.DeployError
	if !errors.As(err, &de) {
		t.Fatalf("deploy err = %v, want *DeployError", err)
	}
	if de.Kind != nomad.FailedPrestart || de.Task != "restore" {
		t.Fatalf("DeployError = kind %q task %q, want %q restore", de.Kind, de.Task, nomad.FailedPrestart)
	}
	if tail := strings.Join(de.LogTail, "\n"); !strings.Contains(tail, "replica unreachable") {
		t.Errorf("log tail = %q, want restore's stderr", tail)
	}
	if !strings.Contains(de.Status, "no stable job version") {
		t.Errorf("status = %q, want no auto-revert target", de.Status)
	}
	// The app never started: it has no logs.
	_, err = cl.Logs(context.Background(), de.AllocID, "app", "stdout", 0)
	if err == nil || !strings.Contains(err.Error(), "not started yet") {
		t.Errorf("app logs err = %v, want 'not started yet'", err)
	}
}

func TestDeployNeverBlocksForever(t *testing.T) {
	doubleOnly(t)
	// Every deployment read hangs longer than the whole deploy may take.
	c := newCluster(t, nomadtest.Options{})
	c.double.Inject(nomadtest.Fault{Path: "/v1/job/slow/deployment", Delay: time.Hour})
	cl, _ := c.client(t, nomad.Config{})
	start := time.Now()
	_, err := cl.Deploy(context.Background(), nomad.DeployInput{JobHCL: webHCL("slow", restoreOK, appOK), Timeout: 500 * time.Millisecond})
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("deploy took %v with a 500ms timeout", took)
	}
	var de *nomad.DeployError
	if !errors.As(err, &de) || de.Kind != nomad.FailedTimeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a timeout DeployError wrapping DeadlineExceeded", err)
	}

	// A hung server on a call the api client gives no context (parse)
	// is cut by the request timeout.
	c.double.Inject(nomadtest.Fault{Path: "/v1/jobs/parse", Delay: time.Hour, Times: 1})
	quick, _ := c.client(t, nomad.Config{RequestTimeout: 300 * time.Millisecond})
	start = time.Now()
	if _, err := quick.Deploy(context.Background(), nomad.DeployInput{JobHCL: webHCL("hung", restoreOK, appOK), Timeout: time.Hour}); err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("deploy against a hung parse: err %v after %v, want an error within the request timeout", err, time.Since(start))
	}

	// A job that can never be placed (no node in its datacenter) also ends.
	_, err = cl.Deploy(context.Background(), nomad.DeployInput{
		JobHCL:  strings.Replace(webHCL("nowhere", restoreOK, appOK), `"dc1"`, `"dc-none"`, 1),
		Timeout: 500 * time.Millisecond,
	})
	if !errors.As(err, &de) || de.Kind != nomad.FailedTimeout {
		t.Fatalf("unplaceable job: err = %v, want a timeout DeployError", err)
	}
}

func TestDeploySurvives500sAndSlowAnswers(t *testing.T) {
	doubleOnly(t)
	c := newCluster(t, nomadtest.Options{})
	c.double.Inject(nomadtest.Fault{Path: "/v1/deployment/", Status: 500, Body: "rpc error: leader lost", Times: 3})
	c.double.Inject(nomadtest.Fault{Method: "GET", Path: "/v1/evaluation/", Delay: 300 * time.Millisecond})
	cl, _ := c.client(t, nomad.Config{})
	if _, err := deploy(t, cl, webHCL("flaky", restoreOK, appOK), nil); err != nil {
		t.Fatalf("deploy through transient 500s: %v", err)
	}
	n := 0
	for _, r := range c.double.Requests() {
		if strings.HasPrefix(r, "GET /v1/deployment/") {
			n++
		}
	}
	if n <= 3 {
		t.Errorf("%d deployment reads, want retries past the 3 injected 500s", n)
	}
}

func TestDeployCASConflictOverwritesNothing(t *testing.T) {
	c := newCluster(t, nomadtest.Options{})
	cl, _ := c.client(t, nomad.Config{})
	ctx := context.Background()
	if _, err := deploy(t, cl, webHCL("cas", restoreOK, appOK), nil); err != nil {
		t.Fatal(err)
	}
	seen, _, err := cl.JobModifyIndex(ctx, "cas")
	if err != nil {
		t.Fatal(err)
	}
	// Someone else changes the job meanwhile.
	other := webHCL("cas", restoreOK, "echo theirs; while true; do sleep 1; done")
	theirs, err := cl.API().Jobs().ParseHCLOpts(&api.JobsParseRequest{JobHCL: other, Canonicalize: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cl.API().Jobs().Register(theirs, nil); err != nil {
		t.Fatal(err)
	}
	ours := webHCL("cas", restoreOK, "echo ours; while true; do sleep 1; done")
	_, err = cl.Deploy(ctx, nomad.DeployInput{JobHCL: ours, ModifyIndex: seen, Timeout: timeout()})
	var ce *nomad.ConflictError
	if !errors.As(err, &ce) || ce.Expected != seen {
		t.Fatalf("err = %v, want *ConflictError expecting %d", err, seen)
	}
	if !strings.Contains(err.Error(), "job changed since it was read") {
		t.Errorf("error %q does not say the job changed", err)
	}
	j, _, err := cl.API().Jobs().Info("cas", nil)
	if err != nil {
		t.Fatal(err)
	}
	if args := j.TaskGroups[0].Tasks[1].Config["args"]; !strings.Contains(strings.Join(toStrings(args), " "), "theirs") || *j.Version != 1 {
		t.Errorf("stored job version %d args %v, want theirs (version 1) untouched", *j.Version, args)
	}
}

func toStrings(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			s, _ := x.(string)
			out = append(out, s)
		}
	}
	return out
}

func TestStopRevertRestart(t *testing.T) {
	c := newCluster(t, nomadtest.Options{})
	cl, _ := c.client(t, nomad.Config{})
	ctx := context.Background()
	res, err := deploy(t, cl, webHCL("ops", restoreOK, appOK), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.RestartAlloc(ctx, res.Allocs[0], "app"); err != nil {
		t.Fatalf("restart: %v", err)
	}
	a, _, err := cl.API().Allocations().Info(res.Allocs[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		a, _, err = cl.API().Allocations().Info(res.Allocs[0], nil)
		return err == nil && a.TaskStates["app"].Restarts == 1
	}, "app restarted once")
	if _, err := deploy(t, cl, webHCL("ops", restoreOK, "echo v1; while true; do sleep 1; done"), nil); err != nil {
		t.Fatal(err)
	}
	cur := uint64(1)
	if err := cl.Revert(ctx, "ops", 0, &cur); err != nil {
		t.Fatalf("revert: %v", err)
	}
	j, _, err := cl.API().Jobs().Info("ops", nil)
	if err != nil || *j.Version != 2 {
		t.Fatalf("after revert: version %v err %v, want 2", j.Version, err)
	}
	stale := uint64(1)
	if err := cl.Revert(ctx, "ops", 0, &stale); err == nil {
		t.Error("revert with a stale expected version succeeded")
	}
	if err := cl.Stop(ctx, "ops", true); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, _, err := cl.API().Jobs().Info("ops", nil); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("job after purge: err = %v, want 404", err)
	}
	if err := cl.Stop(ctx, "never-existed", false); err != nil {
		t.Errorf("stopping an unknown job: %v, want nil as Nomad answers 200", err)
	}
}

// waitFor polls cond until it holds or the test's time runs out.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout())
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		tm := time.NewTimer(20 * time.Millisecond)
		<-tm.C
	}
}

// TestDeployRenderedJobspec deploys the overseerr jobspec the render
// package writes (examples/overseerr) through the double: ferry's own
// output must parse, register and roll out, and the registered job must
// hold no credential values (they come from Vault at runtime).
func TestDeployRenderedJobspec(t *testing.T) {
	doubleOnly(t)
	src, err := os.ReadFile("../examples/overseerr/out/modules/overseerr/jobspec.nomad.hcl")
	if err != nil {
		t.Skipf("rendered example not in this tree: %v", err)
	}
	c := newCluster(t, nomadtest.Options{})
	cl, _ := c.client(t, nomad.Config{})
	res, err := deploy(t, cl, string(src), nil)
	if err != nil {
		t.Fatalf("deploy rendered jobspec: %v", err)
	}
	if len(res.Allocs) == 0 {
		t.Fatal("no healthy allocation")
	}
	j, _, ok := c.double.Job("overseerr")
	if !ok {
		t.Fatal("job not stored")
	}
	b, _ := json.Marshal(j)
	if regexp.MustCompile(`(?i)"(MINIO|AWS)_(ACCESS|SECRET)_KEY(_ID)?"\s*:\s*"[^"{$]`).Match(b) {
		t.Errorf("registered job carries a literal credential value: %s", b)
	}
}
