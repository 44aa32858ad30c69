package render_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/render"
)

const userRoot = `# The user's root module: every byte but the new block must survive.
terraform {
  required_providers {
    nomad = { source = "hashicorp/nomad" } # pinned below
  }
}

module "plugin_csi_glusterfs_controller" {
  source = "./modules/plugin-csi-glusterfs-controller"
}

/* a block comment */
module   "sonarr"   {
  source = "./modules/sonarr"   // odd spacing, kept
}
`

func TestUpdateRootModuleAddsPreservesAndIsIdempotent(t *testing.T) {
	s := load(t, "../examples/overseerr/ferry.hcl")
	out, err := render.UpdateRootModule([]byte(userRoot), s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out, []byte(userRoot)) {
		t.Fatalf("existing text changed:\n%s", out)
	}
	added := string(out[len(userRoot):])
	for _, want := range []string{`module "overseerr" {`, `source     = "./modules/overseerr"`, `depends_on = [module.plugin_csi_glusterfs_controller]`} {
		if !strings.Contains(added, want) {
			t.Errorf("added block lacks %q:\n%s", want, added)
		}
	}
	checkHCL(t, render.Files{"x.tf": []byte(added[1:])})
	again, err := render.UpdateRootModule(out, s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, out) {
		t.Errorf("second update changed the file:\n%s", again)
	}
}

func TestUpdateRootModuleUpdatesSourceOnly(t *testing.T) {
	s := load(t, "../examples/overseerr/ferry.hcl")
	in := "# mine\nmodule \"overseerr\" {\n  source = \"./old/place\" # comment kept\n  depends_on = [module.mine]\n}\n"
	out, err := render.UpdateRootModule([]byte(in), s)
	if err != nil {
		t.Fatal(err)
	}
	want := "# mine\nmodule \"overseerr\" {\n  source = \"./modules/overseerr\" # comment kept\n  depends_on = [module.mine]\n}\n"
	if string(out) != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
}

func TestUpdateRootModuleRefusesBrokenHCL(t *testing.T) {
	s := load(t, "../examples/overseerr/ferry.hcl")
	if _, err := render.UpdateRootModule([]byte("module \"x\" {\n"), s); err == nil {
		t.Error("accepted an unterminated block")
	}
}
