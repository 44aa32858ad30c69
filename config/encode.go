package config

import (
	"slices"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/ferry-migrate/ferry"
)

// Encode writes s as ferry.hcl with every value explicit. Parse(Encode(s))
// yields s again for any s that validates. header lines, if any, are
// written as comments above the service block.
func Encode(s *ferry.Service, header ...string) []byte {
	f := hclwrite.NewEmptyFile()
	root := f.Body()
	for _, h := range header {
		root.AppendUnstructuredTokens(comment(h))
	}
	b := root.AppendNewBlock("service", []string{s.Name}).Body()
	b.SetAttributeValue("image", cty.StringVal(s.Image))
	b.SetAttributeValue("port", cty.NumberIntVal(int64(s.Port)))
	b.SetAttributeValue("config_dir", cty.StringVal(s.ConfigDir))
	b.SetAttributeValue("no_prior_data", cty.BoolVal(s.NoPriorData))
	b.SetAttributeValue("apply", cty.StringVal(s.Apply))
	b.SetAttributeValue("hold", cty.StringVal(FormatDuration(s.Hold)))
	b.SetAttributeValue("config_files", strList(s.ConfigFiles))
	b.SetAttributeValue("disposable", strList(s.Disposable))
	b.SetAttributeValue("env", strMap(s.Env))

	b.AppendNewline()
	src := b.AppendNewBlock("source", nil).Body()
	src.SetAttributeValue("compose_file", cty.StringVal(s.Source.ComposeFile))
	src.SetAttributeValue("project", cty.StringVal(s.Source.Project))
	src.SetAttributeValue("service", cty.StringVal(s.Source.Service))
	src.SetAttributeValue("docker_host", cty.StringVal(s.Source.DockerHost))

	for _, d := range s.Databases {
		b.AppendNewline()
		db := b.AppendNewBlock("database", []string{d.Name}).Body()
		db.SetAttributeValue("path", cty.StringVal(d.Path))
		db.SetAttributeValue("replica_path", cty.StringVal(d.ReplicaPath))
		db.SetAttributeValue("user_tables", strList(d.UserTables))
	}

	b.AppendNewline()
	t := b.AppendNewBlock("target", nil).Body()
	t.SetAttributeValue("region", cty.StringVal(s.Target.Region))
	t.SetAttributeValue("datacenters", strList(s.Target.Datacenters))
	t.SetAttributeValue("namespace", cty.StringVal(s.Target.Namespace))

	b.AppendNewline()
	st := b.AppendNewBlock("storage", nil).Body()
	if s.Storage.Kind == ferry.StorageHost {
		st.SetAttributeValue("host_volume", cty.StringVal(s.Storage.VolumeID))
	} else {
		c := st.AppendNewBlock("csi", nil).Body()
		c.SetAttributeValue("plugin_id", cty.StringVal(s.Storage.PluginID))
		c.SetAttributeValue("volume", cty.StringVal(s.Storage.VolumeID))
		c.SetAttributeValue("capacity_min", cty.StringVal(FormatSize(s.Storage.CapacityMin)))
		c.SetAttributeValue("capacity_max", cty.StringVal(FormatSize(s.Storage.CapacityMax)))
		c.SetAttributeValue("access_mode", cty.StringVal(s.Storage.AccessMode))
		c.SetAttributeValue("attachment_mode", cty.StringVal(s.Storage.AttachmentMode))
	}

	b.AppendNewline()
	m := b.AppendNewBlock("mesh", nil).Body()
	m.SetAttributeValue("mode", cty.StringVal(s.Mesh.Mode))
	for _, u := range s.Mesh.Upstreams {
		m.AppendNewBlock("upstream", []string{u.Name}).Body().
			SetAttributeValue("local_port", cty.NumberIntVal(int64(u.LocalPort)))
	}

	b.AppendNewline()
	kind := "vault"
	if s.Secrets.Provider == ferry.SecretsNomad {
		kind = "nomad_variable"
	}
	sec := b.AppendNewBlock("secrets", nil).Body().AppendNewBlock(kind, nil).Body()
	sec.SetAttributeValue("path", cty.StringVal(s.Secrets.Path))
	sec.SetAttributeValue("access_key", cty.StringVal(s.Secrets.AccessKeyKey))
	sec.SetAttributeValue("secret_key", cty.StringVal(s.Secrets.SecretKeyKey))

	b.AppendNewline()
	o := b.AppendNewBlock("object_store", nil).Body()
	o.SetAttributeValue("endpoint", cty.StringVal(s.ObjectStore.Endpoint))
	o.SetAttributeValue("bucket", cty.StringVal(s.ObjectStore.Bucket))
	o.SetAttributeValue("region", cty.StringVal(s.ObjectStore.Region))
	o.SetAttributeValue("path_style", cty.BoolVal(s.ObjectStore.PathStyle))
	o.SetAttributeValue("health_path", cty.StringVal(s.ObjectStore.HealthPath))

	b.AppendNewline()
	l := b.AppendNewBlock("litestream", nil).Body()
	l.SetAttributeValue("image", cty.StringVal(s.Litestream.Image))
	l.SetAttributeValue("sync_interval", cty.StringVal(FormatDuration(s.Litestream.SyncInterval)))
	l.SetAttributeValue("snapshot_interval", cty.StringVal(FormatDuration(s.Litestream.SnapshotInterval)))
	l.SetAttributeValue("retention", cty.StringVal(FormatDuration(s.Litestream.Retention)))
	l.SetAttributeValue("wait_timeout", cty.StringVal(FormatDuration(s.Litestream.WaitTimeout)))

	if s.Ingress.Host != "" {
		b.AppendNewline()
		in := b.AppendNewBlock("ingress", nil).Body()
		in.SetAttributeValue("host", cty.StringVal(s.Ingress.Host))
		in.SetAttributeValue("entrypoint", cty.StringVal(s.Ingress.Entrypoint))
		in.SetAttributeValue("tags", strList(s.Ingress.Tags))
	}

	b.AppendNewline()
	h := b.AppendNewBlock("health", nil).Body()
	h.SetAttributeValue("path", cty.StringVal(s.Health.Path))
	h.SetAttributeValue("interval", cty.StringVal(FormatDuration(s.Health.Interval)))
	h.SetAttributeValue("timeout", cty.StringVal(FormatDuration(s.Health.Timeout)))

	for _, r := range []struct {
		task string
		res  ferry.TaskResources
	}{{"main", s.Resources.Main}, {"restore", s.Resources.Restore}, {"replicate", s.Resources.Replicate}} {
		b.AppendNewline()
		rb := b.AppendNewBlock("resources", []string{r.task}).Body()
		rb.SetAttributeValue("cpu", cty.NumberIntVal(int64(r.res.CPU)))
		rb.SetAttributeValue("memory", cty.NumberIntVal(int64(r.res.MemoryMB)))
		rb.SetAttributeValue("memory_max", cty.NumberIntVal(int64(r.res.MemoryMaxMB)))
	}

	b.AppendNewline()
	dr := b.AppendNewBlock("drill", nil).Body()
	dr.SetAttributeValue("max_replica_age", cty.StringVal(FormatDuration(s.Drill.MaxReplicaAge)))
	dr.SetAttributeValue("schedule", cty.StringVal(s.Drill.Schedule))
	dr.SetAttributeValue("drain_deadline", cty.StringVal(FormatDuration(s.Drill.DrainDeadline)))

	return hclwrite.Format(f.Bytes())
}

func comment(text string) hclwrite.Tokens {
	return hclwrite.Tokens{{Type: hclsyntax.TokenComment, Bytes: []byte("# " + text + "\n")}}
}

func strList(xs []string) cty.Value {
	if len(xs) == 0 {
		return cty.ListValEmpty(cty.String)
	}
	vs := make([]cty.Value, len(xs))
	for i, x := range xs {
		vs[i] = cty.StringVal(x)
	}
	return cty.ListVal(vs)
}

func strMap(m map[string]string) cty.Value {
	if len(m) == 0 {
		return cty.MapValEmpty(cty.String)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	vs := make(map[string]cty.Value, len(m))
	for _, k := range keys {
		vs[k] = cty.StringVal(m[k])
	}
	return cty.MapVal(vs)
}
