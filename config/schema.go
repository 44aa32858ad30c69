package config

import (
	"fmt"
	"time"

	"github.com/ferry-migrate/ferry"
)

// The HCL shape of ferry.hcl. Optional scalars are pointers so defaults
// can tell "not said" from "said zero".
type file struct {
	Service serviceBlock `hcl:"service,block"`
}

type serviceBlock struct {
	Name        string            `hcl:"name,label"`
	Image       string            `hcl:"image"`
	Port        int               `hcl:"port"`
	ConfigDir   *string           `hcl:"config_dir,optional"`
	NoPriorData *bool             `hcl:"no_prior_data,optional"`
	Apply       *string           `hcl:"apply,optional"`
	Hold        *string           `hcl:"hold,optional"`
	ConfigFiles []string          `hcl:"config_files,optional"`
	Disposable  []string          `hcl:"disposable,optional"`
	Env         map[string]string `hcl:"env,optional"`

	Source      sourceBlock      `hcl:"source,block"`
	Databases   []databaseBlock  `hcl:"database,block"`
	Target      *targetBlock     `hcl:"target,block"`
	Storage     *storageBlock    `hcl:"storage,block"`
	Mesh        *meshBlock       `hcl:"mesh,block"`
	Secrets     *secretsBlock    `hcl:"secrets,block"`
	ObjectStore *objectBlock     `hcl:"object_store,block"`
	Litestream  *litestreamBlock `hcl:"litestream,block"`
	Ingress     *ingressBlock    `hcl:"ingress,block"`
	Health      *healthBlock     `hcl:"health,block"`
	Resources   []resourcesBlock `hcl:"resources,block"`
	Drill       *drillBlock      `hcl:"drill,block"`
}

type sourceBlock struct {
	ComposeFile string `hcl:"compose_file,optional"`
	Project     string `hcl:"project,optional"`
	Service     string `hcl:"service"`
	DockerHost  string `hcl:"docker_host,optional"`
}

type databaseBlock struct {
	Name        string   `hcl:"name,label"`
	Path        string   `hcl:"path"`
	ReplicaPath string   `hcl:"replica_path,optional"`
	UserTables  []string `hcl:"user_tables,optional"`
}

type targetBlock struct {
	Region      string   `hcl:"region,optional"`
	Datacenters []string `hcl:"datacenters,optional"`
	Namespace   string   `hcl:"namespace,optional"`
}

type storageBlock struct {
	CSI        *csiBlock `hcl:"csi,block"`
	HostVolume string    `hcl:"host_volume,optional"`
}

type csiBlock struct {
	PluginID       string `hcl:"plugin_id,optional"`
	Volume         string `hcl:"volume,optional"`
	CapacityMin    string `hcl:"capacity_min,optional"`
	CapacityMax    string `hcl:"capacity_max,optional"`
	AccessMode     string `hcl:"access_mode,optional"`
	AttachmentMode string `hcl:"attachment_mode,optional"`
}

type meshBlock struct {
	Mode      string          `hcl:"mode,optional"`
	Upstreams []upstreamBlock `hcl:"upstream,block"`
}

type upstreamBlock struct {
	Name      string `hcl:"name,label"`
	LocalPort int    `hcl:"local_port"`
}

type secretsBlock struct {
	Vault *secretRef `hcl:"vault,block"`
	Nomad *secretRef `hcl:"nomad_variable,block"`
}

type secretRef struct {
	Path      string `hcl:"path,optional"`
	AccessKey string `hcl:"access_key,optional"`
	SecretKey string `hcl:"secret_key,optional"`
}

type objectBlock struct {
	Endpoint   string `hcl:"endpoint,optional"`
	Bucket     string `hcl:"bucket,optional"`
	Region     string `hcl:"region,optional"`
	PathStyle  *bool  `hcl:"path_style,optional"`
	HealthPath string `hcl:"health_path,optional"`
}

type litestreamBlock struct {
	Image            string `hcl:"image,optional"`
	SyncInterval     string `hcl:"sync_interval,optional"`
	SnapshotInterval string `hcl:"snapshot_interval,optional"`
	Retention        string `hcl:"retention,optional"`
	WaitTimeout      string `hcl:"wait_timeout,optional"`
}

type ingressBlock struct {
	Host       string   `hcl:"host,optional"`
	Entrypoint string   `hcl:"entrypoint,optional"`
	Tags       []string `hcl:"tags,optional"`
}

type healthBlock struct {
	Path     string `hcl:"path,optional"`
	Interval string `hcl:"interval,optional"`
	Timeout  string `hcl:"timeout,optional"`
}

type resourcesBlock struct {
	Task      string `hcl:"task,label"`
	CPU       int    `hcl:"cpu,optional"`
	Memory    int    `hcl:"memory,optional"`
	MemoryMax int    `hcl:"memory_max,optional"`
}

type drillBlock struct {
	MaxReplicaAge string `hcl:"max_replica_age,optional"`
	Schedule      string `hcl:"schedule,optional"`
	DrainDeadline string `hcl:"drain_deadline,optional"`
}

// toService converts the HCL shape into a Service, reporting values that
// do not convert (durations, sizes, task names) as field errors. Fields
// left unset stay zero for ApplyDefaults.
func (b *serviceBlock) toService() (*ferry.Service, ferry.FieldErrors) {
	var errs ferry.FieldErrors
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ferry.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	dur := func(field, v string) time.Duration {
		if v == "" {
			return 0
		}
		d, err := ParseDuration(v)
		if err != nil {
			bad(field, "%v", err)
		}
		return d
	}
	size := func(field, v string) int64 {
		if v == "" {
			return 0
		}
		n, err := ParseSize(v)
		if err != nil {
			bad(field, "%v", err)
		}
		return n
	}

	s := &ferry.Service{
		Name:        b.Name,
		Image:       b.Image,
		Port:        b.Port,
		ConfigFiles: nilIfEmpty(b.ConfigFiles),
		Disposable:  nilIfEmpty(b.Disposable),
		Source: ferry.Source{
			ComposeFile: b.Source.ComposeFile,
			Project:     b.Source.Project,
			Service:     b.Source.Service,
			DockerHost:  b.Source.DockerHost,
		},
	}
	if len(b.Env) > 0 {
		s.Env = b.Env
	}
	if b.ConfigDir != nil {
		s.ConfigDir = *b.ConfigDir
	}
	if b.NoPriorData != nil {
		s.NoPriorData = *b.NoPriorData
	}
	if b.Apply != nil {
		s.Apply = *b.Apply
	}
	if b.Hold != nil {
		s.Hold = dur("hold", *b.Hold)
	}
	for _, d := range b.Databases {
		s.Databases = append(s.Databases, ferry.Database{
			Name: d.Name, Path: d.Path, ReplicaPath: d.ReplicaPath, UserTables: nilIfEmpty(d.UserTables),
		})
	}
	if t := b.Target; t != nil {
		s.Target = ferry.Target{Region: t.Region, Datacenters: nilIfEmpty(t.Datacenters), Namespace: t.Namespace}
	}
	if st := b.Storage; st != nil {
		switch {
		case st.CSI != nil && st.HostVolume != "":
			bad("storage", "set either csi { ... } or host_volume, not both")
		case st.CSI != nil:
			c := st.CSI
			s.Storage = ferry.Storage{
				Kind: ferry.StorageCSI, PluginID: c.PluginID, VolumeID: c.Volume,
				CapacityMin:    size("storage.csi.capacity_min", c.CapacityMin),
				CapacityMax:    size("storage.csi.capacity_max", c.CapacityMax),
				AccessMode:     c.AccessMode,
				AttachmentMode: c.AttachmentMode,
			}
		case st.HostVolume != "":
			s.Storage = ferry.Storage{Kind: ferry.StorageHost, VolumeID: st.HostVolume}
		}
	}
	if m := b.Mesh; m != nil {
		s.Mesh.Mode = m.Mode
		for _, u := range m.Upstreams {
			s.Mesh.Upstreams = append(s.Mesh.Upstreams, ferry.Upstream{Name: u.Name, LocalPort: u.LocalPort})
		}
	}
	if sec := b.Secrets; sec != nil {
		var ref *secretRef
		switch {
		case sec.Vault != nil && sec.Nomad != nil:
			bad("secrets", "set either vault { ... } or nomad_variable { ... }, not both")
		case sec.Vault != nil:
			s.Secrets.Provider, ref = ferry.SecretsVault, sec.Vault
		case sec.Nomad != nil:
			s.Secrets.Provider, ref = ferry.SecretsNomad, sec.Nomad
		}
		if ref != nil {
			s.Secrets.Path, s.Secrets.AccessKeyKey, s.Secrets.SecretKeyKey = ref.Path, ref.AccessKey, ref.SecretKey
		}
	}
	if o := b.ObjectStore; o != nil {
		s.ObjectStore = ferry.ObjectStore{Endpoint: o.Endpoint, Bucket: o.Bucket, Region: o.Region, PathStyle: true, HealthPath: o.HealthPath}
		if o.PathStyle != nil {
			s.ObjectStore.PathStyle = *o.PathStyle
		}
	} else {
		// MinIO, the platform's store, needs path-style addressing; a bool
		// cannot be defaulted later, so it is here.
		s.ObjectStore.PathStyle = true
	}
	if l := b.Litestream; l != nil {
		s.Litestream = ferry.Litestream{
			Image:            l.Image,
			SyncInterval:     dur("litestream.sync_interval", l.SyncInterval),
			SnapshotInterval: dur("litestream.snapshot_interval", l.SnapshotInterval),
			Retention:        dur("litestream.retention", l.Retention),
			WaitTimeout:      dur("litestream.wait_timeout", l.WaitTimeout),
		}
	}
	if in := b.Ingress; in != nil {
		s.Ingress = ferry.Ingress{Host: in.Host, Entrypoint: in.Entrypoint, Tags: nilIfEmpty(in.Tags)}
	}
	if h := b.Health; h != nil {
		s.Health = ferry.Health{
			Path:     h.Path,
			Interval: dur("health.interval", h.Interval),
			Timeout:  dur("health.timeout", h.Timeout),
		}
	}
	for _, r := range b.Resources {
		tr := ferry.TaskResources{CPU: r.CPU, MemoryMB: r.Memory, MemoryMaxMB: r.MemoryMax}
		switch r.Task {
		case "main":
			s.Resources.Main = tr
		case "restore":
			s.Resources.Restore = tr
		case "replicate":
			s.Resources.Replicate = tr
		default:
			bad("resources."+r.Task, "unknown task %q: use main, restore or replicate", r.Task)
		}
	}
	if d := b.Drill; d != nil {
		s.Drill = ferry.Drill{
			MaxReplicaAge: dur("drill.max_replica_age", d.MaxReplicaAge),
			Schedule:      d.Schedule,
			DrainDeadline: dur("drill.drain_deadline", d.DrainDeadline),
		}
	}
	return s, errs
}

// nilIfEmpty keeps "not said" and "said empty" the same, so a spec and its
// encoding compare equal.
func nilIfEmpty(xs []string) []string {
	if len(xs) == 0 {
		return nil
	}
	return xs
}
