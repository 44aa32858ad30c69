# Terraform module for radarr, written by ferry render from ferry.hcl.
# Edit ferry.hcl and render again rather than editing this file.

resource "nomad_job" "radarr" {
  jobspec = file("${path.module}/jobspec.nomad.hcl")
}
