package render

import (
	"fmt"
	"strings"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/config"
)

// LitestreamConfig returns the litestream v0.5 configuration (litestream.yml)
// shared by the restore task, the replicate sidecar and the restore drill,
// so all three read and write the same replica.
//
// Keys are those v0.5 reads: one `replica:` per database, sync-interval per
// replica, snapshot interval and retention at the top level (v0.3's
// per-replica snapshot-interval and retention are ignored by v0.5 and are
// not written). Database paths are ${NOMAD_ALLOC_DIR}/<AllocDBPath>, which
// litestream expands from its environment, so the same file works in a
// Nomad task and in `ferry rehearse`. Credentials are not in the file:
// litestream reads LITESTREAM_ACCESS_KEY_ID and LITESTREAM_SECRET_ACCESS_KEY.
// Logs go to stderr so that `litestream ltx -json` prints only JSON.
func LitestreamConfig(s *ferry.Service) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# litestream v0.5 configuration for %s, written by ferry render.\n", s.Name)
	b.WriteString("logging:\n  stderr: true\n")
	b.WriteString("snapshot:\n")
	fmt.Fprintf(&b, "  interval: %s\n", config.FormatDuration(s.Litestream.SnapshotInterval))
	fmt.Fprintf(&b, "  retention: %s\n", config.FormatDuration(s.Litestream.Retention))
	b.WriteString("dbs:\n")
	for _, d := range s.Databases {
		fmt.Fprintf(&b, "  - path: %s\n", yamlQuote("${NOMAD_ALLOC_DIR}/"+AllocDBPath(s, d)))
		b.WriteString("    replica:\n")
		b.WriteString("      type: s3\n")
		fmt.Fprintf(&b, "      bucket: %s\n", yamlQuote(s.ObjectStore.Bucket))
		fmt.Fprintf(&b, "      path: %s\n", yamlQuote(d.ReplicaPath))
		if s.ObjectStore.Endpoint != "" {
			fmt.Fprintf(&b, "      endpoint: %s\n", yamlQuote(s.ObjectStore.Endpoint))
		}
		fmt.Fprintf(&b, "      region: %s\n", yamlQuote(s.ObjectStore.Region))
		fmt.Fprintf(&b, "      force-path-style: %t\n", s.ObjectStore.PathStyle)
		fmt.Fprintf(&b, "      sync-interval: %s\n", config.FormatDuration(s.Litestream.SyncInterval))
	}
	return b.String()
}

// yamlQuote single-quotes v for YAML, where the only escape is ”.
func yamlQuote(v string) string {
	return "'" + strings.ReplaceAll(v, "'", "''") + "'"
}

// shQuote single-quotes v for POSIX sh: nothing inside single quotes is
// interpreted, and a single quote is written as '\”.
func shQuote(v string) string {
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}
