package render

import (
	"github.com/hashicorp/hcl/v2/hclwrite"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/config"
)

// moduleMain returns modules/<svc>/main.tf: for CSI storage the plugin data
// source (waiting until the plugin is healthy) and the config volume, which
// Terraform refuses to destroy (`nomad volume delete` destroys the data);
// then the job, created after the volume, from jobspec.nomad.hcl beside it.
func moduleMain(s *ferry.Service) []byte {
	f := hclwrite.NewEmptyFile()
	root := f.Body()
	var jobDeps []hclwrite.Tokens
	if s.Storage.Kind == ferry.StorageCSI {
		plugin := tfIdent(s.Storage.PluginID)
		p := root.AppendNewBlock("data", []string{"nomad_plugin", plugin}).Body()
		setStr(p, "plugin_id", s.Storage.PluginID)
		setBool(p, "wait_for_healthy", true)

		vol := tfIdent(s.Storage.VolumeID)
		root.AppendNewline()
		v := root.AppendNewBlock("resource", []string{"nomad_csi_volume", vol}).Body()
		v.SetAttributeRaw("plugin_id", traversal("data", "nomad_plugin", plugin, "plugin_id"))
		setStr(v, "volume_id", s.Storage.VolumeID)
		setStr(v, "name", s.Storage.VolumeID)
		setStr(v, "namespace", s.Target.Namespace)
		setStr(v, "capacity_min", config.FormatSize(s.Storage.CapacityMin))
		setStr(v, "capacity_max", config.FormatSize(s.Storage.CapacityMax))
		c := block(v, "capability")
		setStr(c, "access_mode", s.Storage.AccessMode)
		setStr(c, "attachment_mode", s.Storage.AttachmentMode)
		l := block(v, "lifecycle")
		setBool(l, "prevent_destroy", true)
		jobDeps = append(jobDeps, traversal("nomad_csi_volume", vol))
	}
	jobResource(root, tfIdent(s.Name), "jobspec.nomad.hcl", jobDeps)
	if s.Drill.Schedule != "" {
		jobResource(root, tfIdent(s.Name+"_restore_drill"), "restore-drill.nomad.hcl", nil)
	}
	return formatted(f, header(s, "Terraform module"))
}

func jobResource(root *hclwrite.Body, name, file string, deps []hclwrite.Tokens) {
	if len(root.Blocks()) > 0 {
		root.AppendNewline()
	}
	j := root.AppendNewBlock("resource", []string{"nomad_job", name}).Body()
	j.SetAttributeRaw("jobspec", moduleFile(file))
	if len(deps) > 0 {
		j.SetAttributeRaw("depends_on", hclwrite.TokensForTuple(deps))
	}
}
