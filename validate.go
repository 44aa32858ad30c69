package ferry

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
)

// FieldError is a problem with one field of a spec. Field is the path of
// the field as written in ferry.hcl, dot-separated, with block labels as
// segments (e.g. "database.db.path", "object_store.bucket").
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// FieldErrors is every problem Validate found, in field order.
type FieldErrors []*FieldError

func (es FieldErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

var (
	nameRE   = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	keyRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// tableRE admits SQLite identifiers ferry will quote itself.
	tableRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// safeRE is the conservative alphabet for values that end up inside
	// shell scripts, Go templates and HCL strings in generated files.
	safeRE = regexp.MustCompile(`^[A-Za-z0-9._/:@+=,-]*$`)
	// pathRE is safeRE plus spaces (Plex keeps its databases under
	// "Application Support"); render single-quotes paths in shell.
	pathRE  = regexp.MustCompile(`^[A-Za-z0-9._/:@+=, -]*$`)
	hostRE  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)
	imageRE = regexp.MustCompile(`^[a-z0-9]+([._/-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$`)
)

// Validate reports every problem with s at once. It assumes defaults were
// applied (config.Load does). The returned error is FieldErrors or nil.
//
// Values that reach generated shell, Go templates or HCL are held to
// conservative alphabets here, so nothing in a spec can inject code into
// what ferry writes; free text (env values, tags) is escaped by render.
func (s *Service) Validate() error {
	var errs FieldErrors
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}

	if !nameRE.MatchString(s.Name) {
		bad("service", "name %q must be lowercase letters, digits and dashes, starting with a letter", s.Name)
	}
	checkImage(bad, "image", s.Image)
	if s.Port < 1 || s.Port > 65535 {
		bad("port", "%d is not a port (1-65535)", s.Port)
	}
	checkAbs(bad, "config_dir", s.ConfigDir)
	switch s.Apply {
	case "api", "terraform":
	default:
		bad("apply", "%q is not one of api, terraform", s.Apply)
	}

	if s.Source.Service == "" {
		bad("source.service", "is required: the compose service to migrate")
	}
	if s.Source.DockerHost != "" {
		u, err := url.Parse(s.Source.DockerHost)
		if err != nil || (u.Scheme != "unix" && u.Scheme != "tcp" && u.Scheme != "ssh") {
			bad("source.docker_host", "%q must be unix://, tcp:// or ssh://user@host", s.Source.DockerHost)
		}
	}

	if len(s.Databases) == 0 && !s.NoPriorData {
		bad("database", "at least one database block is required (or set no_prior_data = true for a service without SQLite)")
	}
	seenName, seenPath, seenReplica := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, d := range s.Databases {
		f := "database." + d.Name
		if !nameRE.MatchString(d.Name) {
			bad(f, "name %q must be lowercase letters, digits and dashes", d.Name)
		}
		if seenName[d.Name] {
			bad(f, "database %q is declared twice", d.Name)
		}
		seenName[d.Name] = true
		checkAbs(bad, f+".path", d.Path)
		if seenPath[d.Path] {
			bad(f+".path", "%s is used by two databases", d.Path)
		}
		seenPath[d.Path] = true
		if d.ReplicaPath == "" || strings.HasPrefix(d.ReplicaPath, "/") || strings.Contains(d.ReplicaPath, "..") || !safeRE.MatchString(d.ReplicaPath) {
			bad(f+".replica_path", "%q must be a relative path in the bucket (letters, digits, . _ - /)", d.ReplicaPath)
		}
		for _, other := range sortedKeys(seenReplica) {
			if d.ReplicaPath == other || strings.HasPrefix(d.ReplicaPath, other+"/") || strings.HasPrefix(other, d.ReplicaPath+"/") {
				bad(f+".replica_path", "%q overlaps replica path %q of another database; two databases must never share a replica", d.ReplicaPath, other)
			}
		}
		seenReplica[d.ReplicaPath] = true
		for _, t := range d.UserTables {
			if !tableRE.MatchString(t) {
				bad(f+".user_tables", "%q is not a plain table name", t)
			}
		}
	}
	for i, p := range s.ConfigFiles {
		checkAbs(bad, fmt.Sprintf("config_files[%d]", i), p)
		for _, d := range s.Databases {
			if p == d.Path || strings.HasPrefix(p, d.Path+"-") {
				bad(fmt.Sprintf("config_files[%d]", i), "%s is a database file; databases are replicated, never copied to the volume", p)
			}
		}
	}
	for i, p := range s.Disposable {
		checkAbs(bad, fmt.Sprintf("disposable[%d]", i), p)
	}

	if s.Target.Region == "" || !safeRE.MatchString(s.Target.Region) {
		bad("target.region", "%q is not a region name", s.Target.Region)
	}
	if len(s.Target.Datacenters) == 0 {
		bad("target.datacenters", "at least one datacenter is required")
	}
	for _, dc := range s.Target.Datacenters {
		if dc == "" || !safeRE.MatchString(dc) {
			bad("target.datacenters", "%q is not a datacenter name", dc)
		}
	}
	if s.Target.Namespace == "" || !safeRE.MatchString(s.Target.Namespace) {
		bad("target.namespace", "%q is not a namespace name", s.Target.Namespace)
	}

	switch s.Storage.Kind {
	case StorageCSI:
		if s.Storage.PluginID == "" || !safeRE.MatchString(s.Storage.PluginID) {
			bad("storage.csi.plugin_id", "%q is not a plugin id", s.Storage.PluginID)
		}
		if s.Storage.VolumeID == "" || !safeRE.MatchString(s.Storage.VolumeID) {
			bad("storage.csi.volume", "%q is not a volume id", s.Storage.VolumeID)
		}
		if s.Storage.CapacityMin <= 0 || s.Storage.CapacityMax < s.Storage.CapacityMin {
			bad("storage.csi.capacity_max", "capacity must be positive with capacity_min <= capacity_max")
		}
		switch s.Storage.AccessMode {
		case "single-node-writer", "single-node-reader-only", "multi-node-reader-only", "multi-node-single-writer", "multi-node-multi-writer":
		default:
			bad("storage.csi.access_mode", "%q is not a CSI access mode", s.Storage.AccessMode)
		}
		switch s.Storage.AttachmentMode {
		case "file-system", "block-device":
		default:
			bad("storage.csi.attachment_mode", "%q is not file-system or block-device", s.Storage.AttachmentMode)
		}
	case StorageHost:
		if s.Storage.VolumeID == "" || !safeRE.MatchString(s.Storage.VolumeID) {
			bad("storage.host_volume", "%q is not a host volume name", s.Storage.VolumeID)
		}
	default:
		bad("storage", "one of csi { ... } or host_volume = \"...\" is required")
	}

	switch s.Mesh.Mode {
	case MeshTransparentProxy, MeshNone:
		if len(s.Mesh.Upstreams) > 0 {
			bad("mesh.upstream", "upstreams are only used with mode %q", MeshUpstreams)
		}
	case MeshUpstreams:
		for _, u := range s.Mesh.Upstreams {
			if !nameRE.MatchString(u.Name) {
				bad("mesh.upstream."+u.Name, "%q is not a service name", u.Name)
			}
			if u.LocalPort < 1 || u.LocalPort > 65535 {
				bad("mesh.upstream."+u.Name+".local_port", "%d is not a port", u.LocalPort)
			}
		}
	default:
		bad("mesh.mode", "%q is not one of %s, %s, %s", s.Mesh.Mode, MeshTransparentProxy, MeshUpstreams, MeshNone)
	}

	switch s.Secrets.Provider {
	case SecretsVault, SecretsNomad:
	default:
		bad("secrets", "one of vault { ... } or nomad_variable { ... } is required")
	}
	if s.Secrets.Path == "" || strings.HasPrefix(s.Secrets.Path, "/") || !safeRE.MatchString(s.Secrets.Path) {
		bad("secrets."+secretsBlock(s.Secrets.Provider)+".path", "%q is not a secret path", s.Secrets.Path)
	}
	if !keyRE.MatchString(s.Secrets.AccessKeyKey) {
		bad("secrets."+secretsBlock(s.Secrets.Provider)+".access_key", "%q is not a key name", s.Secrets.AccessKeyKey)
	}
	if !keyRE.MatchString(s.Secrets.SecretKeyKey) {
		bad("secrets."+secretsBlock(s.Secrets.Provider)+".secret_key", "%q is not a key name", s.Secrets.SecretKeyKey)
	}

	if s.ObjectStore.Endpoint != "" {
		u, err := url.Parse(s.ObjectStore.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !hostRE.MatchString(u.Hostname()) || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			bad("object_store.endpoint", "%q must be http(s)://host[:port] with no path, query or credentials", s.ObjectStore.Endpoint)
		}
	}
	if !bucketRE.MatchString(s.ObjectStore.Bucket) || strings.Contains(s.ObjectStore.Bucket, "..") {
		bad("object_store.bucket", "%q is not a valid bucket name (3-63 lowercase letters, digits, dots and dashes)", s.ObjectStore.Bucket)
	}
	if s.ObjectStore.Region == "" || !safeRE.MatchString(s.ObjectStore.Region) {
		bad("object_store.region", "%q is not a region", s.ObjectStore.Region)
	}
	if s.ObjectStore.HealthPath != "" && (!strings.HasPrefix(s.ObjectStore.HealthPath, "/") || !safeRE.MatchString(s.ObjectStore.HealthPath)) {
		bad("object_store.health_path", "%q must be an absolute URL path", s.ObjectStore.HealthPath)
	}

	checkImage(bad, "litestream.image", s.Litestream.Image)
	if s.Litestream.SyncInterval <= 0 || s.Litestream.SyncInterval > s.Litestream.SnapshotInterval {
		bad("litestream.sync_interval", "%s must be positive and at most the snapshot interval", s.Litestream.SyncInterval)
	}
	if s.Litestream.SnapshotInterval <= 0 {
		bad("litestream.snapshot_interval", "must be positive")
	}
	if s.Litestream.Retention < s.Litestream.SnapshotInterval {
		bad("litestream.retention", "%s is shorter than the snapshot interval %s: the replica could hold no snapshot", s.Litestream.Retention, s.Litestream.SnapshotInterval)
	}
	if s.Litestream.WaitTimeout <= 0 {
		bad("litestream.wait_timeout", "must be positive")
	}

	if s.Ingress.Host != "" {
		if !hostRE.MatchString(s.Ingress.Host) {
			bad("ingress.host", "%q is not a host name", s.Ingress.Host)
		}
		if !keyRE.MatchString(s.Ingress.Entrypoint) {
			bad("ingress.entrypoint", "%q is not an entrypoint name", s.Ingress.Entrypoint)
		}
	}

	if !strings.HasPrefix(s.Health.Path, "/") || !safeRE.MatchString(s.Health.Path) {
		bad("health.path", "%q must be an absolute URL path", s.Health.Path)
	}
	if s.Health.Interval <= 0 {
		bad("health.interval", "must be positive")
	}
	if s.Health.Timeout <= 0 || s.Health.Timeout >= s.Health.Interval {
		bad("health.timeout", "%s must be positive and shorter than the interval %s", s.Health.Timeout, s.Health.Interval)
	}
	for _, k := range sortedKeys(s.Env) {
		if !keyRE.MatchString(k) {
			bad("env", "%q is not an environment variable name", k)
		}
	}
	for _, r := range []struct {
		name string
		res  TaskResources
	}{{"main", s.Resources.Main}, {"restore", s.Resources.Restore}, {"replicate", s.Resources.Replicate}} {
		if r.res.CPU <= 0 || r.res.MemoryMB <= 0 {
			bad("resources."+r.name, "cpu and memory must be positive")
		}
		if r.res.MemoryMaxMB != 0 && r.res.MemoryMaxMB < r.res.MemoryMB {
			bad("resources."+r.name+".memory_max", "%d is below memory %d", r.res.MemoryMaxMB, r.res.MemoryMB)
		}
	}
	if s.Drill.MaxReplicaAge <= 0 {
		bad("drill.max_replica_age", "must be positive")
	}
	if s.Drill.Schedule != "" && !regexp.MustCompile(`^[0-9*/,@ a-z-]+$`).MatchString(s.Drill.Schedule) {
		bad("drill.schedule", "%q is not a cron expression", s.Drill.Schedule)
	}
	if s.Hold < 0 {
		bad("hold", "must not be negative")
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

func secretsBlock(provider string) string {
	if provider == SecretsNomad {
		return "nomad_variable"
	}
	return "vault"
}

func checkImage(bad func(string, string, ...any), field, image string) {
	if !imageRE.MatchString(image) {
		bad(field, "%q is not an image reference", image)
		return
	}
	if !IsPinned(image) {
		bad(field, "%q is not pinned: use an exact version tag (not latest or a bare major/minor) or a digest, so a redeploy cannot change versions", image)
	}
}

// IsPinned reports whether image names an exact version: a digest, or a
// tag with at least three dot-separated parts (1.34.0) or a date-like
// build tag. "latest", no tag, and "0.5" are floating.
func IsPinned(image string) bool {
	if strings.Contains(image, "@sha256:") {
		return true
	}
	slash := strings.LastIndex(image, "/")
	colon := strings.LastIndex(image, ":")
	if colon < slash+1 {
		return false
	}
	tag := strings.TrimPrefix(image[colon+1:], "v")
	if tag == "latest" {
		return false
	}
	parts := strings.Split(strings.SplitN(tag, "-", 2)[0], ".")
	return len(parts) >= 3 || (len(parts) == 1 && len(parts[0]) >= 8)
}

func checkAbs(bad func(string, string, ...any), field, p string) {
	if p == "" || !path.IsAbs(p) || path.Clean(p) != p || !pathRE.MatchString(p) {
		bad(field, "%q must be a clean absolute path inside the container (letters, digits, spaces, . _ - /)", p)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
