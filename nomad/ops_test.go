package nomad_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/internal/testenv"
	"github.com/ferry-migrate/ferry/nomad"
	"github.com/ferry-migrate/ferry/nomad/nomadtest"
)

func TestDrainMovesAllocAndMarksNodeEligible(t *testing.T) {
	doubleOnly(t)
	c := newCluster(t, nomadtest.Options{Nodes: mixedNodes[:2]})
	cl, _ := c.client(t, nomad.Config{})
	ctx := context.Background()
	res, err := deploy(t, cl, webHCL("web", restoreOK, appOK), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := cl.API().Allocations().Info(res.Allocs[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	dr, err := cl.Drain(ctx, a.NodeID, "web", 10*time.Second)
	if err != nil {
		t.Fatalf("drain: %v", err)
	}
	if dr.From != a.NodeID || dr.To == "" || dr.To == a.NodeID || dr.OldAlloc != a.ID || dr.Alloc == a.ID {
		t.Errorf("drain result %+v, want the alloc moved off node %s", dr, a.NodeID)
	}
	if !dr.MarkedEligible {
		t.Error("node not marked eligible again")
	}
	n, _, err := cl.API().Nodes().Info(a.NodeID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n.SchedulingEligibility != "eligible" || n.DrainStrategy != nil {
		t.Errorf("node after drill: eligibility %q drain %+v, want eligible and not draining", n.SchedulingEligibility, n.DrainStrategy)
	}
	old, _, _ := cl.API().Allocations().Info(a.ID, nil)
	if old.DesiredDescription != "alloc is being migrated" || old.DesiredTransition.Migrate == nil || !*old.DesiredTransition.Migrate {
		t.Errorf("old alloc desired %q transition %+v, want migrated", old.DesiredDescription, old.DesiredTransition)
	}
}

func TestDrainWatchFailsStillMarksEligible(t *testing.T) {
	doubleOnly(t)
	// One node: the replacement can never be placed, so the watch ends at
	// ctx's deadline; the node must be eligible again anyway.
	c := newCluster(t, nomadtest.Options{})
	cl, _ := c.client(t, nomad.Config{})
	res, err := deploy(t, cl, webHCL("web", restoreOK, appOK), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, _, _ := cl.API().Allocations().Info(res.Allocs[0], nil)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	dr, err := cl.Drain(ctx, a.NodeID, "web", time.Second)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the watch's deadline", err)
	}
	if dr == nil || !dr.MarkedEligible {
		t.Fatalf("result %+v, want the node marked eligible", dr)
	}
	n, _, _ := cl.API().Nodes().Info(a.NodeID, nil)
	if n.SchedulingEligibility != "eligible" {
		t.Errorf("node eligibility %q, want eligible", n.SchedulingEligibility)
	}
	if _, err := cl.Drain(context.Background(), a.NodeID, "nojob", time.Second); !errors.Is(err, nomad.ErrNoAllocOnNode) {
		t.Errorf("drain for a job not on the node: %v, want ErrNoAllocOnNode", err)
	}
}

func TestCSIVolume(t *testing.T) {
	doubleOnly(t)
	ctx := context.Background()
	st := baseService().Storage
	st.CapacityMin, st.CapacityMax = 100<<20, 1<<30

	c := newCluster(t, nomadtest.Options{})
	cl, _ := c.client(t, nomad.Config{})
	if _, err := cl.EnsureVolume(ctx, st); err == nil || !strings.Contains(err.Error(), "no CSI plugin named: glusterfs") {
		t.Fatalf("create without plugin: %v, want Nomad's no-plugin error", err)
	}
	if _, err := cl.VolumeStatus(ctx, st.VolumeID); !errors.Is(err, nomad.ErrVolumeNotFound) {
		t.Fatalf("status of a missing volume: %v, want ErrVolumeNotFound", err)
	}

	c = newCluster(t, nomadtest.Options{Plugins: []nomadtest.Plugin{{ID: "glusterfs", NodesHealthy: 1, NodesExpected: 1, ControllersHealthy: 1}}})
	cl, _ = c.client(t, nomad.Config{})
	v, err := cl.EnsureVolume(ctx, st)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if v.ID != st.VolumeID || v.PluginID != "glusterfs" || v.RequestedCapacityMin != st.CapacityMin {
		t.Errorf("volume %+v, want the spec's", v)
	}
	again, err := cl.EnsureVolume(ctx, st)
	if err != nil || again.CreateIndex != v.CreateIndex {
		t.Errorf("second EnsureVolume: %v (create index %d vs %d), want the same volume", err, again.CreateIndex, v.CreateIndex)
	}
	got, err := cl.VolumeStatus(ctx, st.VolumeID)
	if err != nil || !got.Schedulable {
		t.Errorf("status: %+v %v, want schedulable", got, err)
	}

	existing := st
	existing.VolumeID = "glusterfs_overseerr_media"
	if err := cl.RegisterVolume(ctx, existing, "gluster-vol-media"); err != nil {
		t.Fatalf("register: %v", err)
	}
	if got, err := cl.VolumeStatus(ctx, existing.VolumeID); err != nil || got.ExternalID != "gluster-vol-media" {
		t.Errorf("registered volume: %+v %v, want external ID gluster-vol-media", got, err)
	}
}

// shellWriter emulates the writer job's script on the double: it reads
// `cp "${NOMAD_SECRETS_DIR}/fileN" "<dst>"` lines and prints sha256sum
// lines of what the templates rendered. corrupt changes one file first.
func shellWriter(corrupt bool) func(nomadtest.BatchRun) nomadtest.BatchResult {
	cp := regexp.MustCompile(`cp "\$\{NOMAD_SECRETS_DIR\}/(\w+)" "([^"]+)"`)
	return func(run nomadtest.BatchRun) nomadtest.BatchResult {
		args, _ := run.Task.Config["args"].([]any)
		script, _ := args[len(args)-1].(string)
		var out strings.Builder
		for _, m := range cp.FindAllStringSubmatch(script, -1) {
			content := run.Files["secrets/"+m[1]]
			if corrupt {
				content += "x"
			}
			sum := sha256.Sum256([]byte(content))
			fmt.Fprintf(&out, "%s  %s\n", hex.EncodeToString(sum[:]), m[2])
		}
		return nomadtest.BatchResult{Stdout: out.String()}
	}
}

const settingsSecret = `{"clientId":"SESSION-SECRET-4242","main":{"apiKey":"APIKEY-SECRET-9999"}}`

func TestWriteConfigFilesKeepsSecretsOutOfSpecLogsAndErrors(t *testing.T) {
	doubleOnly(t)
	c := newCluster(t, nomadtest.Options{Token: "TOKEN-SECRET-777"})
	c.double.OnBatch(shellWriter(false))
	cl, logs := c.client(t, nomad.Config{Token: "TOKEN-SECRET-777"})
	svc := baseService()
	svc.Secrets = ferry.Secrets{Provider: ferry.SecretsVault, Path: "nomad/default/overseerr", AccessKeyKey: "MINIO_ACCESS_KEY", SecretKeyKey: "MINIO_SECRET_KEY"}
	files := []nomad.ConfigFile{{Path: "settings.json", Content: []byte(settingsSecret)}, {Path: "sub/dir/extra.conf", Content: []byte("PASSWORD=SECRET-PW-1\n")}}

	if err := cl.WriteConfigFiles(context.Background(), svc, files, nomad.ConfigJob{}); err != nil {
		t.Fatalf("write config files: %v", err)
	}
	if _, ok := c.double.Variable("nomad/jobs/" + nomad.ConfigJobName("overseerr")); ok {
		t.Error("the variable holding the files was not deleted")
	}
	versions := c.double.JobVersions(nomad.ConfigJobName("overseerr"))
	if len(versions) != 1 {
		t.Fatalf("writer job versions = %d, want 1", len(versions))
	}
	spec, _ := json.Marshal(versions[0])
	if _, _, ok := c.double.Job(nomad.ConfigJobName("overseerr")); ok {
		t.Error("writer job not purged")
	}

	// A checksum mismatch fails, and still deletes the variable.
	c.double.OnBatch(shellWriter(true))
	err := cl.WriteConfigFiles(context.Background(), svc, files, nomad.ConfigJob{})
	var ce *nomad.ChecksumError
	if !errors.As(err, &ce) || ce.Path != "settings.json" {
		t.Fatalf("corrupted write: %v, want *ChecksumError for settings.json", err)
	}
	if _, ok := c.double.Variable("nomad/jobs/" + nomad.ConfigJobName("overseerr")); ok {
		t.Error("the variable was not deleted after a failure")
	}

	// A deploy too, so its logs are checked as well.
	if _, err := deploy(t, cl, webHCL("overseerr", restoreOK, appOK), nil); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"SESSION-SECRET-4242", "APIKEY-SECRET-9999", "SECRET-PW-1", "TOKEN-SECRET-777"} {
		if strings.Contains(string(spec), secret) {
			t.Errorf("the registered writer job contains %q", secret)
		}
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the logs contain %q", secret)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error contains %q", secret)
		}
		for _, j := range c.double.JobVersions("overseerr") {
			if b, _ := json.Marshal(j); strings.Contains(string(b), secret) {
				t.Errorf("the deployed job contains %q", secret)
			}
		}
	}
	if !strings.Contains(logs.String(), "config files written and verified") {
		t.Error("the capture saw no log lines at all; the check above proves nothing")
	}
	// The spec reads the files from the variable through templates.
	if !strings.Contains(string(spec), `nomadVar \"nomad/jobs/overseerr-ferry-config\"`) {
		t.Errorf("writer job does not read the variable: %s", spec)
	}
}

func TestApplyTerraformTargetsTheModule(t *testing.T) {
	tfBin, ok := nomad.UseTerraform(ferry.Service{Apply: "terraform"})
	if !ok {
		testenv.Skip(t, "terraform not on PATH")
	}
	if _, ok := nomad.UseTerraform(ferry.Service{Apply: "api"}); ok {
		t.Error(`UseTerraform with apply = "api" is true`)
	}
	dir := t.TempDir()
	// A root module wiring modules/web, with a resource of the built-in
	// terraform provider (no download), and another module that -target
	// must leave alone.
	write := func(p, s string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("main.tf", "module \"web\" {\n  source = \"./modules/web\"\n}\nmodule \"other\" {\n  source = \"./modules/other\"\n}\n")
	write("modules/web/main.tf", "resource \"terraform_data\" \"job\" {\n  input = \"web\"\n}\n")
	write("modules/other/main.tf", "resource \"terraform_data\" \"job\" {\n  input = \"other\"\n}\n")
	logs := &logBuffer{}
	var out strings.Builder
	err := nomad.ApplyTerraform(context.Background(), nomad.TerraformApply{
		Dir: dir, Module: "web", ExecPath: tfBin, Output: &out,
		Logger: slogTo(logs),
	})
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, out.String())
	}
	cmds := logs.String()
	if !regexp.MustCompile(`plan .*-target=module\.web`).MatchString(cmds) {
		t.Errorf("plan was not run with -target=module.web:\n%s", cmds)
	}
	state, err := os.ReadFile(filepath.Join(dir, "terraform.tfstate"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(state), `"module.web"`) || strings.Contains(string(state), `"module.other"`) {
		t.Errorf("state should hold module.web only:\n%s", state)
	}
}
