// Package ferry moves a docker-compose service that keeps its state in
// SQLite onto a Nomad cluster, with the database replicated to S3 by
// litestream, and proves that nothing was lost.
//
// The root package holds the nouns (Service and its parts) and nothing that
// imports a dependency. Sub-packages turn them into files (render), read
// them (config, compose) or act on them (litestream, docker, nomad, runbook).
package ferry

import "time"

// Service is a migration spec: one compose service and everything needed to
// run it on Nomad. A Service is produced by config.Load with every default
// applied; code that receives one may assume Validate returned nil.
type Service struct {
	Name  string // Nomad job name, Terraform module name, replica bucket prefix
	Image string // pinned: a tag other than latest, or a digest
	Port  int    // the port the app listens on inside its container

	// ConfigDir is the app's config root inside the container
	// (/app/config for Overseerr). Config files and databases are
	// usually below it.
	ConfigDir string

	// NoPriorData marks a brand-new service: its restore task may start
	// the app on an empty database when no replica exists. When false
	// (the default), a missing replica fails the restore task.
	NoPriorData bool

	// Apply is how the job reaches the cluster: "api" (default) or
	// "terraform".
	Apply string

	Source      Source
	Databases   []Database
	ConfigFiles []string // paths inside the container carried to the volume
	Disposable  []string // paths inside the container that may be dropped
	Target      Target
	Storage     Storage
	Mesh        Mesh
	Secrets     Secrets
	ObjectStore ObjectStore
	Litestream  Litestream
	Ingress     Ingress
	Health      Health
	Env         map[string]string
	Resources   Resources
	Drill       Drill
	Hold        time.Duration // how long the compose service is kept after verify
}

// Source is where the service runs today.
type Source struct {
	ComposeFile string // path to the compose file, relative to the spec
	Project     string // compose project name (com.docker.compose.project)
	Service     string // compose service name (com.docker.compose.service)
	DockerHost  string // unix://, tcp:// or ssh://; empty means DOCKER_HOST
}

// Database is one SQLite database of the service.
type Database struct {
	Name        string   // short name, used for the task and file names
	Path        string   // absolute path inside the container
	ReplicaPath string   // path inside the bucket
	UserTables  []string // tables whose rows are the users' data; verified after migration
}

// File is the database file name (the last element of Path).
func (d Database) File() string {
	for i := len(d.Path) - 1; i >= 0; i-- {
		if d.Path[i] == '/' {
			return d.Path[i+1:]
		}
	}
	return d.Path
}

// Dir is the directory holding the database inside the container.
func (d Database) Dir() string {
	for i := len(d.Path) - 1; i > 0; i-- {
		if d.Path[i] == '/' {
			return d.Path[:i]
		}
	}
	return "/"
}

// Target is where in the cluster the job goes.
type Target struct {
	Region      string
	Datacenters []string
	Namespace   string
}

// Storage kinds.
const (
	StorageCSI  = "csi"
	StorageHost = "host"
)

// Storage is the volume that holds the non-transactional config files.
// Databases never live on it.
type Storage struct {
	Kind           string // StorageCSI or StorageHost
	PluginID       string // csi
	VolumeID       string // csi volume id and name; host volume name for host
	CapacityMin    int64  // bytes, csi
	CapacityMax    int64  // bytes, csi
	AccessMode     string // csi, e.g. single-node-writer
	AttachmentMode string // csi, e.g. file-system
}

// Mesh modes.
const (
	MeshTransparentProxy = "consul-transparent-proxy"
	MeshUpstreams        = "consul-upstreams"
	MeshNone             = "none"
)

// Mesh is how the service reaches and is reached by others.
type Mesh struct {
	Mode      string
	Upstreams []Upstream // consul-upstreams only
}

// Upstream is a Consul Connect upstream bound to a local port.
type Upstream struct {
	Name      string
	LocalPort int
}

// Secret providers.
const (
	SecretsVault = "vault"
	SecretsNomad = "nomad"
)

// Secrets says where the object store credentials live. Only the location
// and key names are in the spec; the values never are.
type Secrets struct {
	Provider     string // SecretsVault or SecretsNomad
	Path         string // Vault KV v2 path or Nomad Variable path
	AccessKeyKey string // key holding the access key id
	SecretKeyKey string // key holding the secret key
}

// ObjectStore is the S3-compatible store the replicas live in.
type ObjectStore struct {
	Endpoint  string // http(s)://host:port; empty means AWS
	Bucket    string
	Region    string
	PathStyle bool
	// HealthPath is polled by the restore task before restoring, so a mesh
	// proxy that is not ready yet is waited for (bounded).
	HealthPath string
}

// Litestream configures replication.
type Litestream struct {
	Image            string // pinned litestream image
	SyncInterval     time.Duration
	SnapshotInterval time.Duration
	Retention        time.Duration
	// WaitTimeout bounds how long the restore task waits for the object
	// store before failing (and letting Nomad retry).
	WaitTimeout time.Duration
}

// Ingress is the Traefik route to the service. An empty Host means none.
type Ingress struct {
	Host       string
	Entrypoint string
	Tags       []string // extra tags, appended after the generated ones
}

// Health is the HTTP check of the main task.
type Health struct {
	Path     string
	Interval time.Duration
	Timeout  time.Duration
}

// Task names in the rendered job.
const (
	TaskRestore   = "litestream-restore"
	TaskReplicate = "litestream"
)

// Resources per task: the main task, the restore prestart task and the
// replicate sidecar.
type Resources struct {
	Main      TaskResources
	Restore   TaskResources
	Replicate TaskResources
}

// TaskResources is a Nomad resources block. MemoryMaxMB of zero means no
// oversubscription.
type TaskResources struct {
	CPU         int
	MemoryMB    int
	MemoryMaxMB int
}

// Drill configures the scheduled restore drill.
type Drill struct {
	// MaxReplicaAge is the oldest acceptable latest transaction in the
	// replica; the restore drill fails beyond it.
	MaxReplicaAge time.Duration
	// Schedule is a cron expression; when set, render emits a periodic
	// batch job that runs the restore drill in the cluster.
	Schedule string
	// DrainDeadline bounds the node drain of the failover drill.
	DrainDeadline time.Duration
}
