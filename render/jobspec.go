package render

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2/hclwrite"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/config"
)

// configVolume is the name of the group's volume holding the config files.
const configVolume = "config"

// Jobspec returns jobspec.nomad.hcl for s: one group of count 1 (two
// replicators of one database corrupt its replica) with the restore
// prestart task, the app, and the replicate poststart sidecar. No
// constraint blocks: the service may run on any node.
func Jobspec(s *ferry.Service) ([]byte, error) {
	f := hclwrite.NewEmptyFile()
	job := f.Body().AppendNewBlock("job", []string{s.Name}).Body()
	jobHeader(job, s, "service")

	u := block(job, "update")
	setInt(u, "max_parallel", 1)
	setStr(u, "health_check", "checks")
	setStr(u, "min_healthy_time", "10s")
	setStr(u, "healthy_deadline", "5m")
	setStr(u, "progress_deadline", "10m")
	setBool(u, "auto_revert", true)

	g := block(job, "group", s.Name)
	setInt(g, "count", 1)
	network(g, s)

	d := block(g, "ephemeral_disk")
	setBool(d, "sticky", true)
	setBool(d, "migrate", true)
	setInt(d, "size", ephemeralDiskMB(s))

	volume(g, s)
	service(g, s)

	if err := restoreTask(g, s); err != nil {
		return nil, err
	}
	mainTask(g, s)
	if err := replicateTask(g, s); err != nil {
		return nil, err
	}
	return formatted(f, header(s, "Nomad job")), nil
}

func header(s *ferry.Service, what string) string {
	return fmt.Sprintf("%s for %s, written by ferry render from ferry.hcl.\nEdit ferry.hcl and render again rather than editing this file.", what, s.Name)
}

func jobHeader(job *hclwrite.Body, s *ferry.Service, typ string) {
	setStr(job, "region", s.Target.Region)
	setStrs(job, "datacenters", s.Target.Datacenters)
	setStr(job, "namespace", s.Target.Namespace)
	setStr(job, "type", typ)
}

// network is a bridge network. With a mesh the app's port is reached
// through the Connect sidecar; without one, port "http" is mapped on the
// host for the Nomad-native service.
func network(g *hclwrite.Body, s *ferry.Service) {
	n := block(g, "network")
	setStr(n, "mode", "bridge")
	p := block(n, "port", "http")
	setInt(p, "to", int64(s.Port))
}

func volume(g *hclwrite.Body, s *ferry.Service) {
	v := block(g, "volume", configVolume)
	if s.Storage.Kind == ferry.StorageHost {
		setStr(v, "type", "host")
		setStr(v, "source", s.Storage.VolumeID)
		setBool(v, "read_only", false)
		return
	}
	setStr(v, "type", "csi")
	setStr(v, "source", s.Storage.VolumeID)
	setStr(v, "access_mode", s.Storage.AccessMode)
	setStr(v, "attachment_mode", s.Storage.AttachmentMode)
	setBool(v, "read_only", false)
}

// Tags returns the service's tags: Traefik's (when an ingress host is set)
// followed by the spec's extra tags, verbatim.
func Tags(s *ferry.Service) []string {
	var tags []string
	if s.Ingress.Host != "" {
		r := "traefik.http.routers." + s.Name
		tags = append(tags,
			"traefik.enable=true",
			r+".rule=Host(`"+s.Ingress.Host+"`)",
			r+".entrypoints="+s.Ingress.Entrypoint,
		)
		if s.Mesh.Mode != ferry.MeshNone {
			tags = append(tags, "traefik.consulcatalog.connect=true")
		}
	}
	return append(tags, s.Ingress.Tags...)
}

func service(g *hclwrite.Body, s *ferry.Service) {
	sv := block(g, "service")
	setStr(sv, "name", s.Name)
	mesh := s.Mesh.Mode != ferry.MeshNone
	if mesh {
		setStr(sv, "provider", "consul")
		// In the group's network namespace the app listens on its own
		// port; the Connect sidecar carries traffic to it.
		setStr(sv, "port", fmt.Sprint(s.Port))
	} else {
		setStr(sv, "provider", "nomad")
		setStr(sv, "port", "http")
		setStr(sv, "address_mode", "host")
	}
	setStrs(sv, "tags", Tags(s))

	c := block(sv, "check")
	setStr(c, "name", s.Name+"-http")
	setStr(c, "type", "http")
	setStr(c, "path", s.Health.Path)
	setStr(c, "interval", config.FormatDuration(s.Health.Interval))
	setStr(c, "timeout", config.FormatDuration(s.Health.Timeout))
	if mesh {
		// The check reaches the app through an exposed path, since the
		// mesh blocks direct access.
		setBool(c, "expose", true)
	}
	if !mesh {
		return
	}
	connect(sv, s)
}

// connect adds the Connect sidecar to a service: a transparent proxy, or
// the spec's upstreams.
func connect(sv *hclwrite.Body, s *ferry.Service) {
	proxy := block(block(block(sv, "connect"), "sidecar_service"), "proxy")
	switch s.Mesh.Mode {
	case ferry.MeshTransparentProxy:
		emptyBlock(proxy, "transparent_proxy")
	case ferry.MeshUpstreams:
		for _, up := range s.Mesh.Upstreams {
			ub := block(proxy, "upstreams")
			setStr(ub, "destination_name", up.Name)
			setInt(ub, "local_bind_port", int64(up.LocalPort))
		}
	}
}

func mainTask(g *hclwrite.Body, s *ferry.Service) {
	t := block(g, "task", s.Name)
	setStr(t, "driver", "docker")
	c := block(t, "config")
	setStr(c, "image", s.Image)
	for _, mt := range Mounts(s) {
		// The databases live on the alloc disk, never on the network
		// volume: SQLite's WAL locking breaks there. Relative sources
		// are resolved from the task directory.
		m := block(c, "mount")
		setStr(m, "type", "bind")
		setStr(m, "source", "../alloc/"+mt.Source)
		setStr(m, "target", mt.Target)
		setBool(m, "readonly", false)
	}
	if s.ConfigDir != "" {
		vm := block(t, "volume_mount")
		setStr(vm, "volume", configVolume)
		setStr(vm, "destination", s.ConfigDir)
		setBool(vm, "read_only", false)
	}
	if len(s.Env) > 0 {
		env := block(t, "env")
		for _, k := range sortedKeys(s.Env) {
			setStr(env, k, s.Env[k])
		}
	}
	resources(t, s.Resources.Main)
}

func resources(t *hclwrite.Body, r ferry.TaskResources) {
	rb := block(t, "resources")
	setInt(rb, "cpu", int64(r.CPU))
	setInt(rb, "memory", int64(r.MemoryMB))
	if r.MemoryMaxMB > 0 {
		setInt(rb, "memory_max", int64(r.MemoryMaxMB))
	}
}

// litestreamTask starts a docker task running the pinned litestream image
// with hook as its lifecycle and args as its command line.
func litestreamTask(g *hclwrite.Body, s *ferry.Service, name, hook string, sidecar bool, entrypoint, args []string) *hclwrite.Body {
	t := block(g, "task", name)
	setStr(t, "driver", "docker")
	if sidecar {
		// Time to ship the last writes after the app stops.
		setStr(t, "kill_timeout", "30s")
	}
	lc := block(t, "lifecycle")
	setStr(lc, "hook", hook)
	setBool(lc, "sidecar", sidecar)
	c := block(t, "config")
	setStr(c, "image", s.Litestream.Image)
	if entrypoint != nil {
		setStrs(c, "entrypoint", entrypoint)
	}
	setStrs(c, "args", args)
	return t
}

// litestreamFiles adds the vault block (Vault secrets), litestream.yml and
// the credentials env file to a litestream task.
func litestreamFiles(t *hclwrite.Body, s *ferry.Service) error {
	if s.Secrets.Provider == ferry.SecretsVault {
		// Workload identity: the task's Vault token comes from Nomad.
		emptyBlock(t, "vault")
	}
	if err := template(t, LitestreamConfig(s), "local/litestream.yml", "noop"); err != nil {
		return err
	}
	credentials(t, s)
	return nil
}

// credentials renders the object store keys into an env file under
// secrets/ (never inline in the jobspec, never in the spec).
func credentials(t *hclwrite.Body, s *ferry.Service) {
	get := func(key string) string {
		if s.Secrets.Provider == ferry.SecretsNomad {
			return fmt.Sprintf(`{{ with nomadVar %q }}{{ .%s }}{{ end }}`, s.Secrets.Path, key)
		}
		return fmt.Sprintf(`{{ with secret %q }}{{ .Data.data.%s }}{{ end }}`, s.Secrets.Path, key)
	}
	data := "LITESTREAM_ACCESS_KEY_ID=" + get(s.Secrets.AccessKeyKey) + "\n" +
		"LITESTREAM_SECRET_ACCESS_KEY=" + get(s.Secrets.SecretKeyKey) + "\n"
	tb := block(t, "template")
	tb.SetAttributeRaw("data", heredoc(data))
	setStr(tb, "destination", "secrets/litestream.env")
	setBool(tb, "env", true)
	setStr(tb, "change_mode", "restart")
}

// template adds a template block whose data is passed through Nomad's
// template engine unchanged: it must contain no Go template delimiters
// (spec values cannot, by validation; this is the last guard).
func template(t *hclwrite.Body, data, dest, changeMode string) error {
	if strings.Contains(data, "{{") || strings.Contains(data, "}}") {
		return fmt.Errorf("%s: refusing to write template delimiters into a Nomad template", dest)
	}
	tb := block(t, "template")
	tb.SetAttributeRaw("data", heredoc(data))
	setStr(tb, "destination", dest)
	setStr(tb, "change_mode", changeMode)
	return nil
}

func restoreTask(g *hclwrite.Body, s *ferry.Service) error {
	t := litestreamTask(g, s, ferry.TaskRestore, "prestart", false,
		[]string{"/bin/sh"}, []string{"${NOMAD_TASK_DIR}/restore.sh"})
	if err := litestreamFiles(t, s); err != nil {
		return err
	}
	if err := template(t, RestoreScript(s), "local/restore.sh", "noop"); err != nil {
		return err
	}
	resources(t, s.Resources.Restore)
	return nil
}

func replicateTask(g *hclwrite.Body, s *ferry.Service) error {
	t := litestreamTask(g, s, ferry.TaskReplicate, "poststart", true,
		nil, []string{"replicate", "-config", "${NOMAD_TASK_DIR}/litestream.yml"})
	if err := litestreamFiles(t, s); err != nil {
		return err
	}
	resources(t, s.Resources.Replicate)
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
