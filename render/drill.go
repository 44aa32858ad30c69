package render

import (
	"github.com/hashicorp/hcl/v2/hclwrite"

	"github.com/ferry-migrate/ferry"
)

// DrillJobName is the Nomad job of the scheduled restore drill.
func DrillJobName(s *ferry.Service) string { return s.Name + "-restore-drill" }

// drillJobspec returns restore-drill.nomad.hcl: a periodic batch job that
// runs DrillScript on s.Drill.Schedule, one run at a time. In a mesh it
// joins it with its own Connect service (whose intention to the object
// store the runbook asks for), like the service's restore task does.
func drillJobspec(s *ferry.Service) ([]byte, error) {
	f := hclwrite.NewEmptyFile()
	name := DrillJobName(s)
	job := f.Body().AppendNewBlock("job", []string{name}).Body()
	jobHeader(job, s, "batch")

	p := block(job, "periodic")
	setStrs(p, "crons", []string{s.Drill.Schedule})
	setBool(p, "prohibit_overlap", true)

	g := block(job, "group", "drill")
	setInt(g, "count", 1)
	rs := block(g, "restart")
	setInt(rs, "attempts", 0)
	setStr(rs, "mode", "fail")
	rp := block(g, "reschedule")
	setInt(rp, "attempts", 0)
	setBool(rp, "unlimited", false)

	n := block(g, "network")
	setStr(n, "mode", "bridge")
	if s.Mesh.Mode != ferry.MeshNone {
		emptyBlock(n, "port", "drill")
		sv := block(g, "service")
		setStr(sv, "name", name)
		setStr(sv, "provider", "consul")
		setStr(sv, "port", "drill")
		connect(sv, s)
	}

	t := block(g, "task", "drill")
	setStr(t, "driver", "docker")
	c := block(t, "config")
	setStr(c, "image", s.Litestream.Image)
	setStrs(c, "entrypoint", []string{"/bin/sh"})
	setStrs(c, "args", []string{"${NOMAD_TASK_DIR}/drill.sh"})
	if err := litestreamFiles(t, s); err != nil {
		return nil, err
	}
	if err := template(t, DrillScript(s), "local/drill.sh", "noop"); err != nil {
		return nil, err
	}
	resources(t, s.Resources.Restore)
	return formatted(f, header(s, "Restore drill job")), nil
}
