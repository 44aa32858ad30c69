package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry"
)

// Defaults, chosen for the first user's platform (REFERENCE.md) and for
// safety where the reference design was unsafe.
const (
	DefaultLitestreamImage = "litestream/litestream:0.5.18"
	// DefaultEndpoint is the platform's MinIO, inside the mesh.
	DefaultEndpoint   = "http://minio-minio.virtual.consul:9000"
	DefaultHealthPath = "/minio/health/live"
	// A 1s sync interval bounds the writes lost on node failure to about
	// a second; the reference design's 5m lost up to five minutes.
	defaultSyncInterval     = time.Second
	defaultSnapshotInterval = time.Hour
	defaultRetention        = 72 * time.Hour
	defaultWaitTimeout      = 2 * time.Minute
	defaultHold             = 24 * time.Hour
)

// ApplyDefaults fills every field a user need not say. It never
// overwrites a value that is set.
func ApplyDefaults(s *ferry.Service) {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	defDur := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	defInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}

	def(&s.Apply, "api")
	defDur(&s.Hold, defaultHold)
	def(&s.Source.Service, s.Name)
	for i := range s.Databases {
		def(&s.Databases[i].ReplicaPath, s.Databases[i].Name)
	}
	def(&s.Target.Region, "global")
	if len(s.Target.Datacenters) == 0 {
		s.Target.Datacenters = []string{"dc1"}
	}
	def(&s.Target.Namespace, "default")

	def(&s.Storage.Kind, ferry.StorageCSI)
	if s.Storage.Kind == ferry.StorageCSI {
		def(&s.Storage.PluginID, "glusterfs")
		def(&s.Storage.VolumeID, "glusterfs_"+strings.ReplaceAll(s.Name, "-", "_")+"_config")
		if s.Storage.CapacityMin == 0 {
			s.Storage.CapacityMin = 100 << 20
		}
		if s.Storage.CapacityMax == 0 {
			s.Storage.CapacityMax = 1 << 30
		}
		def(&s.Storage.AccessMode, "single-node-writer")
		def(&s.Storage.AttachmentMode, "file-system")
	}

	def(&s.Mesh.Mode, ferry.MeshTransparentProxy)

	def(&s.Secrets.Provider, ferry.SecretsVault)
	if s.Secrets.Provider == ferry.SecretsVault {
		def(&s.Secrets.Path, "nomad/default/"+s.Name)
	} else {
		def(&s.Secrets.Path, "nomad/jobs/"+s.Name)
	}
	def(&s.Secrets.AccessKeyKey, "MINIO_ACCESS_KEY")
	def(&s.Secrets.SecretKeyKey, "MINIO_SECRET_KEY")

	if s.ObjectStore.Endpoint == "" {
		s.ObjectStore.Endpoint = DefaultEndpoint
		def(&s.ObjectStore.HealthPath, DefaultHealthPath)
	}
	def(&s.ObjectStore.Bucket, s.Name+"-litestream")
	def(&s.ObjectStore.Region, "us-east-1")

	def(&s.Litestream.Image, DefaultLitestreamImage)
	defDur(&s.Litestream.SyncInterval, defaultSyncInterval)
	defDur(&s.Litestream.SnapshotInterval, defaultSnapshotInterval)
	defDur(&s.Litestream.Retention, defaultRetention)
	defDur(&s.Litestream.WaitTimeout, defaultWaitTimeout)

	if s.Ingress.Host != "" {
		def(&s.Ingress.Entrypoint, "websecure")
	}

	def(&s.Health.Path, "/")
	defDur(&s.Health.Interval, 30*time.Second)
	defDur(&s.Health.Timeout, 5*time.Second)

	// The task list's figures (T022, T026, T031).
	for _, r := range []struct {
		p             *ferry.TaskResources
		cpu, mem, max int
	}{
		{&s.Resources.Main, 200, 256, 512},
		{&s.Resources.Restore, 100, 256, 512},
		{&s.Resources.Replicate, 100, 128, 256},
	} {
		if r.p.CPU == 0 && r.p.MemoryMB == 0 && r.p.MemoryMaxMB == 0 {
			*r.p = ferry.TaskResources{CPU: r.cpu, MemoryMB: r.mem, MemoryMaxMB: r.max}
			continue
		}
		defInt(&r.p.CPU, r.cpu)
		defInt(&r.p.MemoryMB, r.mem)
	}

	defDur(&s.Drill.MaxReplicaAge, 24*time.Hour)
	defDur(&s.Drill.DrainDeadline, 5*time.Minute)
}

// ParseDuration is time.ParseDuration plus a "d" (24h) unit.
func ParseDuration(v string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 {
			return 0, fmt.Errorf("invalid duration %q (use e.g. 1s, 5m, 72h, 7d)", v)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q (use e.g. 1s, 5m, 72h, 7d)", v)
	}
	return d, nil
}

// FormatDuration writes d in the shortest form ParseDuration reads back:
// 1s, 90s, 5m, 72h.
func FormatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1},
}

// ParseSize reads sizes like 100MiB, 1GiB, 500MB.
func ParseSize(v string) (int64, error) {
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			x, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
			if err != nil || x <= 0 || x > (1<<50)/u.mult {
				break
			}
			return x * u.mult, nil
		}
	}
	return 0, fmt.Errorf("invalid size %q (use e.g. 100MiB, 1GiB)", v)
}

// FormatSize writes n in the largest binary unit that divides it.
func FormatSize(n int64) string {
	for _, u := range sizeUnits[:3] {
		if n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}
