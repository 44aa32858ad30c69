package nomad_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/internal/testenv/registrytest"
	"github.com/ferry-migrate/ferry/nomad"
	"github.com/ferry-migrate/ferry/nomad/nomadtest"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// mixedNodes is the first user's cluster: one amd64 node, two arm64.
var mixedNodes = []nomadtest.Node{{Name: "compose-host", Arch: "amd64"}, {Name: "pi-1", Arch: "arm64"}, {Name: "pi-2", Arch: "arm64"}}

func baseService() ferry.Service {
	return ferry.Service{
		Name:    "overseerr",
		Target:  ferry.Target{Region: "global", Datacenters: []string{"dc1"}, Namespace: "default"},
		Storage: ferry.Storage{Kind: ferry.StorageCSI, PluginID: "glusterfs", VolumeID: "glusterfs_overseerr_config", AccessMode: "single-node-writer", AttachmentMode: "file-system"},
	}
}

func problems(r *nomad.Report) map[string]string {
	m := map[string]string{}
	for _, p := range r.Problems {
		m[p.Check] += p.Message
	}
	return m
}

func TestPreflightPlatforms(t *testing.T) {
	doubleOnly(t)
	reg := registrytest.Start(t, "", "")
	registrytest.PushIndex(t, reg+"/sctx/overseerr:1.34.0", []string{"amd64", "arm64"})
	registrytest.PushIndex(t, reg+"/litestream/litestream:0.5.18", []string{"amd64"})
	registrytest.PushImage(t, reg+"/single/arm:1", "arm64")

	c := newCluster(t, nomadtest.Options{Nodes: mixedNodes, Plugins: []nomadtest.Plugin{{ID: "glusterfs", NodesHealthy: 3, NodesExpected: 3}}})
	cl, _ := c.client(t, nomad.Config{})
	svc := baseService()
	svc.Image = reg + "/sctx/overseerr:1.34.0"
	svc.Litestream.Image = reg + "/litestream/litestream:0.5.18"
	rep, err := cl.Preflight(context.Background(), nomad.PreflightInput{Service: svc})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 {
		t.Fatalf("problems = %+v, want exactly the litestream platform problem", rep.Problems)
	}
	var pe *nomad.PlatformError
	if !errors.As(rep.Problems[0].Err, &pe) {
		t.Fatalf("problem = %+v, want a *PlatformError", rep.Problems[0])
	}
	if pe.Arch != "arm64" || !strings.Contains(pe.Image, "litestream") || strings.Join(pe.Nodes, ",") != "pi-1,pi-2" {
		t.Errorf("PlatformError = %+v, want litestream lacking arm64 for pi-1, pi-2", pe)
	}
	if msg := rep.Err().Error(); !strings.Contains(msg, "pi-1") || !strings.Contains(msg, "litestream") || !strings.Contains(msg, "arm64") {
		t.Errorf("report error %q does not name the image, the arch and the nodes", msg)
	}

	// A single-platform image: its config's architecture counts.
	rep, err = cl.Preflight(context.Background(), nomad.PreflightInput{Service: svc, Images: []string{reg + "/single/arm:1"}})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.As(rep.Err(), &pe) || pe.Arch != "amd64" || pe.Nodes[0] != "compose-host" {
		t.Errorf("single arm64 image: err = %v, want amd64 missing for compose-host", rep.Err())
	}
}

type staticKeychain struct{ user, pass string }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return authn.FromConfig(authn.AuthConfig{Username: k.user, Password: k.pass}), nil
}

func TestPreflightPrivateRegistry(t *testing.T) {
	doubleOnly(t)
	reg := registrytest.Start(t, "ferry", "pw")
	kc := staticKeychain{"ferry", "pw"}
	registrytest.PushIndex(t, reg+"/private/app:1", []string{"amd64", "arm64"}, remote.WithAuthFromKeychain(kc))
	c := newCluster(t, nomadtest.Options{Nodes: mixedNodes, Plugins: []nomadtest.Plugin{{ID: "glusterfs", NodesHealthy: 3, NodesExpected: 3}}})
	cl, _ := c.client(t, nomad.Config{})
	in := nomad.PreflightInput{Service: baseService(), Images: []string{reg + "/private/app:1"}}

	rep, err := cl.Preflight(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if p := problems(rep)["image"]; !strings.Contains(p, "UNAUTHORIZED") && !strings.Contains(p, "401") {
		t.Errorf("anonymous read of a private image: problems %v, want an unauthorized image problem", rep.Problems)
	}
	in.Keychain = kc
	rep, err = cl.Preflight(context.Background(), in)
	if err != nil || len(rep.Problems) != 0 {
		t.Errorf("with credentials: problems %+v err %v, want none", rep.Problems, err)
	}
}

func TestPreflightCluster(t *testing.T) {
	doubleOnly(t)
	ctx := context.Background()
	svc := baseService()
	svc.Resources.Main.MemoryMaxMB = 1024

	t.Run("plugin absent lists the existing ones", func(t *testing.T) {
		c := newCluster(t, nomadtest.Options{Plugins: []nomadtest.Plugin{{ID: "nfs", NodesHealthy: 1, NodesExpected: 1}}})
		cl, _ := c.client(t, nomad.Config{})
		rep, err := cl.Preflight(ctx, nomad.PreflightInput{Service: svc, Images: []string{}})
		if err != nil {
			t.Fatal(err)
		}
		var pe *nomad.PluginError
		if !errors.As(rep.Err(), &pe) || !pe.Missing || strings.Join(pe.Existing, ",") != "nfs" {
			t.Fatalf("err = %v, want glusterfs missing with nfs listed", rep.Err())
		}
	})
	t.Run("plugin healthy on too few nodes", func(t *testing.T) {
		c := newCluster(t, nomadtest.Options{Nodes: mixedNodes, Plugins: []nomadtest.Plugin{{ID: "glusterfs", NodesHealthy: 1, NodesExpected: 3}}})
		cl, _ := c.client(t, nomad.Config{})
		rep, _ := cl.Preflight(ctx, nomad.PreflightInput{Service: svc})
		var pe *nomad.PluginError
		if !errors.As(rep.Err(), &pe) || pe.NodesHealthy != 1 || pe.NodesNeeded != 3 {
			t.Fatalf("err = %v, want healthy on 1 of 3", rep.Err())
		}
	})
	t.Run("region, datacenter, namespace, memory oversubscription", func(t *testing.T) {
		c := newCluster(t, nomadtest.Options{Plugins: []nomadtest.Plugin{{ID: "glusterfs", NodesHealthy: 1, NodesExpected: 1}}})
		cl, _ := c.client(t, nomad.Config{})
		bad := svc
		bad.Target = ferry.Target{Region: "eu", Datacenters: []string{"dc1", "home"}, Namespace: "apps"}
		rep, err := cl.Preflight(ctx, nomad.PreflightInput{Service: bad})
		if err != nil {
			t.Fatal(err)
		}
		p := problems(rep)
		if !strings.Contains(p["region"], `"eu"`) || !strings.Contains(p["datacenter"], `"home"`) || !strings.Contains(p["namespace"], `"apps"`) {
			t.Errorf("problems = %v, want region eu, datacenter home and namespace apps", p)
		}
		if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "memory_max is ignored") {
			t.Errorf("warnings = %q, want memory_max ignored", rep.Warnings)
		}
	})
	t.Run("memory oversubscription enabled: no warning", func(t *testing.T) {
		c := newCluster(t, nomadtest.Options{MemoryOversubscription: true, Plugins: []nomadtest.Plugin{{ID: "glusterfs", NodesHealthy: 1, NodesExpected: 1}}})
		cl, _ := c.client(t, nomad.Config{})
		rep, err := cl.Preflight(ctx, nomad.PreflightInput{Service: svc})
		if err != nil || len(rep.Warnings) != 0 || len(rep.Problems) != 0 {
			t.Errorf("report %+v err %v, want clean", rep, err)
		}
	})
	t.Run("forbidden token is an ACLError", func(t *testing.T) {
		c := newCluster(t, nomadtest.Options{Token: "right-token"})
		cl, logs := c.client(t, nomad.Config{Token: "wrong-token-s3cr3t"})
		_, err := cl.Preflight(ctx, nomad.PreflightInput{Service: svc})
		var ae *nomad.ACLError
		if !errors.As(err, &ae) {
			t.Fatalf("err = %v, want *ACLError", err)
		}
		if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(logs.String(), "s3cr3t") {
			t.Error("the token leaked into the error or the logs")
		}
	})
	t.Run("unreachable agent", func(t *testing.T) {
		cl, err := nomad.New(nomad.Config{Address: "http://127.0.0.1:1"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Preflight(ctx, nomad.PreflightInput{Service: svc}); err == nil || !strings.Contains(err.Error(), "preflight agent") {
			t.Errorf("err = %v, want a preflight agent error", err)
		}
	})
	t.Run("job of that name running a different spec", func(t *testing.T) {
		c := newCluster(t, nomadtest.Options{MemoryOversubscription: true, Plugins: []nomadtest.Plugin{{ID: "glusterfs", NodesHealthy: 1, NodesExpected: 1}}})
		cl, _ := c.client(t, nomad.Config{})
		s := svc
		s.Name = "web"
		if _, err := deploy(t, cl, webHCL("web", restoreOK, appOK), nil); err != nil {
			t.Fatal(err)
		}
		rep, err := cl.Preflight(ctx, nomad.PreflightInput{Service: s, JobHCL: webHCL("web", restoreOK, appOK)})
		if err != nil || len(rep.Problems) != 0 {
			t.Fatalf("same spec: problems %+v err %v, want none", rep.Problems, err)
		}
		rep, _ = cl.Preflight(ctx, nomad.PreflightInput{Service: s, JobHCL: webHCL("web", restoreOK, "echo other")})
		var se *nomad.SpecDiffError
		if !errors.As(rep.Err(), &se) || se.Job != "web" {
			t.Fatalf("different spec: err = %v, want *SpecDiffError for web", rep.Err())
		}
	})
}
