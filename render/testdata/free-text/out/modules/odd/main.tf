# Terraform module for odd, written by ferry render from ferry.hcl.
# Edit ferry.hcl and render again rather than editing this file.

data "nomad_plugin" "glusterfs" {
  plugin_id        = "glusterfs"
  wait_for_healthy = true
}

resource "nomad_csi_volume" "glusterfs_odd_config" {
  plugin_id    = data.nomad_plugin.glusterfs.plugin_id
  volume_id    = "glusterfs_odd_config"
  name         = "glusterfs_odd_config"
  namespace    = "default"
  capacity_min = "100MiB"
  capacity_max = "1GiB"

  capability {
    access_mode     = "single-node-writer"
    attachment_mode = "file-system"
  }

  lifecycle {
    prevent_destroy = true
  }
}

resource "nomad_job" "odd" {
  jobspec    = file("${path.module}/jobspec.nomad.hcl")
  depends_on = [nomad_csi_volume.glusterfs_odd_config]
}
