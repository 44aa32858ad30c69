package render_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/render"
)

// checkHCL fails t unless every .tf/.hcl file of fs parses with hcl/v2 and
// is unchanged by hclwrite.Format.
func checkHCL(t testing.TB, fs render.Files) {
	t.Helper()
	for _, p := range fs.Paths() {
		if !strings.HasSuffix(p, ".tf") && !strings.HasSuffix(p, ".hcl") {
			continue
		}
		if _, diags := hclsyntax.ParseConfig(fs[p], p, hcl.InitialPos); diags.HasErrors() {
			t.Errorf("%s does not parse: %v\n%s", p, diags, fs[p])
			continue
		}
		if f := hclwrite.Format(fs[p]); !bytes.Equal(f, fs[p]) {
			t.Errorf("%s is changed by hclwrite.Format", p)
		}
	}
}

func TestRenderedHCLParsesAndIsFormatted(t *testing.T) {
	for _, c := range goldenCases(t) {
		t.Run(c.name, func(t *testing.T) {
			fs, err := render.Render(load(t, c.spec))
			if err != nil {
				t.Fatal(err)
			}
			checkHCL(t, fs)
		})
	}
}

// TestOverseerrCoversTasks checks the task list's coded tasks in the
// rendered Overseerr job by reading it back as HCL.
func TestOverseerrCoversTasks(t *testing.T) {
	s := load(t, "../examples/overseerr/ferry.hcl")
	fs, err := render.Render(s)
	if err != nil {
		t.Fatal(err)
	}
	job := parse(t, fs[render.JobspecPath(s.Name)])
	j := job.Blocks[0]
	if got := attrs(t, j.Body)["namespace"]; got != "default" { // T007
		t.Errorf("namespace = %v", got)
	}
	if n := countBlocks(j.Body, "constraint"); n != 0 { // T044
		t.Errorf("%d constraint blocks", n)
	}
	g := only(t, j.Body, "group")
	net := only(t, g.Body, "network") // T008
	if attrs(t, net.Body)["mode"] != "bridge" || attrs(t, only(t, net.Body, "port").Body)["to"] != int64(5055) {
		t.Errorf("network: %v", attrs(t, net.Body))
	}
	disk := attrs(t, only(t, g.Body, "ephemeral_disk").Body) // T009
	if disk["sticky"] != true || disk["migrate"] != true || disk["size"] != int64(100) {
		t.Errorf("ephemeral_disk = %v", disk)
	}
	if attrs(t, only(t, g.Body, "volume").Body)["type"] != "csi" { // T010
		t.Error("no csi volume")
	}
	tasks := map[string]*hclsyntax.Block{}
	for _, b := range g.Body.Blocks {
		if b.Type == "task" {
			tasks[b.Labels[0]] = b
		}
	}
	restore := tasks[ferry.TaskRestore] // T019-T022
	if restore == nil || attrs(t, only(t, restore.Body, "lifecycle").Body)["hook"] != "prestart" {
		t.Fatal("no prestart restore task")
	}
	if r := attrs(t, only(t, restore.Body, "resources").Body); r["cpu"] != int64(100) || r["memory"] != int64(256) || r["memory_max"] != int64(512) {
		t.Errorf("restore resources = %v", r)
	}
	if countBlocks(restore.Body, "vault") != 1 {
		t.Error("restore task has no vault block")
	}
	var creds string
	for _, b := range restore.Body.Blocks {
		if a := attrs(t, b.Body); b.Type == "template" && a["env"] == true {
			creds = a["data"].(string)
			if !strings.HasPrefix(a["destination"].(string), "secrets/") {
				t.Errorf("credentials rendered to %v, not under secrets/", a["destination"])
			}
		}
	}
	if !strings.Contains(creds, `{{ with secret "nomad/default/overseerr" }}{{ .Data.data.MINIO_ACCESS_KEY }}{{ end }}`) {
		t.Errorf("credentials template = %q", creds)
	}
	side := tasks[ferry.TaskReplicate] // T023-T026
	if side == nil || attrs(t, only(t, side.Body, "lifecycle").Body)["sidecar"] != true {
		t.Fatal("no replicate sidecar")
	}
	main := tasks["overseerr"] // T027-T031
	cfg := only(t, main.Body, "config")
	if attrs(t, cfg.Body)["image"] != "sctx/overseerr:1.34.0" {
		t.Error("image not pinned")
	}
	m := attrs(t, only(t, cfg.Body, "mount").Body)
	if m["source"] != "../alloc/data/db" || m["target"] != "/app/config/db" {
		t.Errorf("db mount = %v", m)
	}
	if attrs(t, only(t, main.Body, "volume_mount").Body)["destination"] != "/app/config" {
		t.Error("config volume not at /app/config")
	}
	if attrs(t, only(t, main.Body, "env").Body)["TZ"] != "Europe/London" {
		t.Error("TZ missing")
	}
	svc := only(t, g.Body, "service") // T032-T035
	sa := attrs(t, svc.Body)
	if sa["provider"] != "consul" || sa["port"] != "5055" {
		t.Errorf("service = %v", sa)
	}
	chk := attrs(t, only(t, svc.Body, "check").Body)
	if chk["path"] != "/api/v1/status" || chk["interval"] != "30s" || chk["timeout"] != "5s" || chk["expose"] != true {
		t.Errorf("check = %v", chk)
	}
	tp := only(t, only(t, only(t, only(t, svc.Body, "connect").Body, "sidecar_service").Body, "proxy").Body, "transparent_proxy")
	_ = tp
	tags := strings.Join(toStrings(sa["tags"]), "\n")
	for _, want := range []string{"traefik.enable=true", "traefik.http.routers.overseerr.rule=Host(`overseerr.example.com`)", "traefik.http.routers.overseerr.entrypoints=websecure", "traefik.consulcatalog.connect=true"} {
		if !strings.Contains(tags, want) {
			t.Errorf("tag %q missing from %s", want, tags)
		}
	}
	if attrs(t, only(t, j.Body, "update").Body)["auto_revert"] != true {
		t.Error("no auto_revert")
	}

	tf := parse(t, fs[render.ModuleMainPath(s.Name)]) // T002, T005, T006, T037
	kinds := map[string]*hclsyntax.Block{}
	for _, b := range tf.Blocks {
		kinds[b.Type+"."+b.Labels[0]] = b
	}
	if kinds["data.nomad_plugin"] == nil || attrs(t, kinds["data.nomad_plugin"].Body)["wait_for_healthy"] != true {
		t.Error("no plugin data source waiting for health")
	}
	vol := kinds["resource.nomad_csi_volume"]
	if vol == nil || attrs(t, only(t, vol.Body, "lifecycle").Body)["prevent_destroy"] != true {
		t.Error("CSI volume without prevent_destroy")
	}
	if kinds["resource.nomad_job"] == nil || kinds["resource.nomad_job"].Body.Attributes["depends_on"] == nil {
		t.Error("job without depends_on")
	}
}

func parse(t testing.TB, src []byte) *hclsyntax.Body {
	t.Helper()
	f, diags := hclsyntax.ParseConfig(src, "x.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("parse: %v", diags)
	}
	return f.Body.(*hclsyntax.Body)
}

// attrs evaluates a body's constant attributes (references are skipped).
func attrs(t testing.TB, b *hclsyntax.Body) map[string]any {
	t.Helper()
	out := map[string]any{}
	for name, a := range b.Attributes {
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			continue
		}
		out[name] = goValue(v)
	}
	return out
}

func only(t testing.TB, b *hclsyntax.Body, typ string) *hclsyntax.Block {
	t.Helper()
	var found *hclsyntax.Block
	for _, blk := range b.Blocks {
		if blk.Type == typ {
			if found != nil {
				t.Fatalf("two %s blocks", typ)
			}
			found = blk
		}
	}
	if found == nil {
		t.Fatalf("no %s block", typ)
	}
	return found
}

func countBlocks(b *hclsyntax.Body, typ string) int {
	n := 0
	for _, blk := range b.Blocks {
		if blk.Type == typ {
			n++
		}
	}
	return n
}
